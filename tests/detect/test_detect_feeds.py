"""Threat feeds: each format parsed from samples, hostile input fuzzed, CLI load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.detect import feeds
from aupguard.errors import InputError

DATA = Path(__file__).parent / "data"


def test_plain():
    result = feeds.parse(DATA / "c2-plain.txt", "plain")
    assert [p for p, _ in result.entries] == ["45.66.66.66/32", "45.66.67.0/24", "2001:db8:c2::1/128"]
    assert result.bad == 1 and "not-an-address" in result.errors[0]


def test_drop_text_and_json():
    text = feeds.parse(DATA / "drop.txt", "drop")
    assert text.entries == [("1.10.16.0/20", "SBL256894"), ("2.56.192.0/22", "SBL459831"),
                            ("5.42.92.0/24", "SBL618112")]
    assert text.bad == 1
    js = feeds.parse(DATA / "drop_v4.json", "drop")
    assert js.entries == text.entries[:2] and js.bad == 0


def test_feodo_csv():
    result = feeds.parse(DATA / "feodo.csv", "feodo")
    assert result.entries == [("45.66.66.66/32", "QakBot online"), ("50.16.16.211/32", "Emotet offline")]
    assert result.bad == 1 and "line 10" in result.errors[0]


def test_unknown_format_and_empty_feed(tmp_path):
    with pytest.raises(InputError, match="unknown feed format"):
        feeds.parse(DATA / "drop.txt", "stix")
    with pytest.raises(InputError, match="cannot read"):
        feeds.parse(tmp_path / "absent.txt", "plain")


@hsettings(max_examples=150, deadline=None)
@given(st.text(max_size=400), st.sampled_from(feeds.FORMATS))
def test_parsers_never_crash_on_hostile_text(text, fmt):
    result = feeds.PARSERS[fmt](text)
    assert result.bad >= 0 and len(result.errors) <= feeds.MAX_ERRORS_KEPT
    for prefix, label in result.entries:
        assert "/" in prefix and len(label) <= 300


def test_cli_load_replace_and_list(tmp_path, sqlite_store):
    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    runner = CliRunner()
    load = runner.invoke(app, ["-c", str(config), "feeds", "load", str(DATA / "feodo.csv"),
                               "--format", "feodo", "--name", "feodo", "--json"])
    assert load.exit_code == 0, load.output
    assert json.loads(load.output) | {"errors": []} == {"feed": "feodo", "entries": 2, "bad_lines": 1,
                                                        "errors": []}
    runner.invoke(app, ["-c", str(config), "feeds", "load", str(DATA / "drop.txt"), "--format", "drop"])
    # Loading again replaces the feed's entries instead of adding duplicates.
    runner.invoke(app, ["-c", str(config), "feeds", "load", str(DATA / "drop.txt"), "--format", "drop"])
    listed = json.loads(runner.invoke(app, ["-c", str(config), "feeds", "list", "--json"]).output)
    assert listed == [{"feed": "drop", "format": "drop", "entries": 3},
                      {"feed": "feodo", "format": "feodo", "entries": 2}]
    bad = runner.invoke(app, ["-c", str(config), "feeds", "load", str(DATA / "drop.txt"),
                              "--format", "feodo"])
    assert bad.exit_code != 0
