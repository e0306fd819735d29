"""History mode (Parquet store) finds the same incidents as live mode on the same flows."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.detect.detector import LiveDetector, ms_to_dt, run_history
from aupguard.incidents import list_incidents
from aupguard.store.db import Store
from tests.detect import flowgen as g
from tests.detect.conftest import detect_settings, populate


def write_store(table: pa.Table, root) -> int:
    """The collector's layout: flows/date=YYYY-MM-DD/hour=HH/*.parquet."""
    hours = pc.cast(pc.cast(table.column("end"), pa.int64()), pa.int64()).to_numpy() // 3_600_000
    files = 0
    for h in np.unique(hours):
        part = table.filter(pa.array(hours == h))
        at = ms_to_dt(int(h) * 3_600_000)
        folder = root / f"date={at:%Y-%m-%d}" / f"hour={at:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        # Two files per hour, as a collector flushing twice would leave.
        half = part.num_rows // 2
        pq.write_table(part.slice(0, half), folder / "a.parquet")
        pq.write_table(part.slice(half), folder / "b.parquet")
        files += 2
    return files


def identities(store: Store) -> list[tuple]:
    with store.session() as session:
        return sorted((r.rule, r.key, r.client_id, r.clause_id, r.offender, r.victim)
                      for r in list_incidents(session))


def test_history_equals_live(tmp_path):
    # Straddle an hour boundary so the replay crosses partitions.
    base = (g.T0 // 3_600_000 + 1) * 3_600_000 - 20_000
    at = lambda sec: base + sec * 1000
    attacks = [g.syn_flood_in(1, at(4)), g.reflector(2, at(8)), g.horizontal_scan(3, at(10)),
               g.spoofing(4, at(14)), g.c2_contact(5, at(16)), g.brute_force(6, at(18)),
               g.smurf(7, at(22))]
    expected = ["syn_flood_in", "reflection_reflector", "horizontal_scan", "spoofing",
                "c2_contact", "brute_force", "smurf"]
    flows = pa.concat_tables([g.normal(3, base, 40)] + attacks).sort_by("end")

    live_store = Store(f"sqlite:///{tmp_path / 'live.db'}")
    live_store.migrate()
    populate(live_store, tmp_path)
    live = LiveDetector(detect_settings(tmp_path / "live"), live_store)
    # Live: irregular batches (as datagrams arrive), clock = arrival time.
    ends = pc.cast(flows.column("end"), pa.int64()).to_numpy()
    cuts = np.searchsorted(ends, np.arange(base, ends[-1] + 1700, 1700), side="right")
    prev = 0
    for cut in cuts:
        if cut > prev:
            live.process(flows.slice(prev, cut - prev), now_ms=int(ends[cut - 1]) + 200)
            prev = cut

    hist_store = Store(f"sqlite:///{tmp_path / 'hist.db'}")
    hist_store.migrate()
    populate(hist_store, tmp_path)
    settings = detect_settings(tmp_path / "hist")
    assert write_store(flows, settings.data_dir / "flows") == 4
    history = run_history(settings, hist_store, ms_to_dt(base), ms_to_dt(int(ends[-1]) + 1000),
                          step_s=1.7)
    assert history.engine.rows_in == flows.num_rows

    found = identities(live_store)
    assert sorted(f[0] for f in found) == sorted(expected)
    assert identities(hist_store) == found


def test_detect_cli_over_history(tmp_path):
    settings = detect_settings(tmp_path)
    store = Store(settings.database_url)
    store.migrate()
    populate(store, tmp_path)
    flows = pa.concat_tables([g.normal(5, g.T0, 20), g.syn_flood_in(6, g.T0 + 5000)]).sort_by("end")
    write_store(flows, settings.data_dir / "flows")
    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{settings.data_dir}"\n[detect.client_interfaces]\n'
                      f'beta = ["{g.EXPORTER}:7"]\n')
    since = ms_to_dt(g.T0).isoformat()
    until = (ms_to_dt(g.T0) + timedelta(seconds=30)).isoformat()
    runner = CliRunner()
    result = runner.invoke(app, ["-c", str(config), "detect", "--since", since, "--until", until,
                                 "--rules", "syn_flood_in,horizontal_scan", "--json"])
    assert result.exit_code == 0, result.output
    import json

    out = json.loads(result.output)
    assert out["flows"] == flows.num_rows
    (incident,) = out["incidents"]
    assert incident["rule"] == "syn_flood_in" and incident["victim"] == g.VICTIM
    assert incident["client_id"] == "acme"
    listed = runner.invoke(app, ["-c", str(config), "incidents", "list", "--json"])
    assert json.loads(listed.output)[0]["id"] == incident["id"]
    shown = runner.invoke(app, ["-c", str(config), "incidents", "show", str(incident["id"]), "--json"])
    detail = json.loads(shown.output)
    assert detail["metrics"]["measured"]["pps"] >= 20000 and len(detail["evidence"]) == 5
    # Flows before --since fill the windows but are not reported themselves.
    later = (ms_to_dt(g.T0) + timedelta(seconds=15)).isoformat()
    quiet = runner.invoke(app, ["-c", str(config), "detect", "--since", later, "--until", until,
                                "--rules", "syn_flood_in", "--json"])
    assert json.loads(quiet.output)["incidents"] == []
    missing = runner.invoke(app, ["-c", str(config), "detect", "--since", since, "--rules", "nope"])
    assert missing.exit_code != 0
