"""Detection benchmark (run by hand): time to detect and CPU cost of rule evaluation.

    python bench/detect.py                 # everything that is installed
    python bench/detect.py --quick         # shorter runs
    python bench/detect.py --no-fastnetmon

1. CPU share of rule evaluation with steady background traffic at 100k and 300k
   flows/s (enriched Arrow batches every 100 ms, evaluated every second, event
   time = wall time), against a baseline measured in the same run: the same
   engine with the hot-host prefilter off (every flow kept in the flood window).
2. Time to detect: a NetFlow v5 exporter (this script) sends background flows at a
   steady rate plus a series of floods (SYN, UDP, ICMP, DNS reflection) to the
   live collector on loopback; for each attack, the time from its first flow
   reaching the collector to its incident being stored. The same datagrams go to
   FastNetMon (Debian's fastnetmon, configured here for NetFlow on loopback with
   the same thresholds) when it is installed; its ban notification time is
   measured from the first attack datagram sent.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from aupguard import netaddr
from aupguard.config import Settings
from aupguard.detect import engine as engine_mod
from aupguard.detect.detector import LiveDetector
from aupguard.detect.prepare import Context
from aupguard.flows.decode.netflow5 import RECORD_DTYPE
from aupguard.flows.schema import ENRICHED_SCHEMA
from aupguard.registry.attribution import AttributionIndex, Span
from aupguard.store.db import Store

CLIENT_NET = ipaddress.ip_network("100.64.0.0/16")   # 256 clients, one /24 each
OUTSIDE = int(ipaddress.ip_address("45.0.0.0"))


def client_index() -> AttributionIndex:
    return AttributionIndex([Span(f"c{i:03d}", f"100.64.{i}.0/24") for i in range(256)])


# -- 1. CPU share -----------------------------------------------------------------------
class Background:
    """Internet-like flows: 80% established TCP, 15% UDP, 5% probes (background radiation)."""

    def __init__(self, rows: int, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.rows = rows
        inside = (int(CLIENT_NET.network_address) + rng.integers(1, 65535, rows)).astype(np.uint32)
        outside = (OUTSIDE + rng.integers(0, 2**24, rows)).astype(np.uint32)
        out = rng.random(rows) < 0.5
        kind = rng.random(rows)
        src = np.where(out, inside, outside)
        dst = np.where(out, outside, inside)
        self.proto = np.where(kind < 0.85, 6, np.where(kind < 0.95, 17, 6)).astype(np.uint8)
        self.flags = np.where(kind < 0.85, 0x1B, np.where(kind < 0.95, 0, 0x02)).astype(np.uint16)
        self.packets = np.where(kind < 0.95, rng.integers(2, 60, rows), 1).astype(np.int64)
        self.src, self.dst = netaddr.ipv4_to_hilo(src), netaddr.ipv4_to_hilo(dst)
        self.sport = rng.integers(1024, 65535, rows).astype(np.uint16)
        # Service mix of an access network: mostly web; ssh/rdp/smtp are a small share.
        self.dport = rng.choice(np.array([443, 80, 8080, 22, 3389, 25], np.uint16), rows,
                                p=[0.7, 0.2, 0.06, 0.02, 0.01, 0.01])
        self.dport = np.where(self.proto == 17, 53, self.dport).astype(np.uint16)
        codes = client_index().lookup(*netaddr.ipv4_to_hilo(inside), np.zeros(1, np.int64))
        ids = np.array([f"c{i:03d}" for i in range(256)], dtype=object)
        self.inside_client = ids[codes]
        self.out = out

    def batch(self, start: int, count: int, t_ms: int) -> pa.Table:
        sl = slice(start, start + count)
        n = count
        hi_s, lo_s = self.src[0][sl], self.src[1][sl]
        hi_d, lo_d = self.dst[0][sl], self.dst[1][sl]
        client = self.inside_client[sl]
        out = self.out[sl]
        cols = {
            "start": pa.array(np.full(n, t_ms - 800), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "end": pa.array(np.full(n, t_ms), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "src_addr": netaddr.hilo_to_arrow(hi_s, lo_s), "dst_addr": netaddr.hilo_to_arrow(hi_d, lo_d),
            "src_port": pa.array(self.sport[sl]), "dst_port": pa.array(self.dport[sl]),
            "proto": pa.array(self.proto[sl]), "tcp_flags": pa.array(self.flags[sl]),
            "packets": pa.array(self.packets[sl]), "bytes": pa.array(self.packets[sl] * 700),
            "packets_raw": pa.array(self.packets[sl]), "bytes_raw": pa.array(self.packets[sl] * 700),
            "sampling_rate": pa.array(np.ones(n, np.uint32)),
            "src_client": pa.array(np.where(out, client, None), pa.string()),
            "dst_client": pa.array(np.where(out, None, client), pa.string()),
        }
        return pa.table([cols.get(f.name, pa.nulls(n, f.type)) for f in ENRICHED_SCHEMA],
                        schema=ENRICHED_SCHEMA)


def cpu_share(rate: int, seconds: float, prefilter: bool, tmp: Path) -> dict:
    """CPU seconds the detector spends per second of traffic at `rate` flows/s.

    Time is simulated (batches every 100 ms of event time, no sleeping) and only the
    detector thread's CPU time is counted, so the figure does not depend on what else
    the machine is doing; a share below 100% means one core keeps up in real time.
    """
    store = Store(f"sqlite:///{tmp / f'cpu-{rate}-{prefilter}.db'}")
    store.migrate()
    settings = Settings(data_dir=tmp / "data")
    detector = LiveDetector(settings, store, ctx=Context(index=client_index()))
    old = engine_mod.HOT_FRACTION
    engine_mod.HOT_FRACTION = old if prefilter else 0.0
    per_batch = rate // 10
    bg = Background(per_batch * 10)
    batches = [bg.batch(k * per_batch, per_batch, 0) for k in range(10)]
    ts = ENRICHED_SCHEMA.field("start").type
    cpu = 0.0
    t_ms = int(time.time() * 1000)
    steps = int(seconds * 10)
    try:
        for i in range(steps):
            t_ms += 100
            table = batches[i % 10]
            table = table.set_column(0, "start", pa.array(np.full(per_batch, t_ms - 800), pa.int64()).cast(ts))
            table = table.set_column(1, "end", pa.array(np.full(per_batch, t_ms), pa.int64()).cast(ts))
            c = time.process_time()
            detector.process(table, t_ms)
            cpu += time.process_time() - c
    finally:
        engine_mod.HOT_FRACTION = old
    store.dispose()
    simulated = steps / 10
    return {"rate": rate, "prefilter": prefilter, "flows": steps * per_batch,
            "simulated_s": simulated, "cpu_s": cpu, "share": cpu / simulated,
            "ticks": detector.stats.ticks, "eval_cpu_s": detector.stats.eval_s,
            "short_rows": detector.engine.short.rows, "long_rows": detector.engine.long.rows}


# -- 2. time to detect ------------------------------------------------------------------
def v5_datagrams(records: np.ndarray, uptime_ms: int, now: float, seq: int) -> list[bytes]:
    out = []
    for i in range(0, len(records), 30):
        chunk = records[i:i + 30]
        header = struct.pack(">HHIIIIBBH", 5, len(chunk), uptime_ms, int(now),
                             int((now % 1) * 1e9), seq + i, 0, 0, 0)
        out.append(header + chunk.tobytes())
    return out


class Exporter:
    """Sends NetFlow v5 every 100 ms: background at `rate` flows/s plus current attacks."""

    def __init__(self, ports: list[int], rate: int, seed: int = 2):
        self.ports = ports
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.boot = time.time() - 3600
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.attack: np.ndarray | None = None
        self.attack_sent_at: float | None = None
        self.stop = threading.Event()
        self.seq = 0
        self.lock = threading.Lock()

    def background(self, n: int, now: float) -> np.ndarray:
        rec = np.zeros(n, RECORD_DTYPE)
        inside = int(CLIENT_NET.network_address) + self.rng.integers(1, 65535, n)
        outside = OUTSIDE + self.rng.integers(0, 2**24, n)
        out = self.rng.random(n) < 0.5
        rec["src"] = np.where(out, inside, outside)
        rec["dst"] = np.where(out, outside, inside)
        rec["packets"] = self.rng.integers(2, 60, n)
        rec["bytes"] = rec["packets"] * 700
        up = int((now - self.boot) * 1000)
        rec["first"], rec["last"] = up - 800, up
        rec["src_port"] = self.rng.integers(1024, 65535, n)
        rec["dst_port"] = 443
        rec["proto"], rec["tcp_flags"] = 6, 0x1B
        return rec

    def run(self) -> None:
        per_tick = max(1, self.rate // 10)
        t0 = time.monotonic()
        i = 0
        last_attack_export = 0.0
        while not self.stop.is_set():
            due = t0 + i * 0.1
            lag = due - time.monotonic()
            if lag > 0:
                time.sleep(lag)
            now = time.time()
            parts = [self.background(per_tick, now)]
            with self.lock:
                attack = self.attack
            # Routers export active flows every second (active timeout 1 s): the attack
            # records cover the last second.
            if attack is not None and now - last_attack_export >= 1.0:
                rec = attack.copy()
                up = int((now - self.boot) * 1000)
                rec["first"], rec["last"] = up - 999, up
                parts.append(rec)
                last_attack_export = now
            up = int((now - self.boot) * 1000)
            # np.concatenate canonicalises structured dtypes to native byte order.
            records = np.concatenate(parts).astype(RECORD_DTYPE)
            datagrams = v5_datagrams(records, up, now, self.seq)
            self.seq += sum(len(p) for p in parts)
            first_attack = attack is not None and self.attack_sent_at is None and len(parts) > 1
            for d in datagrams:
                for port in self.ports:
                    try:
                        self.sock.sendto(d, ("127.0.0.1", port))
                    except OSError:
                        pass
            if first_attack:
                self.attack_sent_at = time.time()
            i += 1

    def start_attack(self, records: np.ndarray) -> None:
        with self.lock:
            self.attack_sent_at = None
            self.attack = records

    def end_attack(self) -> None:
        with self.lock:
            self.attack = None


def exporter_main(ports: list[int], rate: int, commands, sent_at) -> None:
    """The exporter in its own process (a router is not in our process either)."""
    exporter = Exporter(ports, rate)
    thread = threading.Thread(target=exporter.run, daemon=True)
    thread.start()
    rng = np.random.default_rng(3)
    while True:
        cmd = commands.get()
        if cmd[0] == "attack":
            exporter.start_attack(attack_records(cmd[1], cmd[2], rng))
            while exporter.attack_sent_at is None:
                time.sleep(0.001)
            sent_at.value = exporter.attack_sent_at
        elif cmd[0] == "end":
            exporter.end_attack()
            sent_at.value = 0.0
        else:
            exporter.stop.set()
            thread.join()
            return


def attack_records(kind: str, victim: int, rng: np.random.Generator) -> np.ndarray:
    """One second of an attack at 30,000 pps as 100 flow records (spoofed sources)."""
    n = 100
    rec = np.zeros(n, RECORD_DTYPE)
    rec["src"] = OUTSIDE + rng.integers(0, 2**24, n)
    rec["dst"] = victim
    rec["packets"] = 300
    if kind == "syn":
        rec["proto"], rec["tcp_flags"], rec["dst_port"], size = 6, 0x02, 80, 60
        rec["src_port"] = rng.integers(1024, 65535, n)
    elif kind == "udp":
        rec["proto"], rec["dst_port"], size = 17, 9999, 512
        rec["src_port"] = rng.integers(1024, 65535, n)
    elif kind == "icmp":
        rec["proto"], rec["dst_port"], size = 1, 0x0800, 84
    else:  # dns reflection: large answers from port 53
        rec["proto"], rec["src_port"], size = 17, 53, 1400
        rec["dst_port"] = rng.integers(1024, 65535, n)
    rec["bytes"] = rec["packets"] * size
    return rec


class FastNetMon:
    """Debian's fastnetmon on NetFlow/loopback with our thresholds; bans noted by a script."""

    def __init__(self, workdir: Path, port: int):
        self.workdir = workdir
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.bans = workdir / "bans.log"

    @staticmethod
    def binary() -> str | None:
        return shutil.which("fastnetmon") or ("/usr/sbin/fastnetmon" if Path("/usr/sbin/fastnetmon").exists() else None)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        networks = self.workdir / "networks_list"
        networks.write_text(f"{CLIENT_NET}\n")
        (self.workdir / "networks_whitelist").write_text("")
        notify = self.workdir / "notify.sh"
        notify.write_text(f"#!/bin/sh\necho \"$(date +%s.%N) $1 $2 $3 $4\" >> {self.bans}\ncat > /dev/null\n")
        notify.chmod(0o755)
        overrides = {
            "enable_ban": "on", "ban_for_pps": "on", "ban_for_bandwidth": "on",
            "ban_for_flows": "on", "threshold_pps": "20000", "threshold_mbps": "1000",
            "threshold_flows": "3500", "unban_enabled": "off", "netflow": "on",
            "netflow_port": str(self.port), "netflow_host": "127.0.0.1",
            "netflow_sampling_ratio": "1", "sflow": "off", "pcap": "off", "mirror_afpacket": "off",
            "networks_list_path": str(networks),
            "white_list_path": str(self.workdir / "networks_whitelist"),
            "notify_script_path": str(notify), "notify_script_pass_details": "off",
            "logging_local_syslog_logging": "off", "redis_enabled": "off", "mongodb_enabled": "off",
            "exabgp": "off", "gobgp": "off", "graphite": "off", "influxdb": "off",
            "prometheus": "off", "enable_api": "off", "check_period": "1",
            "cli_stats_file_path": str(self.workdir / "fastnetmon.dat"),
        }
        template = Path("/etc/fastnetmon.conf")
        lines = template.read_text().splitlines() if template.exists() else []
        seen = set()
        out = []
        for line in lines:
            key = line.split("=", 1)[0].strip()
            if "=" in line and not line.lstrip().startswith("#") and key in overrides:
                out.append(f"{key} = {overrides[key]}")
                seen.add(key)
            else:
                out.append(line)
        out += [f"{k} = {v}" for k, v in overrides.items() if k not in seen]
        conf = self.workdir / "fastnetmon.conf"
        conf.write_text("\n".join(out) + "\n")
        self.proc = subprocess.Popen(
            [self.binary(), "--configuration_file", str(conf),
             "--log_file", str(self.workdir / "fastnetmon.log"), "--disable_pid_logic"],
            stdout=open(self.workdir / "stdout", "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT)
        time.sleep(2)

    def ban_time(self, victim: str) -> float | None:
        if not self.bans.exists():
            return None
        for line in self.bans.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == victim:
                return float(parts[0])
        return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def time_to_detect(tmp: Path, rate: int, attacks: list[str], use_fnm: bool,
                   interval_s: float = 1.0) -> dict:
    from sqlalchemy import select

    from aupguard.flows.collector import Collector
    from aupguard.incidents.model import IncidentRow

    store = Store(f"sqlite:///{tmp / 'ttd.db'}")
    store.migrate()
    settings = Settings(data_dir=tmp / "ttd-data", detect={"interval_s": interval_s})
    settings.flows = settings.flows.model_copy(update={
        "listen": ["127.0.0.1"], "netflow_port": free_port(), "sflow_port": 0,
        "metrics_port": 0})
    detector = LiveDetector(settings, store, ctx=Context(index=client_index()))
    arrivals: dict[int, float] = {}
    victims_lo: dict[int, int] = {}

    def listener(table: pa.Table) -> None:
        if victims_lo:
            _, lo = netaddr.arrow_to_hilo(table.column("dst_addr"))
            now = time.time()
            for key, victim in list(victims_lo.items()):
                if key not in arrivals and (lo == victim).any():
                    arrivals[key] = now
        detector.process(table)

    collector = Collector(settings, None, enricher=_enricher(), load_enricher=False)
    collector.add_listener(listener)
    collector.start()
    stop = threading.Event()

    def ticker() -> None:  # as `aupguard run` does
        while not stop.wait(settings.detect.interval_s):
            detector.tick()

    threading.Thread(target=ticker, daemon=True).start()
    fnm = None
    ports = [collector.ports[0][1]]
    if use_fnm and FastNetMon.binary():
        fnm = FastNetMon(tmp / "fastnetmon", free_port())
        fnm.start()
        if fnm.alive():
            ports.append(fnm.port)
        else:
            print("fastnetmon exited at start; see", fnm.workdir / "fastnetmon.log")
            fnm = None
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    commands = ctx.Queue()
    sent_at = ctx.Value("d", 0.0)
    child = ctx.Process(target=exporter_main, args=(ports, rate, commands, sent_at), daemon=True)
    child.start()
    results = []
    time.sleep(3)  # steady background first
    try:
        for n, kind in enumerate(attacks):
            victim = int(CLIENT_NET.network_address) + 200 * 256 + n + 1
            victim_text = str(ipaddress.IPv4Address(victim))
            victims_lo[n] = victim | 0x0000FFFF00000000
            commands.put(("attack", kind, victim))
            stored = None
            deadline = time.time() + 20
            while time.time() < deadline:
                with store.session() as session:
                    row = session.execute(select(IncidentRow).where(
                        IncidentRow.victim == victim_text)).scalars().first()
                if row is not None and n in arrivals:
                    stored = row.created_at.timestamp()
                    break
                time.sleep(0.02)
            fnm_ban = None
            if fnm is not None:
                end = time.time() + 15
                while time.time() < end and fnm_ban is None:
                    fnm_ban = fnm.ban_time(victim_text)
                    time.sleep(0.05)
            sent = sent_at.value or None
            commands.put(("end",))
            results.append({
                "kind": kind, "victim": victim_text, "rule": row.rule if stored else None,
                "ttd_s": (stored - arrivals[n]) if stored else None,
                "fnm_s": (fnm_ban - sent) if (fnm_ban and sent) else None,
            })
            time.sleep(2)
    finally:
        commands.put(("stop",))
        child.join(10)
        stop.set()
        collector.stop()
        if fnm is not None:
            fnm.stop()
        store.dispose()
    st = detector.stats
    return {"rate": rate, "attacks": results, "fastnetmon": fnm is not None,
            "ticks": st.ticks, "tick_wall_avg_s": st.tick_wall_s / max(st.ticks, 1),
            "tick_wall_max_s": st.tick_wall_max_s, "eval_cpu_avg_s": st.eval_s / max(st.ticks, 1)}


def _enricher():
    """Client columns as the routing enricher adds them (registry attribution)."""
    index = client_index()

    def enrich(table: pa.Table) -> pa.Table:
        times = table.column("start")
        src = index.lookup_arrow(table.column("src_addr"), times)
        dst = index.lookup_arrow(table.column("dst_addr"), times)
        return table.append_column("src_client", src).append_column("dst_client", dst)
    return enrich


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Shorter runs.")
    parser.add_argument("--no-fastnetmon", action="store_true", help="Do not run FastNetMon.")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-ttd", action="store_true")
    parser.add_argument("--background", type=int, default=20000, help="Background flows/s for time to detect.")
    parser.add_argument("--interval", type=float, default=1.0, help="[detect] interval_s for time to detect.")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else 15.0
    tmp = Path(tempfile.mkdtemp(prefix="aupguard-bench-detect-"))
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} (shared with other work)")
    if not args.skip_cpu:
        print("\n== CPU share of detection (one core = 100%) ==")
        for rate in (100_000, 300_000):
            base = cpu_share(rate, seconds, prefilter=False, tmp=tmp)
            ours = cpu_share(rate, seconds, prefilter=True, tmp=tmp)
            print(f"{rate:>7} flows/s: aupguard {ours['share']:6.1%} of a core "
                  f"({ours['cpu_s']:.2f} s CPU for {ours['simulated_s']:.0f} s of traffic, "
                  f"{ours['ticks']} evaluations, window rows short/long "
                  f"{ours['short_rows']}/{ours['long_rows']}) | baseline without hot-host "
                  f"prefilter {base['share']:6.1%} (short window {base['short_rows']} rows) | "
                  f"ratio {base['share'] / max(ours['share'], 1e-9):.1f}x")
    if not args.skip_ttd:
        kinds = ["syn", "udp", "icmp", "dns"] * (1 if args.quick else 3)
        print(f"\n== time to detect (background {args.background:,} flows/s over NetFlow v5, "
              f"evaluation every {args.interval:g} s) ==")
        res = time_to_detect(tmp, args.background, kinds, not args.no_fastnetmon, args.interval)
        for r in res["attacks"]:
            fnm = f"{r['fnm_s']:.2f} s" if r["fnm_s"] is not None else "-"
            ttd = f"{r['ttd_s']:.3f} s" if r["ttd_s"] is not None else "not detected"
            print(f"  {r['kind']:5} -> {r['victim']:15} {r['rule'] or '':20} aupguard {ttd:>12}  "
                  f"fastnetmon {fnm}")
        for kind in dict.fromkeys(kinds):
            ours = [r["ttd_s"] for r in res["attacks"] if r["kind"] == kind and r["ttd_s"] is not None]
            theirs = [r["fnm_s"] for r in res["attacks"] if r["kind"] == kind and r["fnm_s"] is not None]
            line = f"  median {kind:5}: aupguard {statistics.median(ours):.3f} s" if ours else f"  {kind}: -"
            if theirs and ours:
                line += (f", fastnetmon {statistics.median(theirs):.2f} s, ratio "
                         f"{statistics.median(theirs) / max(statistics.median(ours), 1e-9):.1f}x")
            print(line)
        print(f"  {res['ticks']} evaluations: wall {res['tick_wall_avg_s'] * 1000:.0f} ms average, "
              f"{res['tick_wall_max_s'] * 1000:.0f} ms max; rule CPU {res['eval_cpu_avg_s'] * 1000:.0f} ms average")
        if not res["fastnetmon"]:
            print("  (FastNetMon not run: not installed or failed to start)")


if __name__ == "__main__":
    main()
