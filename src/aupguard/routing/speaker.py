"""aupguard's BGP speaker: ExaBGP as a subprocess, routes in and out via its process API.

- Receiving: ExaBGP's JSON updates (``announce``/``withdraw`` per family) are
  applied to :class:`LiveRib`; lookups see them as soon as the message is
  read (no polling). A neighbour going down drops its routes.
- Sending (for mitigation, built on by the detection stage): ExaBGP API text
  commands, e.g. an RTBH route::

      speaker.announce("route 192.0.2.1/32 next-hop 192.0.2.254 community [65535:666]")
      speaker.withdraw("route 192.0.2.1/32 next-hop 192.0.2.254")

  or FlowSpec (neighbour family ``ipv4 flow``)::

      speaker.announce("flow route { match { destination 192.0.2.1/32; protocol udp;"
                       " source-port =123; } then { discard; } }")

  ``announce``/``withdraw`` prefix the text with the verb; prefix with
  ``neighbor A.B.C.D`` to target one neighbour only (ExaBGP syntax).

Only loopback by default: no neighbours, local address 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aupguard.errors import ConfigError
from aupguard.routing.rib import Rib

if TYPE_CHECKING:  # pragma: no cover
    from aupguard.config import Settings
    from aupguard.routing.config import Neighbour, RoutingSettings

log = logging.getLogger(__name__)


def parse_as_path(value: Any) -> tuple[list[int], str]:
    """ExaBGP's as-path JSON (dict of segments, or a plain list) -> (flat path, text)."""
    if isinstance(value, list):
        return [int(a) for a in value if not isinstance(a, list)], " ".join(str(a) for a in value)
    path: list[int] = []
    text: list[str] = []
    for _, seg in sorted((value or {}).items(), key=lambda kv: int(kv[0])):
        kind = str(seg.get("element", "as-sequence"))
        members = [int(a) for a in seg.get("value", [])]
        if "confed" in kind:  # confederation-internal: not on the external path
            text.append("(" + " ".join(map(str, members)) + ")")
        elif "set" in kind:
            path.extend(sorted(set(members)))
            text.append("{" + ",".join(map(str, members)) + "}")
        else:
            path.extend(members)
            text.extend(map(str, members))
    return path, " ".join(text)


def _communities(attr: dict) -> list[str]:
    out = [f"{c[0]}:{c[1]}" for c in attr.get("community", [])]
    out += [f"{c[0]}:{c[1]}:{c[2]}" for c in attr.get("large-community", [])]
    return out


def _path_id(entry: Any) -> str:
    """Add-path id as ExaBGP shows it (e.g. "0.0.0.1"); "" without add-path."""
    return str(entry.get("path-information", "")) if isinstance(entry, dict) else ""


def _flow_key(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("string") or json.dumps(entry, sort_keys=True))
    return str(entry)


class LiveRib:
    """Routes learnt over BGP: (peer, prefix, path id) -> route; a :class:`Rib` on demand."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str, str], dict[str, Any]] = {}
        # FlowSpec rules heard, by (peer, ExaBGP's text form of the rule)
        self.flows: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._built: tuple[int, Rib] | None = None
        self.messages = 0
        self.errors = 0

    def apply(self, message: dict[str, Any]) -> None:
        """One ExaBGP JSON message."""
        kind = message.get("type")
        neighbor = message.get("neighbor", {})
        peer = str(neighbor.get("address", {}).get("peer", ""))
        with self._lock:
            self.messages += 1
            if kind == "state" and neighbor.get("state") in ("down", "connected"):
                self._drop_peer(peer)
            if kind != "update":
                return
            update = neighbor.get("message", {}).get("update", {})
            attr = update.get("attribute", {})
            for family, entries in (update.get("withdraw") or {}).items():
                if "flow" in family:
                    for e in entries:
                        self.flows.pop((peer, _flow_key(e)), None)
                    continue
                for e in entries:
                    nlri = e.get("nlri") if isinstance(e, dict) else e
                    self._routes.pop((peer, str(nlri), _path_id(e)), None)
                    self._version += 1
            path, text = parse_as_path(attr.get("as-path", []))
            communities = _communities(attr)
            for family, by_nexthop in (update.get("announce") or {}).items():
                if "flow" in family:
                    for entries in by_nexthop.values():
                        for e in entries:
                            self.flows[(peer, _flow_key(e))] = {"rule": e, "attribute": attr, "peer": peer}
                    continue
                for next_hop, entries in by_nexthop.items():
                    for e in entries:
                        nlri = e.get("nlri") if isinstance(e, dict) else e
                        if not isinstance(nlri, str) or "/" not in nlri:
                            continue  # FlowSpec and other non-prefix NLRI
                        self._routes[(peer, nlri, _path_id(e))] = {
                            "prefix": nlri, "as_path": path, "as_path_text": text,
                            "communities": communities, "next_hop": next_hop, "peer": peer,
                            "origin_as": path[-1] if path else 0,
                        }
                        self._version += 1

    def _drop_peer(self, peer: str) -> None:
        stale = [k for k in self._routes if k[0] == peer]
        for k in stale:
            del self._routes[k]
        for k in [k for k in self.flows if k[0] == peer]:
            del self.flows[k]
        if stale:
            self._version += 1

    def __len__(self) -> int:
        return len(self._routes)

    def rib(self) -> Rib:
        """A snapshot (rebuilt only when routes changed). Best route: shortest AS path."""
        with self._lock:
            if self._built is not None and self._built[0] == self._version:
                return self._built[1]
            version = self._version
            best: dict[str, dict[str, Any]] = {}
            for (_peer, prefix, _pid), route in self._routes.items():
                cur = best.get(prefix)
                if cur is None or len(route["as_path"]) < len(cur["as_path"]):
                    best[prefix] = route
        rib = Rib.from_routes(best.values(), source="bgp")
        with self._lock:
            self._built = (version, rib)
        return rib

    def lookup(self, address: str) -> dict[str, Any] | None:
        return self.rib().lookup(address)


def _free_socket_path(base: Path) -> Path:
    # Unix socket paths are limited to ~107 bytes: fall back to a short temp dir.
    path = base / "exabgp-api.sock"
    if len(str(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="aupbgp-")) / "api.sock"


def render_config(routing: RoutingSettings, process_cmd: str) -> str:
    """The ExaBGP configuration for aupguard's speaker (one process, every neighbour)."""
    lines = [
        "process aupguard {",
        f"    run {process_cmd};",
        "    encoder json;",
        "}",
    ]
    for n in routing.neighbours:
        lines += _neighbour_block(routing, n)
    return "\n".join(lines) + "\n"


def _neighbour_block(routing: RoutingSettings, n: Neighbour) -> list[str]:
    block = [
        f"neighbor {n.address} {{",
        f"    router-id {routing.router_id};",
        f"    local-address {routing.local_address};",
        f"    local-as {routing.local_as};",
        f"    peer-as {n.peer_as};",
        "    group-updates false;",
    ]
    if n.passive:
        block.append("    passive true;")
    if n.port != 179:
        block.append(f"    connect {n.port};")
    if n.md5_password:
        block.append(f"    md5-password \"{n.md5_password}\";")
    block.append("    family {")
    block += [f"        {fam};" for fam in n.families]
    block.append("    }")
    block += [
        "    api {",
        "        processes [ aupguard ];",
        "        neighbor-changes;",
        "        receive { parsed; update; }",
        "    }",
        "}",
    ]
    return block


class BgpSpeaker:
    """Runs ExaBGP with a generated config; routes received land in ``self.rib``."""

    def __init__(self, settings: Settings, workdir: Path | None = None):
        self.settings = settings
        self.routing = settings.routing
        self.workdir = Path(workdir or Path(settings.data_dir) / "routing" / "exabgp")
        self.rib = LiveRib()
        self._proc: subprocess.Popen | None = None
        self._server: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._conn_ready = threading.Event()
        self._send_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.sock_path: Path | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> BgpSpeaker:
        exe = shutil.which(self.routing.exabgp_command)
        if exe is None:
            raise ConfigError(
                f"ExaBGP not found ({self.routing.exabgp_command!r}): `pip install exabgp` "
                "or set [routing] exabgp_command")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sock_path = _free_socket_path(self.workdir)
        self.sock_path.unlink(missing_ok=True)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.sock_path))
        self._server.listen(2)
        process_cmd = f"{sys.executable} -m aupguard.routing.bridge {self.sock_path}"
        conf = self.workdir / "exabgp.conf"
        conf.write_text(render_config(self.routing, process_cmd), encoding="utf-8")
        env = dict(os.environ)
        env.update({
            "exabgp_tcp_bind": self.routing.local_address,
            "exabgp_tcp_port": str(self.routing.listen_port),
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_api_ack": "false",
            "exabgp_api_cli": "false",
            "exabgp_log_destination": str(self.workdir / "exabgp.log"),
            "exabgp_log_level": "INFO",
            "exabgp_bgp_openwait": "5",
        })
        self._log = open(self.workdir / "exabgp.out", "ab")
        self._proc = subprocess.Popen(
            [exe, "server", str(conf)], env=env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
        t = threading.Thread(target=self._accept_loop, name="bgp-api", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def wait_ready(self, timeout: float = 15.0) -> bool:
        """True once ExaBGP's API helper is connected (commands can be sent)."""
        return self._conn_ready.wait(timeout)

    def stop(self) -> None:
        self._stopping = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        for s in (self._conn, self._server):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        if self.sock_path is not None:
            self.sock_path.unlink(missing_ok=True)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> BgpSpeaker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- API traffic ------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conn = conn
            self._conn_ready.set()
            self._read(conn)
            self._conn_ready.clear()

    def _read(self, conn: socket.socket) -> None:
        with conn.makefile("rb") as lines:
            for raw in lines:
                line = raw.strip()
                if not line or not line.startswith(b"{"):
                    continue  # "done"/"error" acknowledgements
                try:
                    self.rib.apply(json.loads(line))
                except (ValueError, TypeError, AttributeError) as exc:
                    self.rib.errors += 1
                    log.warning("bad ExaBGP message (%s): %.200r", exc, line)

    def command(self, text: str, timeout: float = 15.0) -> None:
        """Send one raw ExaBGP API command line."""
        if "\n" in text:
            raise ValueError("one command per call (no newlines)")
        if not self.wait_ready(timeout):
            raise ConfigError(f"ExaBGP did not start its API process; see {self.workdir / 'exabgp.log'}")
        with self._send_lock:
            assert self._conn is not None
            self._conn.sendall(text.encode() + b"\n")

    def announce(self, route_text: str) -> None:
        """``announce <route_text>``, e.g. ``route 192.0.2.1/32 next-hop self community [65535:666]``."""
        self.command(f"announce {route_text}")

    def withdraw(self, route_text: str) -> None:
        self.command(f"withdraw {route_text}")

    def lookup(self, address: str) -> dict[str, Any] | None:
        return self.rib.lookup(address)

    def run_forever(self, snapshot_to: Path | None = None) -> None:
        """Foreground loop for `aupguard routes speaker`: snapshot the RIB periodically."""
        every = self.routing.snapshot_seconds
        last = 0.0
        try:
            while self.running:
                time.sleep(0.5)
                if snapshot_to and every > 0 and time.monotonic() - last >= every:
                    self.rib.rib().save(snapshot_to)
                    last = time.monotonic()
        finally:
            if snapshot_to:
                self.rib.rib().save(snapshot_to)
