"""The live flow collector: UDP sockets -> decoder -> enricher -> store + listeners.

Threads (so ``aupguard run`` can host it in-process):

- one receiver per socket: a tight ``recvfrom_into`` loop into a preallocated
  buffer, grouping datagrams into batches (``batch_datagrams`` or
  ``batch_wait_ms``, whichever first). Python has no ``recvmmsg``; this loop was
  measured faster than an asyncio DatagramProtocol (see bench/collect.py).
- one decoder thread: ``Decoder.feed_many`` on each batch (vectorised), then the
  optional enricher, then :class:`FlowWriter` and the registered listeners.
- one housekeeping thread: periodic Parquet flush, stats file, retention.

The receive queue is bounded: if decoding falls behind, receivers block and the
kernel buffer absorbs the burst; what overflows is dropped by the kernel and
counted from /proc/net/udp{,6} — never silently.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from aupguard.errors import ConfigError
from aupguard.flows.store import FlowWriter, flows_root

if TYPE_CHECKING:  # pragma: no cover
    from aupguard.config import Settings
    from aupguard.store.db import Store

log = logging.getLogger(__name__)

Listener = Callable[[pa.Table], None]
Enricher = Callable[[pa.Table], pa.Table]
MAX_DATAGRAM = 65535
STATS_FILE = "collector-stats.json"
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
# Batches received but not yet decoded. Bursts are absorbed by the kernel buffer; a
# deep queue here only multiplies memory (256 batches of 512 datagrams held ~0.5 GB).
QUEUE_BATCHES = 16
DRAIN_SECONDS = 2.0  # longest stop() keeps reading what the kernel holds


def stats_path(settings: Settings) -> Path:
    return flows_root(settings) / STATS_FILE


def kernel_drops(inodes: set[int]) -> dict[int, int]:
    """The kernel's drop counter (last column of /proc/net/udp and udp6) per socket inode."""
    found: dict[int, int] = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh, None)  # header
                for line in fh:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9].isdigit() and int(cols[9]) in inodes:
                        found[int(cols[9])] = int(cols[-1])
        except OSError:
            continue
    return found


class AddressUnavailable(ConfigError):
    """The host has no such address or address family (e.g. IPv6 disabled)."""


def open_udp_socket(address: str, port: int, rcvbuf: int) -> tuple[socket.socket, int]:
    """A bound UDP socket with the largest receive buffer we can get; (socket, granted)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:  # root may exceed net.core.rmem_max; others get at most rmem_max
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise AddressUnavailable(f"cannot listen on UDP [{address}]:{port}: "
                                     f"{exc.strerror} on this host") from None
        hint = ("another collector (nfcapd, pmacct, aupguard) may hold it"
                if exc.errno == errno.EADDRINUSE else exc.strerror)
        raise ConfigError(f"cannot listen on UDP [{address}]:{port}: {hint}; "
                          f"change [flows] listen / netflow_port / sflow_port") from None
    # Linux reports double the asked value (it counts bookkeeping); report the usable half.
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    if granted < rcvbuf:
        log.warning("UDP [%s]:%d: asked a %d-byte receive buffer, kernel granted %d "
                    "(raise net.core.rmem_max)", address, port, rcvbuf, granted)
    return sock, granted


class _Socket:
    """One listening socket and its receiver's counters."""

    def __init__(self, address: str, port: int, rcvbuf: int):
        self.address, self.port = address, port
        self.sock, self.rcvbuf = open_udp_socket(address, port, rcvbuf)
        self.port = self.sock.getsockname()[1]  # the real port when 0 was asked
        self.inode = os.fstat(self.sock.fileno()).st_ino
        self.datagrams = 0
        self.bytes = 0
        self.last_drops: int | None = None
        self.thread: threading.Thread | None = None

    @property
    def label(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


class Collector:
    """Receives flow exports on UDP and hands decoded flows to the store and listeners."""

    def __init__(self, settings: Settings, store: Store | None = None,
                 enricher: Enricher | None = None, writer: FlowWriter | None = None,
                 load_enricher: bool = True):
        self.settings = settings
        self.cfg = settings.flows
        self.store = store
        self.enricher = enricher
        if enricher is None and load_enricher:
            # Without a store the enricher still adds ASNs and AS paths from the RIB.
            self.enricher = _load_enricher(settings, store)
        if writer is None:
            if self.cfg.writer_process:
                from aupguard.flows.writer_process import ProcessFlowWriter

                writer = ProcessFlowWriter.from_settings(settings)
            else:
                writer = FlowWriter.from_settings(settings)
        self.writer = writer
        self.writer.auto_flush = False  # flushed by the housekeeping thread
        self._flush_now = threading.Event()
        self._listeners: list[Listener] = []
        self._sockets: list[_Socket] = []
        self._queue: queue.Queue[list[tuple[bytes, str, int]] | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._decoder: Any = None
        self._lock = threading.Lock()
        self._in_flight = 0  # batches queued or being decoded
        self._idle = threading.Condition(self._lock)
        self.internal_errors = 0
        self.flows_out = 0
        # Wall seconds spent per pipeline stage (per batch, cheap): where time goes.
        self.stage_seconds = {"decode": 0.0, "enrich": 0.0, "store": 0.0, "listeners": 0.0,
                              "flush": 0.0}
        self.started_at: float | None = None
        self._metrics_server: Any = None

    # -- public API -------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(table)`` with every decoded (and enriched) batch of flows."""
        self._listeners.append(fn)

    @property
    def ports(self) -> list[tuple[str, int]]:
        return [(s.address, s.port) for s in self._sockets]

    def start(self) -> Collector:
        from aupguard.flows.decode import Decoder

        cfg = self.cfg
        self._decoder = Decoder(default_sampling=cfg.default_sampling,
                                sampling_overrides=dict(cfg.sampling_overrides),
                                max_pending=cfg.max_pending)
        self._sockets = []
        ports = [p for p in (cfg.netflow_port, cfg.sflow_port) if p]
        if not cfg.listen or not ports:
            raise ConfigError("[flows] listen is empty or both ports are 0: nothing to receive on")
        unavailable: list[str] = []
        try:
            for address in cfg.listen:
                for port in ports:
                    try:
                        self._sockets.append(_Socket(address, port, cfg.rcvbuf_bytes))
                    except AddressUnavailable as exc:
                        # The default listens on 127.0.0.1 and ::1; a host without
                        # IPv6 still collects on IPv4.
                        unavailable.append(str(exc))
                        log.warning("%s; skipped", exc)
        except Exception:
            self._close_sockets()
            raise
        if not self._sockets:
            raise ConfigError("no listen address is usable: " + "; ".join(unavailable))
        self.started_at = time.time()
        self._stop.clear()
        for s in self._sockets:
            s.thread = self._spawn(self._receive, f"flows-recv-{s.label}", s)
        self._spawn(self._decode_loop, "flows-decode")
        self._spawn(self._housekeeping, "flows-housekeeping")
        if cfg.metrics_port:
            self._start_metrics()
        log.info("collecting flows on %s", ", ".join(s.label for s in self._sockets))
        return self

    def stop(self) -> None:
        """Drain the sockets, decode what was received, flush the store. Nothing is lost."""
        if self.started_at is None:
            return
        self._stop.set()
        self._flush_now.set()
        for s in self._sockets:
            if s.thread:
                s.thread.join()
        self._queue.put(None)  # the decoder exits after everything before it
        for t in self._threads:
            t.join()
        self._threads.clear()
        self.writer.close()
        self._write_stats()
        self._close_sockets()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        self.started_at = None

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 10.0, quiet: float = 0.3) -> bool:
        """Wait until no datagram arrived for ``quiet`` s and all were decoded (tests, bench)."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            seen = sum(s.datagrams for s in self._sockets)
            with self._idle:
                busy = self._in_flight > 0
            if not busy and seen == last:
                return True
            last = seen
            time.sleep(quiet)
        return False

    def flush(self) -> list[Path]:
        """Write buffered flows now."""
        return self.writer.flush()

    def stats(self) -> dict[str, Any]:
        """Counters per exporter and socket (JSON-ready)."""
        exporters: dict[str, dict[str, Any]] = {}
        decoded = _decoder_stats(self._decoder)
        for exporter in sorted(decoded):
            d = decoded[exporter]
            exporters[exporter] = {
                "datagrams": int(d.get("datagrams", 0)),  # handed to the decoder
                "records": int(d.get("records", 0)),
                "errors": {k: int(v) for k, v in (d.get("errors") or {}).items()},
                "pending": int(d.get("pending", 0)),
                "sequence_gaps": int(d.get("sequence_gaps", 0)),
                "dropped_pending": int(d.get("dropped_pending", 0)),
                "templates": int(d.get("templates", 0)),
                "counter_samples": int(d.get("counter_samples", 0)),
            }
        drops = kernel_drops({s.inode for s in self._sockets if s.sock.fileno() >= 0})
        for sock in self._sockets:
            sock.last_drops = drops.get(sock.inode, sock.last_drops)
        sockets = [{
            "listen": s.label, "rcvbuf_bytes": s.rcvbuf, "rcvbuf_asked": self.cfg.rcvbuf_bytes,
            "datagrams": s.datagrams, "bytes": s.bytes, "kernel_drops": s.last_drops,
        } for s in self._sockets]
        return {
            "pid": os.getpid(),
            "time": time.time(),
            "started_at": self.started_at,
            "running": self.started_at is not None and not self._stop.is_set(),
            "metrics_url": (f"http://{self.cfg.metrics_address}:{self.cfg.metrics_port}/metrics"
                            if self._metrics_server is not None else None),
            "sockets": sockets,
            "exporters": exporters,
            "flows_out": self.flows_out,
            "internal_errors": self.internal_errors,
            "enrichment": self.enricher is not None,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "store": {"records_written": self.writer.records_written,
                      "files_written": self.writer.files_written,
                      "buffered": self.writer.buffered,
                      "write_errors": self.writer.write_errors},
        }

    # -- internals --------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> threading.Thread:
        t = threading.Thread(target=target, name=name, args=args, daemon=True)
        t.start()
        if not name.startswith("flows-recv"):
            self._threads.append(t)
        return t

    def _close_sockets(self) -> None:
        # The sockets stay listed (closed) so stats() still reports their counters.
        for s in self._sockets:
            s.sock.close()

    def _submit(self, batch: list[tuple[bytes, str, int]]) -> None:
        with self._idle:
            self._in_flight += 1
        self._queue.put(batch)

    def _receive(self, s: _Socket) -> None:
        """Tight receive loop: bursts of non-blocking ``recvfrom`` (measured faster than
        ``recvfrom_into`` + copy and than asyncio, bench/collect.py), one clock read per
        burst, and a poll() only when the kernel queue is empty."""
        sock = s.sock
        sock.settimeout(None)  # blocking mode: no hidden poll() before every recv
        recv = sock.recvfrom
        dontwait = socket.MSG_DONTWAIT
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        batch_max = self.cfg.batch_datagrams
        wait = self.cfg.batch_wait_ms / 1000
        stop = self._stop
        batch: list[tuple[bytes, str, int]] = []
        append = batch.append
        first_at = 0.0
        drain_until: float | None = None
        while True:
            now = time.time()
            now_ms = int(now * 1000)
            had = len(batch)
            try:
                for _ in range(batch_max - had):
                    data, addr = recv(MAX_DATAGRAM, dontwait)
                    append((data, addr[0], now_ms))
                empty = False
            except (BlockingIOError, InterruptedError):
                empty = True
            except OSError:
                if stop.is_set():
                    break
                log.exception("receive error on %s", s.label)
                time.sleep(0.1)
                continue
            if batch and not had:
                first_at = now
            if batch and (len(batch) >= batch_max or (empty and now - first_at >= wait)
                          or stop.is_set()):
                self._hand_over(s, batch)
                batch = []
                append = batch.append
            if stop.is_set():
                if drain_until is None:
                    drain_until = now + DRAIN_SECONDS
                # Stop once the kernel queue is drained (everything accepted is in), or
                # after DRAIN_SECONDS if an exporter keeps the queue full.
                if empty or now >= drain_until:
                    break
                continue
            if empty:
                left = wait - (now - first_at) if batch else 0.1
                poller.poll(max(1, int(min(left, 0.1) * 1000)))
        if batch:
            self._hand_over(s, batch)

    def _hand_over(self, s: _Socket, batch: list[tuple[bytes, str, int]]) -> None:
        s.datagrams += len(batch)
        s.bytes += sum([len(item[0]) for item in batch])
        self._submit(batch)

    def _decode_loop(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                break
            try:
                self._process(batch)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()

    def _process(self, batch: list[tuple[bytes, str, int]]) -> None:
        timing = self.stage_seconds
        t0 = time.perf_counter()
        try:
            batches = self._decoder.feed_many(batch)
        except Exception:  # the decoder counts bad input itself; this is a bug guard
            self.internal_errors += 1
            log.exception("decoder failed on a batch of %d datagrams", len(batch))
            return
        batches = [b for b in batches if b.num_rows]
        t1 = time.perf_counter()
        timing["decode"] += t1 - t0
        if not batches:
            return
        table = pa.Table.from_batches(batches)
        if self.enricher is not None:
            try:
                table = self.enricher(table)
            except Exception:
                # Store the flows unenriched rather than lose them.
                self.internal_errors += 1
                log.exception("enrichment failed; storing %d flows unenriched", table.num_rows)
        t2 = time.perf_counter()
        timing["enrich"] += t2 - t1
        try:
            self.writer.add(table)
            if self.writer.full:
                self._flush_now.set()
        except Exception:
            self.internal_errors += 1
            log.exception("storing %d flows failed", table.num_rows)
        self.flows_out += table.num_rows
        t3 = time.perf_counter()
        timing["store"] += t3 - t2
        for fn in list(self._listeners):
            try:
                fn(table)
            except Exception:
                self.internal_errors += 1
                log.exception("flow listener %r failed", fn)
        timing["listeners"] += time.perf_counter() - t3

    def _housekeeping(self) -> None:
        last_stats = 0.0
        last_retention = 0.0
        while not self._stop.is_set():
            self._flush_now.wait(0.5)
            self._flush_now.clear()
            try:
                t = time.perf_counter()
                if self.writer.full:
                    self.writer.flush()
                self.writer.maybe_flush()
                self.stage_seconds["flush"] += time.perf_counter() - t
                now = time.monotonic()
                if now - last_stats >= self.cfg.stats_interval_seconds:
                    self._write_stats()
                    last_stats = now
                if now - last_retention >= 3600:
                    self.writer.enforce_retention()
                    last_retention = now
            except Exception:
                self.internal_errors += 1
                log.exception("flow housekeeping failed")

    def _write_stats(self) -> None:
        from aupguard.flows.metrics import write_stats_file

        try:
            write_stats_file(stats_path(self.settings), self.stats())
        except OSError:
            log.exception("cannot write the collector stats file")

    def _start_metrics(self) -> None:
        from prometheus_client import start_http_server

        from aupguard.flows.metrics import make_registry

        try:
            server, _thread = start_http_server(self.cfg.metrics_port, self.cfg.metrics_address,
                                                registry=make_registry(self.stats))
        except OSError as exc:
            log.warning("metrics endpoint %s:%d unavailable (%s); stats still go to %s",
                        self.cfg.metrics_address, self.cfg.metrics_port, exc.strerror,
                        stats_path(self.settings))
            return
        self._metrics_server = server


def _decoder_stats(decoder: Any) -> dict[str, dict[str, Any]]:
    """The decoder's per-exporter counters as plain dicts."""
    if decoder is None:
        return {}
    stats = decoder.stats
    for _ in range(5):  # the decoder thread may add an exporter while we copy
        try:
            raw = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
            break
        except RuntimeError:
            time.sleep(0.001)
    else:
        return {}
    if "exporters" in raw and isinstance(raw["exporters"], dict):
        raw = raw["exporters"]
    return {str(k): (v if isinstance(v, dict) else getattr(v, "__dict__", {}))
            for k, v in raw.items()}


def _load_enricher(settings: Settings, store: Store | None) -> Enricher | None:
    try:
        from aupguard.routing.enrich import build_enricher
    except ImportError:
        log.info("aupguard.routing.enrich is not available: flows are stored without "
                 "client/ASN enrichment")
        return None
    return build_enricher(settings, store)
