"""The monthly per-ASN CDR report against a hand-computed month."""

from __future__ import annotations

import json

import pytest
import sqlglot
from typer.testing import CliRunner

from aupguard.accounting import sql as report_sql
from aupguard.accounting.report import asn_report, render_chart
from aupguard.errors import InputError
from aupguard.registry import Client, add_client

from .month_fixture import MBIT, MONTH, build_month, per_bin

APPROX = dict(rel=1e-9, abs=1e-3)


@pytest.fixture(scope="module")
def month_flows(tmp_path_factory):
    """The month's Parquet files, written once through the flow store's writer."""
    from aupguard.config import Settings

    data = tmp_path_factory.mktemp("month") / "data"
    build_month(Settings(data_dir=data))
    return data / "flows"


def _month(store, settings, month_flows):
    with store.session() as s:
        add_client(s, Client(id="acme", name="ACME", cdr_bps=1000 * MBIT))
        add_client(s, Client(id="beta", name="Beta", cdr_bps=100 * MBIT))
        add_client(s, Client(id="gamma", name="Gamma"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "flows").symlink_to(month_flows, target_is_directory=True)
    return settings, store


@pytest.fixture
def month_any_db(store, settings, month_flows):
    """On SQLite and PostgreSQL (the registry's CDRs come from either)."""
    return _month(store, settings, month_flows)


@pytest.fixture
def month(sqlite_store, settings, month_flows):
    return _month(sqlite_store, settings, month_flows)


def _rows(report):
    return {(r.client_id, r.asn): r for r in report.rows}


def test_hand_computed_month(month_any_db):
    settings, store = month_any_db
    report = asn_report(settings, store, MONTH)
    assert report.n_bins == 31 * 288 == 8928
    assert report.rank == 447  # drop the top 446 bins (5%), the 447th is the figure
    rows = _rows(report)
    p = {k: r.p_bps for k, r in rows.items()}
    assert p[("acme", 64501)] == pytest.approx(99 * MBIT, **APPROX)
    assert p[("acme", 64502)] == pytest.approx(101 * MBIT, **APPROX)
    assert p[("acme", 174)] == pytest.approx(101 * MBIT, **APPROX)
    assert p[("acme", 64503)] == pytest.approx(30 * MBIT, **APPROX)
    assert p[("acme", 3356)] == pytest.approx(129 * MBIT, **APPROX)  # 99 + 30: two origins sum
    assert p[("acme", 64504)] == pytest.approx(120 * MBIT, **APPROX)  # in + out summed
    assert rows[("acme", 64504)].p_in_bps == pytest.approx(60 * MBIT, **APPROX)
    assert rows[("acme", 64504)].p_out_bps == pytest.approx(60 * MBIT, **APPROX)
    # a burst of 100 bins does not reach the 447th bin: p95 is 0, the peak shows it
    assert p[("acme", 64599)] == 0 and rows[("acme", 64599)].peak_bps == pytest.approx(1000 * MBIT, **APPROX)
    # the flow straddling the month start: only its October half (5 of 10 minutes)
    assert rows[("acme", 64505)].total_bytes == pytest.approx(300_000_000, **APPROX)
    # outside the month / nobody's traffic never reach acme's 64502 totals
    assert rows[("acme", 64502)].total_bytes == pytest.approx(per_bin(101 * MBIT) * 500, **APPROX)
    # beta: flows spanning bin edges spread pro rata
    assert p[("beta", 64510)] == pytest.approx(10.5 * MBIT, **APPROX)
    assert rows[("beta", 64510)].busy_bins == 1001
    assert p[("beta", 64511)] == pytest.approx(9.9 * MBIT, **APPROX)

    void = {(r.client_id, r.asn) for r in report.void}
    assert void == {("acme", 64502), ("acme", 174), ("acme", 3356), ("acme", 64504), ("acme", 2914),
                    ("beta", 64510), ("beta", 1299)}
    assert rows[("acme", 64501)].verdict == "within limit" and not rows[("acme", 64501)].over
    assert rows[("acme", 3356)].role == "transit" and rows[("acme", 64501)].role == "origin"
    assert rows[("acme", 3356)].limit_bps == pytest.approx(100 * MBIT)
    assert rows[("acme", 64502)].verdict == "no performance guarantee toward AS64502 this month"
    assert rows[("gamma", 64520)].verdict == "no CDR on file" and not rows[("gamma", 64520)].over
    assert {c.client_id: c.void_asns for c in report.clients}["beta"] == [64510, 1299] or \
        sorted({c.client_id: c.void_asns for c in report.clients}["beta"]) == [1299, 64510]
    assert any("gamma" in n for n in report.notes)


def test_max_mode_and_client_filter(month):
    settings, store = month
    settings.accounting.direction_mode = "max"
    report = asn_report(settings, store, MONTH, client_id="acme")
    rows = _rows(report)
    assert {r.client_id for r in report.rows} == {"acme"}
    assert rows[("acme", 64504)].p_bps == pytest.approx(60 * MBIT, **APPROX)
    assert {r.asn for r in report.void} == {64502, 174, 3356}
    assert any("direction_mode = max" in line for line in report.definition)


def test_other_percentile_and_threshold(month):
    settings, store = month
    settings.accounting.percentile = 99.0   # rank 90: the 1 Gbit/s burst of 100 bins now counts
    settings.accounting.threshold_share = 0.5
    report = asn_report(settings, store, MONTH, client_id="acme")
    assert report.rank == 8928 - 8839 + 1 == 90
    rows = _rows(report)
    assert rows[("acme", 64599)].p_bps == pytest.approx(1000 * MBIT, **APPROX)
    assert {r.asn for r in report.void} == {64599, 6939}


def test_empty_month_and_bad_input(month):
    settings, store = month
    report = asn_report(settings, store, "2026-07")
    assert report.rows == [] and report.notes and "no flows stored" in report.notes[0]
    with pytest.raises(InputError, match="YYYY-MM"):
        asn_report(settings, store, "October")
    with pytest.raises(InputError, match="no client"):
        asn_report(settings, store, MONTH, client_id="nobody")


def test_chart_png_and_svg(month, tmp_path):
    settings, store = month
    report = asn_report(settings, store, MONTH)
    png = render_chart(report, tmp_path / "asn.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    svg = render_chart(report, tmp_path / "asn.svg").read_text()
    assert "<svg" in svg and "AS64502" in svg and "AS3356" in svg
    with pytest.raises(InputError):
        render_chart(report, tmp_path / "asn.gif")


def test_cli_json_csv_table(month, tmp_path):
    settings, store = month
    from aupguard.cli import app

    conf = tmp_path / "aupguard.toml"
    conf.write_text(f'data_dir = "{settings.data_dir}"\n[store]\nurl = "{store.url}"\n')
    runner = CliRunner()
    base = ["--config", str(conf), "report", "asn", "--month", MONTH]
    res = runner.invoke(app, base + ["--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {(v["client_id"], v["asn"]) for v in data["void"]} >= {("acme", 3356), ("beta", 64510)}
    res = runner.invoke(app, base + ["--csv", "--client", "beta"])
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("client_id,client_name,asn") and len(lines) == 1 + 4
    res = runner.invoke(app, base + ["--chart", str(tmp_path / "c.svg")])
    assert res.exit_code == 0, res.output
    assert "no performance guarantee toward AS3356 this month" in res.stdout
    assert (tmp_path / "c.svg").exists()


def test_sql_transpiles_to_spark():
    text = report_sql.render(1790812800000, 1793491200000, 300, 95.0, client_id="o'brien")
    spark = report_sql.to_spark(text)
    assert "UNIX_MILLIS(" in spark and "TIMESTAMP_MILLIS" not in spark
    assert "EXPLODE(SEQUENCE(" in spark and "SORT_ARRAY(COLLECT_LIST(" in spark
    assert "_sorted[446]" in spark  # DuckDB lists are 1-based, Spark arrays 0-based
    assert "'o\\'brien'" in spark or "'o''brien'" in spark
    sqlglot.parse_one(spark, read="spark")  # parses as Spark SQL
    assert "300.0" not in spark


def test_memory_limit_is_applied_and_explained(month):
    from aupguard.errors import AupguardError

    settings, store = month
    settings.accounting.memory_limit = "1MB"
    try:
        report = asn_report(settings, store, MONTH)
    except AupguardError as exc:  # too small even to spill: a message that says what to do
        assert "memory_limit" in str(exc) and "Spark" in str(exc)
    else:  # DuckDB spilled to DATA_DIR/tmp and still got the exact answer
        assert _rows(report)[("acme", 3356)].p_bps == pytest.approx(129 * MBIT, **APPROX)
