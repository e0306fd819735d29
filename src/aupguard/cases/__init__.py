"""Cases: incidents grouped per client x clause, notices, escalation, legal duties, evidence.

The service API is :mod:`aupguard.cases.service` (``from aupguard.cases import service as cases``).
"""
