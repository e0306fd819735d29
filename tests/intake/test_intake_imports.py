"""Import sources: Maildir folders, mbox files, single files, folders of files."""

from __future__ import annotations

import mailbox

import pytest

from aupguard.errors import InputError
from aupguard.intake.imports import iter_path, sources
from tests.intake.conftest import SAMPLES, sample


def test_maildir_mbox_and_single_files(tmp_path, intake):
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for name in ("arf-fbl.eml", "xarf-02.eml", "acns.eml"):
        box.add(sample(name))
    mbox = mailbox.mbox(tmp_path / "complaints.mbox", create=True)
    for name in ("spamcop.eml", "freetext.eml"):
        mbox.add(sample(name))
    mbox.flush()
    single = tmp_path / "one.eml"
    single.write_bytes(sample("xarf-v4.eml"))

    assert [kind for kind, _, _ in sources(tmp_path / "Maildir")] == ["maildir"] * 3
    assert [kind for kind, _, _ in sources(tmp_path / "complaints.mbox")] == ["mbox"] * 2
    assert sources(single) == [("file", single, None)]
    results = intake.ingest_many([*iter_path(tmp_path / "Maildir"),
                                  *iter_path(tmp_path / "complaints.mbox"),
                                  *iter_path(single)], source="import")
    assert sorted(r.parser for r in results) == sorted(
        ["arf", "xarf", "acns", "spamcop", "freetext", "xarf"])
    assert all(r.status == "parsed" for r in results)


def test_folder_of_files_keeps_file_names_for_bare_reports(tmp_path):
    (tmp_path / "2026-11-28-scan_ntp-x.csv").write_bytes(
        b'"timestamp","ip","port"\n"2026-11-28 01:00:00","198.51.100.40",123\n')
    (tmp_path / "notes.md").write_text("ignored")
    found = list(iter_path(tmp_path))
    assert [name for _, name in found] == ["2026-11-28-scan_ntp-x.csv"]


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        sources(tmp_path / "nope")


def test_samples_folder_is_importable():
    assert len(list(iter_path(SAMPLES))) == len(list(SAMPLES.glob("*.eml")))
