"""Every rule is portable SQL: it runs on DuckDB and transpiles to Spark with sqlglot."""

from __future__ import annotations

import re

import pytest
import sqlglot

from aupguard.detect.config import DetectSettings
from aupguard.detect.engine import Engine
from aupguard.detect.prepare import PREPARED_SCHEMA
from aupguard.detect.rules import ALL_RULES, STANDARD_COLUMNS, literal

RULES = list(ALL_RULES.values())


def test_literals_are_cast_doubles():
    assert literal(300) == "CAST(300 AS DOUBLE)"
    assert literal(0.9) == "CAST(0.9 AS DOUBLE)"


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule_transpiles_to_spark_and_parses(rule):
    sql = rule.query(1_000_000, 1_000_000 + int(rule.window_s * 1000), rule.defaults)
    # No bare decimal literal outside CAST(... AS DOUBLE): Spark would read it as DECIMAL.
    bare = re.sub(r"CAST\(\d+(\.\d+)? AS DOUBLE\)", "", sql)
    assert not re.search(r"(?<![\w.])\d+\.\d+(?![\w.])", bare), bare
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    parsed = sqlglot.parse_one(spark, read="spark")
    assert parsed.find(sqlglot.exp.Select) is not None
    names = [e.alias_or_name for e in parsed.find(sqlglot.exp.Select).expressions]
    assert names == ["*"]
    inner = sqlglot.parse_one(rule.render(0, int(rule.window_s * 1000)), read="duckdb")
    columns = [e.alias_or_name for e in inner.expressions]
    assert columns[:len(STANDARD_COLUMNS)] == list(STANDARD_COLUMNS)
    assert set(rule.metrics) <= set(columns)
    assert "ARG_MAX" not in spark.upper()  # mapped to Spark's MAX_BY


def test_every_rule_runs_on_duckdb_over_an_empty_window():
    engine = Engine(DetectSettings())
    engine.con.register("flows", PREPARED_SCHEMA.empty_table())
    for rule in RULES:
        result = engine.con.sql(rule.query(0, 300_000, rule.defaults)).to_arrow_table()
        assert result.num_rows == 0
        assert result.column_names[:len(STANDARD_COLUMNS)] == list(STANDARD_COLUMNS)


def test_every_clause_is_in_the_policy_catalogue():
    from aupguard.policy import CLAUSE_IDS

    assert {r.clause_id for r in RULES} <= set(CLAUSE_IDS)
    assert all(r.source and r.description for r in RULES)
