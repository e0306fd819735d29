"""The AUP as data: versions, clause catalogue, posting and acceptance by continued use."""

from aupguard.policy.catalogue import CLAUSE_IDS, SHIPPED_VERSION, ClauseSpec
from aupguard.policy.service import (
    Clause,
    PolicyVersion,
    acceptances,
    clause_at,
    get_version,
    post_version,
    record_activity,
    shipped_version,
    version_at,
    versions,
)

__all__ = [
    "CLAUSE_IDS", "SHIPPED_VERSION", "ClauseSpec", "Clause", "PolicyVersion", "acceptances",
    "clause_at", "get_version", "post_version", "record_activity", "shipped_version",
    "version_at", "versions",
]
