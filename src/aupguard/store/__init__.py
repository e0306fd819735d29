"""Operational state: database engine, migrations, audit log, outbox."""

from aupguard.store.db import Base, Store, open_store
from aupguard.store.types import UTCDateTime, utcnow

__all__ = ["Base", "Store", "open_store", "UTCDateTime", "utcnow"]
