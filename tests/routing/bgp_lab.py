"""Real BGP daemons on loopback for the routing tests: BIRD 2 and ExaBGP (via BgpSpeaker)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from aupguard.config import Settings
from aupguard.routing.config import Neighbour, RoutingSettings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def speaker_settings(data_dir: Path, address: str, port: int, local_as: int,
                     neighbours: list[Neighbour]) -> Settings:
    return Settings(data_dir=data_dir, routing=RoutingSettings(
        local_address=address, listen_port=port, local_as=local_as, router_id=address,
        neighbours=neighbours))


def wait_for(predicate, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


class Bird:
    """BIRD 2 as our own process: own config, control socket and log in a temp dir."""

    def __init__(self, workdir: Path, port: int, peer_address: str, peer_port: int, peer_as: int,
                 local_as: int = 65000):
        if shutil.which("bird") is None or shutil.which("birdc") is None:
            pytest.skip("BIRD 2 not installed (Debian package bird2; scripts/install adds it)")
        self.dir = workdir
        self.ctl = workdir / "bird.ctl"
        self.conf = workdir / "bird.conf"
        self.conf.write_text(f"""
router id 127.0.0.1;
log "{workdir / 'bird.log'}" all;
protocol device {{ }}
protocol bgp feeder {{
  local 127.0.0.1 port {port} as {local_as};
  neighbor {peer_address} port {peer_port} as {peer_as};
  passive on;
  multihop;
  ipv4 {{ import all; export none; igp table master4; }};
  ipv6 {{ import all; export none; igp table master6; extended next hop on; }};
}}
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Bird":
        self.proc = subprocess.Popen(
            ["bird", "-f", "-c", str(self.conf), "-s", str(self.ctl), "-P", str(self.dir / "bird.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for(lambda: self.ctl.exists(), 10):
            raise RuntimeError(f"BIRD did not start: {self.proc.stderr.read().decode() if self.proc.poll() is not None else ''}")
        return self

    def cli(self, command: str) -> str:
        out = subprocess.run(["birdc", "-s", str(self.ctl), command], capture_output=True,
                             text=True, timeout=20)
        return out.stdout

    def route_count(self) -> int:
        total = 0
        for table in ("master4", "master6"):
            text = self.cli(f"show route table {table} count")
            for line in text.splitlines():
                parts = line.split()
                if len(parts) > 1 and parts[1] in ("of", "routes") and parts[0].isdigit():
                    total += int(parts[0])
                    break
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
