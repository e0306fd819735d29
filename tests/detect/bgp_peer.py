"""A real BGP peer for mitigation tests: BIRD 2 (Debian) on loopback addresses.

BIRD listens on 127.0.0.2:<port> and accepts a session from ExaBGP on 127.0.0.3;
`routes()` reads what it received through birdc.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

BIRD_ADDRESS, SPEAKER_ADDRESS = "127.0.0.2", "127.0.0.3"
BIRD_AS, SPEAKER_AS = 65001, 65000

CONFIG = """\
router id {bird};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface "lo"; }}
protocol bgp aupguard {{
  local {bird} port {port} as {bird_as};
  neighbor {speaker} as {speaker_as};
  multihop 2;
  passive on;
  ipv4 {{ import all; export none; }};
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BirdPeer:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.socket = workdir / "bird.ctl"
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("bird") and shutil.which("birdc"))

    def start(self) -> BirdPeer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "bird.conf"
        conf.write_text(CONFIG.format(bird=BIRD_ADDRESS, speaker=SPEAKER_ADDRESS, port=self.port,
                                      bird_as=BIRD_AS, speaker_as=SPEAKER_AS))
        self.proc = subprocess.Popen(
            ["bird", "-f", "-c", str(conf), "-s", str(self.socket), "-P", str(self.workdir / "pid")],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "bird.err", "ab"))  # noqa: SIM115 - the child owns it
        deadline = time.monotonic() + 10
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def birdc(self, *args: str) -> str:
        return subprocess.run(["birdc", "-s", str(self.socket), *args], capture_output=True,
                              text=True, timeout=10, check=False).stdout

    def established(self) -> bool:
        return "Established" in self.birdc("show", "protocols", "all", "aupguard")

    def routes(self) -> dict[str, list[str]]:
        """prefix -> communities received from the speaker."""
        out: dict[str, list[str]] = {}
        current = None
        for line in self.birdc("show", "route", "all", "protocol", "aupguard").splitlines():
            m = re.match(r"^(\S+/\d+)\s", line)
            if m:
                current = m.group(1)
                out[current] = []
            elif current and "BGP.community:" in line:
                out[current] = re.findall(r"\((\d+,\d+)\)", line)
        return out

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
