"""Intake fixtures: a registry with time-bounded and CGNAT port-range assignments."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

import aupguard.intake

SAMPLES = Path(aupguard.intake.__file__).resolve().parent / "samples"
HANDOVER = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def seed_registry(session) -> None:
    """198.51.100.0/25 passes from acme to bravo at 12:00 on 2026-11-28; 203.0.113.0/24 is
    a CGNAT pool split by source port; 10.17.18.0/24 holds the shared FBL samples."""
    from aupguard.registry import Client, add_assignment, add_client

    add_client(session, Client(id="resel", name="Reseller Ltd", abuse_email="abuse@resel.example"))
    add_client(session, Client(id="acme", name="Acme", parent_id="resel"))
    add_client(session, Client(id="bravo", name="Bravo"))
    add_client(session, Client(id="cgnat-a", name="CGNAT user A"))
    add_client(session, Client(id="cgnat-b", name="CGNAT user B"))
    add_client(session, Client(id="delta", name="Delta"))
    add_assignment(session, "acme", "198.51.100.0/25",
                   valid_from=datetime(2026, 1, 1, tzinfo=timezone.utc), valid_to=HANDOVER)
    add_assignment(session, "bravo", "198.51.100.0/25", valid_from=HANDOVER)
    add_assignment(session, "cgnat-a", "203.0.113.0/24", port_lo=1024, port_hi=32767)
    add_assignment(session, "cgnat-b", "203.0.113.0/24", port_lo=32768, port_hi=65535)
    add_assignment(session, "delta", "10.17.18.0/24")


@pytest.fixture
def intake_settings(settings):
    settings.intake.addresses = ["abuse@localhost", "abuse@isp.example"]
    return settings


@pytest.fixture
def seeded(sqlite_store):
    with sqlite_store.session() as session:
        seed_registry(session)
    return sqlite_store


@pytest.fixture
def intake(intake_settings, seeded):
    from aupguard.intake.pipeline import Intake

    return Intake(intake_settings, seeded, index_ttl=0)
