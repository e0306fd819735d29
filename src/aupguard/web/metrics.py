"""Prometheus metrics for /metrics: request counts plus state read at scrape time."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select


class _StateCollector:
    """Gauges computed from the store on each scrape (cheap COUNT queries)."""

    def __init__(self, store):
        self.store = store

    def collect(self):
        from aupguard.incidents import IncidentRow
        from aupguard.store.outbox import OutboxMessage

        incidents = GaugeMetricFamily("aupguard_incidents", "Incidents by status",
                                      labels=["status"])
        outbox = GaugeMetricFamily("aupguard_outbox_messages", "Outbox messages by status",
                                   labels=["status"])
        with self.store.session() as session:
            for status, count in session.execute(
                    select(IncidentRow.status, func.count()).group_by(IncidentRow.status)):
                incidents.add_metric([status], count)
            for status, count in session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)):
                outbox.add_metric([status], count)
        yield incidents
        yield outbox


class Metrics:
    def __init__(self, store):
        self.registry = CollectorRegistry()
        self.requests = Counter("aupguard_http_requests", "HTTP requests served",
                                ["method", "route", "status"], registry=self.registry)
        self.registry.register(_StateCollector(store))
        self._lock = threading.Lock()

    def observe(self, method: str, route: str, status: int) -> None:
        self.requests.labels(method, route, str(status)).inc()

    def render(self) -> tuple[bytes, str]:
        with self._lock:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
