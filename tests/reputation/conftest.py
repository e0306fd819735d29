"""Real rbldnsd serving test zones on 127.0.0.1, and a silent UDP port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import pytest


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rbldnsd:
    """rbldnsd as our own process: zone files in `root`, reloaded on SIGHUP."""

    def __init__(self, root: Path, zones: dict[str, str]):
        self.root = root
        self.zones = zones            # zone name -> file name
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def write(self, zone: str, lines: list[str]) -> None:
        text = ":127.0.0.2:Listed by test zone $\n" + "\n".join(lines) + "\n"
        (self.root / self.zones[zone]).write_text(text)

    def start(self) -> None:
        args = ["rbldnsd", "-n", "-q", "-b", f"127.0.0.1/{self.port}", "-r", str(self.root),
                "-t", "1", "-c", "3600"]
        args += [f"{z}:ip4set:{f}" for z, f in self.zones.items()]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self) -> None:
        zone = next(iter(self.zones))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                dns.query.udp(dns.message.make_query(f"2.0.0.127.{zone}", "A"), "127.0.0.1",
                              port=self.port, timeout=0.2)
                return
            except Exception:
                if self.proc is not None and self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    raise RuntimeError(f"rbldnsd exited: {err.strip()}")
                time.sleep(0.05)
        raise RuntimeError("rbldnsd did not answer within 10 s")

    def reload(self) -> None:
        """Re-read zone files (rbldnsd reloads on SIGHUP)."""
        assert self.proc is not None
        # rbldnsd compares mtimes at second resolution: make the change visible.
        later = time.time() + 2
        for name in self.zones.values():
            os.utime(self.root / name, (later, later))
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)


@pytest.fixture
def rbldnsd(tmp_path):
    if shutil.which("rbldnsd") is None:
        pytest.skip("rbldnsd not installed (scripts/install installs Debian's rbldnsd)")
    root = tmp_path / "zones"
    root.mkdir()
    server = Rbldnsd(root, {"bl.test": "bl.zone", "spam.test": "spam.zone"})
    server.write("bl.test", [])
    server.write("spam.test", [])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_udp():
    """A UDP port that receives and never answers; counts what arrives."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)

    def received() -> int:
        count = 0
        while True:
            try:
                sock.recv(4096)
                count += 1
            except BlockingIOError:
                return count

    yield sock.getsockname()[1], received
    sock.close()
