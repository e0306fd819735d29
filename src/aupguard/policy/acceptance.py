"""Acceptance by continued use, fed from live traffic.

The collector calls :meth:`TrafficAcceptance.observe` with every enriched batch;
the distinct clients in it (one Arrow ``unique`` per batch, no per-flow loop) are
recorded as having used the service after the version in force was posted. A
small in-memory set keeps the database out of the hot path once a client's
acceptance of the current version is on record.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from aupguard.policy.service import record_activity, version_at

log = logging.getLogger(__name__)


class TrafficAcceptance:
    def __init__(self, store):
        self.store = store
        self._version: str | None = None
        self._recorded: set[str] = set()

    def observe(self, table: pa.Table) -> int:
        """Record acceptance for clients seen in this batch; returns how many were new."""
        if "client" not in table.column_names or table.num_rows == 0:
            return 0
        clients = [c for c in pc.unique(table.column("client")).to_pylist() if c]
        new = [c for c in clients if c not in self._recorded]
        if not new:
            return 0
        first = pc.min(table.column("start")).as_py() or datetime.now(timezone.utc)
        with self.store.session() as session:
            current = version_at(session, first).version
            if current != self._version:
                self._version, self._recorded = current, set()
                new = clients
            for client_id in new:
                record_activity(session, client_id, "traffic", first)
        self._recorded.update(new)
        return len(new)
