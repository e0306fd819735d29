"""Bulk mail: verified opt-in records, suppression lists, spam traps.

Functions other stages call: :func:`suppress_from_complaint` and
:func:`check_complaint` (intake, on FBL/ARF complaints), :func:`record_trap_hit`
and :func:`is_trap` (intake, on trap hits), :func:`import_records`,
:func:`records_for`, :func:`screen` (web console).
"""

from aupguard.bulkmail.optin import (
    answer_request, escalate_overdue, import_records, list_requests, produce, records_for,
    request_records,
)
from aupguard.bulkmail.suppress import (
    add_one, add_suppressions, check_complaint, is_suppressed, screen, suppress_from_complaint,
)
from aupguard.bulkmail.traps import indicators, is_trap, record_trap_hit

__all__ = [
    "answer_request", "escalate_overdue", "import_records", "list_requests", "produce",
    "records_for", "request_records", "add_one", "add_suppressions", "check_complaint",
    "is_suppressed", "screen", "suppress_from_complaint", "indicators", "is_trap",
    "record_trap_hit",
]
