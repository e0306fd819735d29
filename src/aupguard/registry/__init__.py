"""The client registry: clients, resellers, contracts and address assignments over time.

Attribution answers "who held address A at time T (port P)?" — scalar
(:meth:`AttributionIndex.who`) and vectorised over Arrow/numpy arrays
(:meth:`AttributionIndex.lookup`, :meth:`AttributionIndex.lookup_arrow`).
"""

from aupguard.registry.attribution import AMBIGUOUS, NOBODY, Attribution, AttributionIndex, Span
from aupguard.registry.models import Assignment, Client
from aupguard.registry.service import (
    add_assignment,
    add_client,
    end_assignment,
    get_client,
    list_assignments,
    list_clients,
    load_index,
    notice_recipients,
    reseller_chain,
)

__all__ = [
    "AMBIGUOUS", "NOBODY", "Attribution", "AttributionIndex", "Span", "Assignment", "Client",
    "add_assignment", "add_client", "end_assignment", "get_client", "list_assignments",
    "list_clients", "load_index", "notice_recipients", "reseller_chain",
]
