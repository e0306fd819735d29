"""Collector counters as Prometheus metrics and as a JSON stats file.

The counters are not updated per datagram in prometheus_client objects (that
would cost a lock per datagram); a custom collector reads the collector's
snapshot at scrape time instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

# Per-exporter counters: (stats key, metric name, help).
EXPORTER_COUNTERS = [
    ("datagrams", "aupguard_flow_datagrams", "Export datagrams received, per exporter"),
    ("records", "aupguard_flow_records", "Flow records decoded, per exporter"),
    ("sequence_gaps", "aupguard_flow_sequence_gaps",
     "Sequence-number gaps seen (records or datagrams lost upstream), per exporter"),
]


class StatsCollector:
    """A prometheus_client collector over ``snapshot()`` (Collector.stats)."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]):
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        s = self._snapshot()
        exporters = s.get("exporters", {})
        for key, name, help_text in EXPORTER_COUNTERS:
            fam = CounterMetricFamily(name, help_text, labels=["exporter"])
            for exporter, c in exporters.items():
                fam.add_metric([exporter], float(c.get(key, 0)))
            yield fam
        errors = CounterMetricFamily("aupguard_flow_decode_errors",
                                     "Datagrams or records that could not be decoded, by kind",
                                     labels=["exporter", "kind"])
        for exporter, c in exporters.items():
            for kind, n in (c.get("errors") or {}).items():
                errors.add_metric([exporter, kind], float(n))
        yield errors
        pending = GaugeMetricFamily("aupguard_flow_pending_records",
                                    "Data records waiting for their template", labels=["exporter"])
        for exporter, c in exporters.items():
            pending.add_metric([exporter], float(c.get("pending", 0)))
        yield pending
        drops = CounterMetricFamily("aupguard_flow_socket_drops",
                                    "Datagrams the kernel dropped on the socket (buffer full)",
                                    labels=["socket"])
        rcvbuf = GaugeMetricFamily("aupguard_flow_socket_rcvbuf_bytes",
                                   "Receive buffer the kernel granted", labels=["socket"])
        for sock in s.get("sockets", []):
            drops.add_metric([sock["listen"]], float(sock.get("kernel_drops") or 0))
            rcvbuf.add_metric([sock["listen"]], float(sock.get("rcvbuf_bytes") or 0))
        yield drops
        yield rcvbuf
        store = s.get("store", {})
        yield CounterMetricFamily("aupguard_flow_stored_records",
                                  "Flow records written to Parquet", value=store.get("records_written", 0))
        yield GaugeMetricFamily("aupguard_flow_buffered_records",
                                "Flow records waiting for the next Parquet flush",
                                value=store.get("buffered", 0))
        yield CounterMetricFamily("aupguard_flow_internal_errors",
                                  "Batches that failed in enrichment, store or a listener",
                                  value=s.get("internal_errors", 0))


def make_registry(snapshot: Callable[[], dict[str, Any]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(snapshot))
    return registry


def write_stats_file(path: Path, stats: dict[str, Any]) -> None:
    """Atomically replace the stats file (readers never see half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".stats-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(stats, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def read_stats_file(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
