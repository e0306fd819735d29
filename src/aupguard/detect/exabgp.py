"""A BGP speaker for mitigations: ExaBGP as a subprocess, driven through its text API.

The routing stage may provide a shared ``BgpSpeaker``; this one is the detect
stage's own, used when none is passed in. ``announce(route)`` / ``withdraw(route)``
take ExaBGP route text without the verb, e.g.
``route 198.51.100.10/32 next-hop 192.0.2.1 community [65535:666]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from aupguard.detect.config import MitigationSettings
from aupguard.errors import AupguardError

CONFIG = """\
process aupguard {{
    run {python} -m aupguard.detect.exabgp_pipe {fifo};
    encoder text;
}}

neighbor {peer} {{
    router-id {router_id};
    local-address {local};
    local-as {local_as};
    peer-as {peer_as};
    connect {port};
    hold-time 30;
    group-updates false;
    family {{
        ipv4 unicast;
        ipv6 unicast;
        ipv4 flow;
    }}
    api {{
        processes [ aupguard ];
    }}
}}
"""


def exabgp_command() -> list[str]:
    found = shutil.which("exabgp")
    return [found] if found else [sys.executable, "-m", "exabgp"]


class ExaBGPSpeaker:
    def __init__(self, settings: MitigationSettings, workdir: Path):
        self.settings = settings
        self.workdir = Path(workdir)
        self.proc: subprocess.Popen | None = None
        self.sent: list[str] = []
        self._fd: int | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "exabgp.log"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        fifo = self.workdir / "api.fifo"
        if not fifo.exists():
            os.mkfifo(fifo, 0o600)
        s = self.settings
        conf = self.workdir / "exabgp.conf"
        conf.write_text(CONFIG.format(python=sys.executable, fifo=fifo, peer=s.peer_address,
                                      router_id=s.router_id, local=s.local_address,
                                      local_as=s.local_as, peer_as=s.peer_as, port=s.peer_port))
        env = dict(os.environ)
        env.update({
            "exabgp.daemon.user": os.environ.get("USER", "root") if os.geteuid() == 0 else "",
            "exabgp.daemon.drop": "false",
            "exabgp.tcp.bind": "",            # never listen: we only connect to the peer
            "exabgp.log.destination": str(self.log_path),
            "exabgp.api.ack": "false",
            "exabgp.log.level": "INFO",
        })
        env = {k: v for k, v in env.items() if v != "" or k == "exabgp.tcp.bind"}
        self.proc = subprocess.Popen(exabgp_command() + [str(conf)], env=env, cwd=self.workdir,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / "exabgp.stderr", "ab"))  # noqa: SIM115 - the child owns it
        # The helper opens the FIFO read-write; opening it for writing never blocks.
        self._fd = os.open(fifo, os.O_RDWR)

    def _send(self, line: str) -> None:
        self.start()
        if self.proc is None or self.proc.poll() is not None:
            raise AupguardError(f"ExaBGP is not running (see {self.workdir / 'exabgp.stderr'})")
        assert self._fd is not None
        os.write(self._fd, (line + "\n").encode())
        self.sent.append(line)

    def announce(self, route: str) -> None:
        self._send(f"announce {route}")

    def withdraw(self, route: str) -> None:
        self._send(f"withdraw {route}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.proc = None


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
