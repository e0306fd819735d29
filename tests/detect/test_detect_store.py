"""Feeds, incidents and mitigation state on SQLite and PostgreSQL (no BGP session needed)."""

from __future__ import annotations

import pyarrow as pa

from aupguard.detect import mitigate
from aupguard.detect.detector import LiveDetector
from aupguard.detect.feeds import entries
from aupguard.incidents import list_incidents
from aupguard.store.audit import verify
from tests.detect import flowgen as g
from tests.detect.conftest import detect_settings, populate


class RecordingSpeaker:
    """Stands in for the BGP session only; the ExaBGP path is tested against BIRD."""

    def __init__(self):
        self.lines: list[str] = []

    def announce(self, route: str) -> None:
        self.lines.append("announce " + route)

    def withdraw(self, route: str) -> None:
        self.lines.append("withdraw " + route)


def test_flood_c2_and_mitigation_state(store, tmp_path):
    populate(store, tmp_path)
    with store.session() as session:
        assert [(e.feed, e.prefix) for e in entries(session)] == [("test-c2", f"{g.C2_ADDRESS}/32")]
    settings = detect_settings(tmp_path, rules=["syn_flood_in", "c2_contact"], long_interval_s=1,
                               mitigation={"enabled": True, "auto": False, "hold_s": 10})
    speaker = RecordingSpeaker()
    detector = LiveDetector(settings, store, speaker=speaker)
    detector.replay(pa.concat_tables([g.syn_flood_in(1, g.T0), g.c2_contact(2, g.T0).slice(0, 1)]).sort_by("end"),
                    1000)
    with store.session() as session:
        rows = {r.rule: r for r in list_incidents(session)}
        assert set(rows) == {"syn_flood_in", "c2_contact"}
        assert rows["c2_contact"].metrics["feed"] == "test-c2"
        assert rows["syn_flood_in"].first_seen.tzinfo is not None
        (m,) = mitigate.list_mitigations(session)
        assert (m.status, m.prefix, m.incident_id) == ("pending", f"{g.VICTIM}/32", rows["syn_flood_in"].id)
        mitigate.approve(session, m.id, "analyst")
    detector.tick(g.T0 + 3500)
    assert speaker.lines == [f"announce route {g.VICTIM}/32 next-hop 192.0.2.1 community [65535:666]"]
    detector.replay(g.normal(3, g.T0 + 30_000, seconds=2), 1000)
    assert speaker.lines[-1].startswith(f"withdraw route {g.VICTIM}/32")
    with store.session() as session:
        (m,) = mitigate.list_mitigations(session)
        assert m.status == "withdrawn" and m.withdrawn_at is not None
        assert verify(session).ok
