"""Thresholds: global, per client and per host group overrides take effect."""

from __future__ import annotations

import pyarrow as pa
import pytest

from aupguard.config import parse_settings
from aupguard.detect.config import DetectSettings
from aupguard.detect.engine import Engine
from aupguard.detect.prepare import Context
from aupguard.errors import ConfigError
from tests.detect import flowgen as g

BETA_VICTIM = "203.0.113.5"
OTHER_ACME = "198.51.100.11"


def floods(pps: int) -> pa.Table:
    """The same SYN flood toward acme's victim, another acme host and a beta host."""
    return pa.concat_tables([g.syn_flood_in(1, g.T0, pps=pps, victim=g.VICTIM),
                             g.syn_flood_in(2, g.T0, pps=pps, victim=OTHER_ACME),
                             g.syn_flood_in(3, g.T0, pps=pps, victim=BETA_VICTIM)])


def victims(settings: DetectSettings, table: pa.Table, rules=("syn_flood_in",)) -> dict[str, dict]:
    engine = Engine(settings, Context(index=g.index()), list(rules))
    engine.ingest(table)
    return {d.victim: d.thresholds for d in engine.evaluate()}


def test_defaults_and_global_override():
    assert set(victims(DetectSettings(), floods(30000))) == {g.VICTIM, OTHER_ACME, BETA_VICTIM}
    assert victims(DetectSettings(), floods(10000)) == {}
    raised = DetectSettings(thresholds={"syn_flood_in": {"pps": 40000}})
    assert victims(raised, floods(30000)) == {}


def test_client_override():
    settings = DetectSettings(clients={"acme": {"syn_flood_in": {"pps": 50000}}})
    found = victims(settings, floods(30000))
    assert set(found) == {BETA_VICTIM}            # acme tolerates more
    assert found[BETA_VICTIM]["pps"] == 20000
    lowered = DetectSettings(clients={"beta": {"syn_flood_in": {"pps": 5000}}})
    found = victims(lowered, floods(8000))
    assert set(found) == {BETA_VICTIM} and found[BETA_VICTIM]["pps"] == 5000


def test_host_group_override_beats_client():
    settings = DetectSettings(
        clients={"acme": {"syn_flood_in": {"pps": 50000}}},
        host_groups={"fragile": {"prefixes": [f"{g.VICTIM}/32"],
                                 "thresholds": {"syn_flood_in": {"pps": 5000}}}})
    found = victims(settings, floods(8000))
    assert set(found) == {g.VICTIM}
    assert found[g.VICTIM]["pps"] == 5000


def test_host_group_raises_reflector_threshold():
    table = g.reflector(1, g.T0, pps=5000)
    assert set(victims(DetectSettings(), table, ["reflection_reflector"])) == {"45.9.9.9"}
    dns = DetectSettings(host_groups={"resolvers": {
        "prefixes": ["198.51.100.48/28"], "thresholds": {"reflection_reflector": {"pps": 10000}}}})
    assert victims(dns, table, ["reflection_reflector"]) == {}


def test_scan_threshold_override_per_client():
    table = g.horizontal_scan(1, g.T0, hosts=20)   # below Zeek's 25
    assert victims(DetectSettings(), table, ["horizontal_scan"]) == {}
    strict = DetectSettings(clients={"beta": {"horizontal_scan": {"hosts": 15}}})
    engine = Engine(strict, Context(index=g.index()), ["horizontal_scan"])
    engine.ingest(table)
    (det,) = engine.evaluate()
    assert det.offender == g.BETA_HOST and det.metrics["hosts"] == 20 and det.thresholds["hosts"] == 15


def test_sampled_flows_scale_distinct_counts():
    """At 1:10 sampling, 5 observed probe targets stand for about 50 hosts."""
    table = g.horizontal_scan(1, g.T0, hosts=5)
    table = table.set_column(table.schema.get_field_index("sampling_rate"), "sampling_rate",
                             pa.array([10] * table.num_rows, pa.uint32()))
    engine = Engine(DetectSettings(), Context(index=g.index()), ["horizontal_scan"])
    engine.ingest(table)
    (det,) = engine.evaluate()
    assert det.metrics == {"hosts": 50.0, "seen": 5.0}


@pytest.mark.parametrize("detect, message", [
    ({"thresholds": {"syn_flod": {"pps": 1}}}, "unknown rule 'syn_flod'"),
    ({"clients": {"acme": {"syn_flood_in": {"ppz": 1}}}}, "unknown threshold 'ppz'"),
    ({"host_groups": {"x": {"prefixes": ["not-a-prefix"]}}}, "is not a prefix"),
    ({"client_interfaces": {"acme": ["192.0.2.1"]}}, "exporter-ip:ifindex"),
])
def test_bad_threshold_config_is_a_clear_error(detect, message):
    settings = parse_settings({"detect": detect})
    with pytest.raises(ConfigError, match=message):
        Engine(settings.detect, Context(interfaces=Context.interface_map(
            settings.detect.client_interfaces)))
