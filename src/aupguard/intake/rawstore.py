"""Durable storage of received mail: a Maildir spool and a content-addressed raw store.

Hand-written rather than stdlib ``mailbox.Maildir`` because that never fsyncs:
a message we answered 250 for must survive a crash, so each file is written
to tmp/, fsynced, renamed into new/ and the directory fsynced, before we answer.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

_counter = itertools.count()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs(path: Path) -> None:
    """Flush the whole file system holding `path` once (Linux syncfs(2)): one flush for a
    batch of files instead of two fsyncs per file. Falls back to sync(2)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def durable_write(target: Path, data: bytes, tmp_dir: Path | None = None,
                  sync: bool = True) -> None:
    """Write, fsync, rename into place, fsync the directory: all or nothing.
    With sync=False the caller promises a syncfs() before it relies on the file."""
    tmp_dir = tmp_dir or target.parent
    tmp = tmp_dir / f".{target.name}.{os.getpid()}.{next(_counter)}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
    os.replace(tmp, target)
    if sync:
        fsync_dir(target.parent)


class RawStore:
    """Raw messages by SHA-256 (``raw/ab/<sha256>.eml``); writing twice is a no-op.
    One level of 256 folders: a second level costs a mkdir per message on a busy disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._unsynced = False

    def put(self, data: bytes, *, sync: bool = True) -> tuple[str, str]:
        digest = hashlib.sha256(data).hexdigest()
        ref = f"raw/{digest[:2]}/{digest}.eml"
        target = self.root / ref
        if not target.exists():
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
            durable_write(target, data, sync=sync)
            self._unsynced = self._unsynced or not sync
        return digest, ref

    def sync(self) -> None:
        """Make every put(sync=False) durable (before the database records it)."""
        if self._unsynced:
            syncfs(self.root)
            self._unsynced = False

    def get(self, ref: str) -> bytes:
        path = (self.root / ref).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"raw reference {ref!r} points outside the store")
        return path.read_bytes()


class Maildir:
    """The spool the SMTP listener and IMAP poller deliver into (tmp/ -> new/ -> cur/)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def deliver(self, data: bytes) -> Path:
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(_counter)}.{socket.gethostname()}"
        target = self.root / "new" / name
        durable_write(target, data, tmp_dir=self.root / "tmp")
        return target

    def pending(self) -> Iterator[Path]:
        """Delivered but not yet processed (oldest first): what a restart picks up."""
        yield from sorted((self.root / "new").iterdir())

    def done(self, path: Path) -> Path:
        target = self.root / "cur" / f"{path.name}:2,S"
        os.replace(path, target)
        return target
