#!/usr/bin/env python3
"""Live collection: the highest send rate received with zero loss, aupguard vs nfcapd.

    python bench/collect.py [--flows 300000] [--version 9] [--seconds 3] [--rcvbuf BYTES]

1. Export datagrams: softflowd's NetFlow export of a generated pcap, made and
   cached under bench/out/ by bench/decode.py (same files, same seed).
2. Receive loop (in-process): the kernel buffer is filled with datagrams, then
   drained by (a) a thread looping ``recvfrom_into`` into one buffer, (b) a thread
   looping ``recvfrom``, (c) an asyncio DatagramProtocol; datagrams/s of each.
   The collector uses the fastest.
3. For each collector (``aupguard collect`` as its own process with its default
   pipeline: decode, enrichment when available, Parquet store; and Debian's
   ``nfcapd``), a binary search over send rates: a sender process replays the
   datagrams (cycling) at R datagrams/s for --seconds; a trial is lossless when
   the collector received every datagram, the kernel dropped none on its socket
   (/proc/net/udp) and it stored every flow record. Both get the same socket
   buffer (--rcvbuf, default net.core.rmem_max, what nfcapd's -B can get).
   Every trial starts a fresh collector process; its peak RSS (VmHWM) is kept.
4. Prints the lossless rates (datagrams/s and flows/s), the sender's own ceiling,
   peak RSS, and the ratios aupguard / nfcapd.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from decode import exports  # noqa: E402  (after the sys.path insert: bench/decode.py)

# -- helpers ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_socket_stats(port: int) -> tuple[int, int] | None:
    """(rx_queue bytes, drops) of the UDP socket bound to 127.0.0.1:port."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as fh:
        next(fh)
        for line in fh:
            cols = line.split()
            if cols[1] == want:
                return int(cols[4].split(":")[1], 16), int(cols[-1])
    return None


def peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def records_per_datagram(datagrams: list[bytes]) -> list[int]:
    """Flow records in each datagram (decoded once, in order, by aupguard's decoder)."""
    from aupguard.flows.decode import Decoder

    dec = Decoder()
    return [sum(b.num_rows for b in dec.feed(d, "127.0.0.1", 0)) for d in datagrams]


def sender(port: int, datagrams: list[bytes], rate: float, seconds: float, out) -> None:
    """Send at ``rate`` datagrams/s (0 = as fast as possible) for ``seconds``, cycling."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    send = s.sendto
    addr = ("127.0.0.1", port)
    n = len(datagrams)
    total = int(rate * seconds) if rate else None
    sent = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        now = time.perf_counter()
        if total is not None:
            if sent >= total:
                break
            target = min(total, int((now - t0) * rate) + 1)
        else:
            if now >= end:
                break
            target = sent + 256
        while sent < target:
            try:
                send(datagrams[sent % n], addr)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            sent += 1
        if total is not None and sent < total:
            delay = t0 + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    out.put((sent, time.perf_counter() - t0))


def send(port: int, datagrams: list[bytes], rate: float, seconds: float) -> tuple[int, float]:
    q = mp.Queue()
    p = mp.Process(target=sender, args=(port, datagrams, rate, seconds, q))
    p.start()
    result = q.get()
    p.join()
    return result


def wait_drained(port: int, timeout: float = 30) -> None:
    """Until the collector's socket queue is empty (it has read everything)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = udp_socket_stats(port)
        if st is None or st[0] == 0:
            return
        time.sleep(0.1)


# -- collectors ---------------------------------------------------------------------------

class Aupguard:
    name = "aupguard collect"

    def __init__(self, rcvbuf: int, writer_process: bool = False):
        self.rcvbuf = rcvbuf
        self.writer_process = writer_process
        if writer_process:
            self.name = "aupguard (writer proc)"

    def trial(self, datagrams, records, rate, seconds) -> dict:
        port = free_port()
        with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
            cfg = Path(tmp) / "aupguard.toml"
            cfg.write_text(
                f'data_dir = "{tmp}/data"\n[flows]\nlisten = ["127.0.0.1"]\n'
                f"netflow_port = {port}\nsflow_port = 0\nmetrics_port = 0\n"
                f"rcvbuf_bytes = {self.rcvbuf}\nstats_interval_seconds = 0.5\n"
                f"writer_process = {'true' if self.writer_process else 'false'}\n")
            proc = subprocess.Popen([sys.executable, "-m", "aupguard", "-c", str(cfg), "collect"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                    cwd=ROOT)
            assert proc.stdout is not None
            for line in proc.stdout:  # wait until it listens
                if "Ctrl-C" in line:
                    break
            sent, took = send(port, datagrams, rate, seconds)
            wait_drained(port)
            drops = (udp_socket_stats(port) or (0, 0))[1]
            stats_file = Path(tmp) / "data" / "flows" / "collector-stats.json"
            # Decoding lags receiving: wait until every datagram is decoded and stored.
            deadline = time.monotonic() + 60
            last = None
            while time.monotonic() < deadline:
                time.sleep(0.6)  # the stats file is rewritten every 0.5 s
                try:
                    st = json.loads(stats_file.read_text())
                except (OSError, ValueError):
                    continue
                ex = st.get("exporters", {}).get("127.0.0.1", {})
                received = sum(s["datagrams"] for s in st.get("sockets", []))
                progress = (received, st.get("flows_out", 0))
                if received >= sent and st.get("flows_out", 0) >= ex.get("records", 1):
                    break
                if progress == last:  # nothing moves any more: the rest was lost
                    break
                last = progress
            rss = peak_rss_kib(proc.pid)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            final = json.loads(stats_file.read_text())
        ex = final["exporters"].get("127.0.0.1", {})
        expected = sum(records[i % len(records)] for i in range(sent))
        return {"sent": sent, "seconds": took, "received": ex.get("datagrams", 0),
                "records": final["store"]["records_written"], "expected": expected,
                "drops": drops, "rss_kib": rss}


class Nfcapd:
    name = "nfcapd (nfdump 1.7)"

    def __init__(self, rcvbuf: int):
        self.rcvbuf = rcvbuf

    def trial(self, datagrams, records, rate, seconds) -> dict:
        port = free_port()
        with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
            proc = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", tmp,
                                     "-t", "3600", "-B", str(self.rcvbuf)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while udp_socket_stats(port) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            sent, took = send(port, datagrams, rate, seconds)
            wait_drained(port)
            drops = (udp_socket_stats(port) or (0, 0))[1]
            rss = peak_rss_kib(proc.pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            count = 0
            for f in Path(tmp).rglob("nfcapd.*"):
                out = subprocess.run(["nfdump", "-r", str(f), "-I"], capture_output=True,
                                     text=True, check=True).stdout
                for line in out.splitlines():
                    if line.startswith("Flows:"):
                        count += int(line.split(":")[1])
        expected = sum(records[i % len(records)] for i in range(sent))
        return {"sent": sent, "seconds": took, "received": None, "records": count,
                "expected": expected, "drops": drops, "rss_kib": rss}


def lossless(r: dict) -> bool:
    ok = r["drops"] == 0 and r["records"] == r["expected"]
    if r["received"] is not None:
        ok &= r["received"] == r["sent"]
    return ok


def search(collector, datagrams, records, lo: float, hi: float, seconds: float,
           steps: int) -> tuple[float, dict, list[dict]]:
    """Highest rate in [lo, hi] with a lossless trial (binary search on a log scale)."""
    best, best_r, trials = 0.0, {}, []
    rate = hi
    for _ in range(steps):
        r = collector.trial(datagrams, records, rate, seconds)
        r["rate"] = rate
        r["lossless"] = lossless(r)
        trials.append(r)
        actual = r["sent"] / r["seconds"]
        print(f"  {collector.name:22} {rate:>10,.0f}/s asked, {actual:>10,.0f}/s sent: "
              f"{'lossless' if r['lossless'] else 'LOSS'} (drops {r['drops']:,}, flows "
              f"{r['records']:,}/{r['expected']:,}, peak RSS {r['rss_kib'] / 1024:.0f} MiB)",
              flush=True)
        if r["lossless"]:
            if actual > best:
                best, best_r = actual, r
            lo = rate
            if rate >= hi:
                break
        else:
            hi = rate
        rate = (lo * hi) ** 0.5 if lo else hi / 4
    return best, best_r, trials


# -- receive loop micro-benchmark ---------------------------------------------------------

def fill(port: int, datagrams: list[bytes], count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(count):
            s.sendto(datagrams[i % len(datagrams)], ("127.0.0.1", port))


def receive_loops(datagrams: list[bytes], count: int) -> dict[str, float]:
    """Datagrams/s drained from a pre-filled socket by each receive style."""
    results = {}

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 33, 512 << 20)  # SO_RCVBUFFORCE (root)
        s.bind(("127.0.0.1", 0))
        return s

    def thread_into(s: socket.socket) -> float:
        buf = bytearray(65535)
        view = memoryview(buf)
        recv = s.recvfrom_into
        out = []
        t = time.perf_counter()
        for _ in range(count):
            n, addr = recv(view)
            out.append((bytes(view[:n]), addr[0]))
        return time.perf_counter() - t

    def thread_recvfrom(s: socket.socket) -> float:
        recv = s.recvfrom
        out = []
        t = time.perf_counter()
        for _ in range(count):
            data, addr = recv(65535)
            out.append((data, addr[0]))
        return time.perf_counter() - t

    def via_asyncio(s: socket.socket) -> float:
        async def run() -> float:
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            got = []

            class P(asyncio.DatagramProtocol):
                def datagram_received(self, data, addr):
                    got.append((data, addr[0]))
                    if len(got) == count and not done.done():
                        done.set_result(None)

            t = time.perf_counter()
            transport, _ = await loop.create_datagram_endpoint(P, sock=s)
            await done
            took = time.perf_counter() - t
            transport.close()
            return took

        return asyncio.run(run())

    for name, fn in (("thread recvfrom_into", thread_into), ("thread recvfrom", thread_recvfrom),
                     ("asyncio DatagramProtocol", via_asyncio)):
        s = make()
        fill(s.getsockname()[1], datagrams, count)
        took = fn(s)
        s.close()
        results[name] = count / took
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=300_000, help="flows in the generated capture")
    ap.add_argument("--version", type=int, default=9, choices=(5, 9, 10))
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each trial")
    ap.add_argument("--steps", type=int, default=6, help="trials per collector")
    ap.add_argument("--rcvbuf", type=int, default=None,
                    help="socket buffer both ask for (default: net.core.rmem_max, which both "
                    "get; above it only aupguard gets it, through SO_RCVBUFFORCE as root)")
    ap.add_argument("--skip-loops", action="store_true", help="skip the receive-loop comparison")
    ap.add_argument("--writer-process", action="store_true",
                    help="also run aupguard with [flows] writer_process = true")
    args = ap.parse_args()
    if not shutil.which("nfcapd"):
        sys.exit("nfcapd not found: apt-get install nfdump (scripts/install does)")
    with open("/proc/sys/net/core/rmem_max") as fh:
        rcvbuf = args.rcvbuf or int(fh.read())
    datagrams = exports(args.flows)[args.version]
    records = records_per_datagram(datagrams)
    per = sum(records) / len(records)
    print(f"{len(datagrams):,} NetFlow v{args.version} datagrams from softflowd, "
          f"{sum(records):,} flow records ({per:.1f} per datagram, "
          f"{sum(map(len, datagrams)) / len(datagrams):.0f} bytes avg); socket buffer asked "
          f"{rcvbuf:,} bytes by both collectors; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)

    if not args.skip_loops:
        print("\nreceive loop, draining 20,000 queued datagrams:")
        loops = receive_loops(datagrams, 20_000)
        base = loops["asyncio DatagramProtocol"]
        for name, rate in loops.items():
            print(f"  {name:26} {rate:>10,.0f} datagrams/s  ({rate / base:.2f}x asyncio)")

    # The sender's own ceiling (nobody to pace it): the top of the search.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    sent, took = send(probe.getsockname()[1], datagrams, 0, 1.0)
    probe.close()
    ceiling = sent / took
    print(f"\nsender ceiling (one Python process, sendto loop): {ceiling:,.0f} datagrams/s "
          f"= {ceiling * per / 1e6:.2f} M flows/s", flush=True)

    results = {}
    collectors = [Aupguard(rcvbuf)] + ([Aupguard(rcvbuf, True)] if args.writer_process else [])
    for collector in (*collectors, Nfcapd(rcvbuf)):
        print(f"\n{collector.name}: search over send rates ({args.seconds:.0f} s trials)")
        best, best_r, trials = search(collector, datagrams, records, 0.0, ceiling,
                                      args.seconds, args.steps)
        worst = max(t["rss_kib"] for t in trials)
        results[collector.name] = (best, best_r.get("rss_kib", 0), worst)
    print("\nhighest lossless rate (datagrams/s, flows/s); peak RSS in that trial and "
          "in any trial (overloaded ones included):")
    for name, (best, rss, worst) in results.items():
        print(f"  {name:22} {best:>10,.0f} dgram/s  {best * per / 1e6:6.2f} M flows/s  "
              f"peak RSS {rss / 1024:6.1f} MiB (max {worst / 1024:6.1f} MiB)")
    theirs, theirs_rss, _ = results[Nfcapd.name]
    for name, (ours, ours_rss, _) in results.items():
        if name != Nfcapd.name and theirs:
            print(f"ratio {name} / nfcapd: lossless rate {ours / theirs:.2f}x, "
                  f"peak RSS {ours_rss / max(theirs_rss, 1):.1f}x")
    if any(best >= 0.99 * ceiling for best, _, _ in results.values()):
        print("note: a collector kept up with the sender's ceiling; its real limit is higher")


if __name__ == "__main__":
    main()
