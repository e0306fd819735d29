"""`aupguard routes load / lookup / stats` end to end on an MRT file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.routing.synth import synthetic_rib, write_mrt

runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()


def _run(tmp_path, *args):
    conf = tmp_path / "aupguard.toml"
    conf.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return runner.invoke(app, ["--config", str(conf), *args])


def test_load_lookup_stats(tmp_path):
    rib = synthetic_rib(3000, 500, seed=5)
    mrt = write_mrt(rib, tmp_path / "rib.mrt")
    res = _run(tmp_path, "routes", "load", str(mrt), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["prefixes"] == len(rib) and summary["fault"] is None
    first = rib.route(0)
    addr = first["prefix"].split("/")[0]
    res = _run(tmp_path, "routes", "lookup", addr, "192.0.2.77", "--json")
    assert res.exit_code == 0, res.output
    answers = json.loads(res.stdout)
    got = answers[0]["route"]
    # the probe may fall in a more specific prefix, whose path we then check against the RIB
    expect = rib.lookup(addr)
    assert got["prefix"] == expect["prefix"] and got["as_path"] == expect["as_path"]
    assert got["origin_as"] == expect["as_path"][-1]
    res = _run(tmp_path, "routes", "stats", "--json")
    assert json.loads(res.stdout)["prefixes"] == len(rib)


def test_truncated_load_exits_1_and_keeps_snapshot(tmp_path):
    good = write_mrt(synthetic_rib(2000, 100, seed=6), tmp_path / "good.mrt")
    assert _run(tmp_path, "routes", "load", str(good)).exit_code == 0
    cut = tmp_path / "cut.mrt"
    cut.write_bytes(good.read_bytes()[:30_000])
    res = _run(tmp_path, "routes", "load", str(cut), "--json")
    assert res.exit_code == 1
    summary = json.loads(res.stdout)
    assert "byte offset" in summary["fault"] and "truncated" in summary["fault"]
    assert 0 < summary["prefixes"] < 2100
    assert (tmp_path / "data" / "routing" / "rib.partial.arrow").exists()
    stats = json.loads(_run(tmp_path, "routes", "stats", "--json").stdout)
    assert stats["prefixes"] > summary["prefixes"]  # the good snapshot stays in use


def test_lookup_without_snapshot_says_what_to_do(tmp_path):
    res = _run(tmp_path, "routes", "lookup", "192.0.2.1")
    assert res.exit_code != 0
    assert "aupguard routes load" in str(res.exception)
