"""Incidents: what detection, intake and the monitors found, before it becomes a case.

Producers (``detect``, ``intake``, ``reputation``, ``bulkmail``) hand in
:class:`Finding` objects; :func:`report` stores them, growing an ongoing
incident with the same key instead of opening a new one. ``cases`` reads them.
"""

from aupguard.incidents.model import Finding, IncidentRow
from aupguard.incidents.store import end_quiet, get, list_incidents, report

__all__ = ["Finding", "IncidentRow", "report", "end_quiet", "list_incidents", "get"]
