"""Importing existing mail: Maildir folders, mbox files, single files, and IMAP polling."""

from __future__ import annotations

import imaplib
import mailbox
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from aupguard.errors import InputError

SKIP_SUFFIXES = {".md", ".py", ".pyc", ".toml"}


@lru_cache(maxsize=8)
def _maildir(path: Path) -> mailbox.Maildir:
    # One object per folder: each new Maildir object rescans the whole folder.
    return mailbox.Maildir(path, factory=None, create=False)


@lru_cache(maxsize=8)
def _mbox(path: Path) -> mailbox.mbox:
    return mailbox.mbox(path, factory=None, create=False)


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _is_mbox(path: Path) -> bool:
    """Files starting "From " are mbox (a saved .eml with that line is an mbox of one)."""
    with open(path, "rb") as handle:
        return handle.read(5) == b"From "


def sources(path: Path) -> list[tuple[str, Path, str | None]]:
    """What to read under `path`: (kind, file or folder, mbox/maildir key or None)."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        if _is_maildir(path):
            _maildir.cache_clear()
            return [("maildir", path, key) for key in sorted(_maildir(path).keys())]
        found = []
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if child.suffix.lower() in SKIP_SUFFIXES or child.name.startswith("."):
                continue
            if any(part in ("tmp",) for part in child.relative_to(path).parts[:-1]):
                continue
            found.extend(sources(child))
        return found
    if _is_mbox(path):
        _mbox.cache_clear()
        return [("mbox", path, key) for key in _mbox(path).keys()]
    return [("file", path, None)]


def read_source(kind: str, path: Path, key) -> tuple[bytes, str]:
    if kind == "maildir":
        return _maildir(path).get_bytes(key), ""
    if kind == "mbox":
        return _mbox(path).get_bytes(key), ""
    return path.read_bytes(), path.name


def iter_path(path: Path) -> Iterator[tuple[bytes, str]]:
    for kind, where, key in sources(path):
        yield read_source(kind, where, key)


def poll_imap(intake, *, host: str, port: int, user: str, password: str,
              folder: str = "INBOX", use_ssl: bool = True, limit: int = 500,
              timeout: float = 30.0) -> int:
    """Fetch unseen messages, ingest each, then flag it \\Seen. Returns the count ingested.

    A message is flagged only after its ingest committed, so a crash re-fetches it and
    de-duplication (same reporter and content) recognises it.
    """
    cls = imaplib.IMAP4_SSL if use_ssl else imaplib.IMAP4
    try:
        client = cls(host, port, timeout=timeout)
    except OSError as exc:
        raise InputError(f"cannot reach IMAP server {host}:{port}: {exc}") from None
    count = 0
    try:
        try:
            client.login(user, password)
        except imaplib.IMAP4.error as exc:
            raise InputError(f"IMAP login as {user!r} failed: {exc}") from None
        status, _ = client.select(folder)
        if status != "OK":
            raise InputError(f"IMAP folder {folder!r} cannot be selected")
        status, data = client.uid("SEARCH", None, "UNSEEN")
        uids = data[0].split()[:limit] if status == "OK" and data and data[0] else []
        for uid in uids:
            status, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched or [] if isinstance(item, tuple)), None)
            if status != "OK" or raw is None:
                continue
            intake.ingest(raw, source="imap")
            client.uid("STORE", uid, "+FLAGS", r"(\Seen)")
            count += 1
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return count

