"""The evidence store: content-addressed (SHA-256), append-only files.

A blob lives at ``<data_dir>/evidence/<aa>/<sha256>`` (read-only once
written); every ``put`` appends one JSON line of metadata to
``<sha256>.meta.jsonl`` beside it, so who handed it in, when and as what is
kept even when the same bytes arrive twice. Nothing rewrites a blob; only
:func:`apply_retention` deletes, and never while a legal hold covers it.
Deletions are appended to ``<data_dir>/evidence/retention.jsonl``.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aupguard.errors import InputError
from aupguard.store import audit
from aupguard.store.types import utcnow

MAX_BLOB = 64 * 1024 * 1024  # a complaint or flow excerpt larger than this is refused, not truncated
_SHA = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class EvidenceInfo:
    sha256: str
    size: int
    kind: str
    stored_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)
    present: bool = True


def root(settings) -> Path:
    return Path(settings.data_dir) / "evidence"


def _check(sha256: str) -> str:
    sha256 = sha256.lower()
    if not _SHA.match(sha256):
        raise InputError(f"{sha256!r} is not a SHA-256 hex digest (64 hex characters)")
    return sha256


def blob_path(settings, sha256: str) -> Path:
    sha256 = _check(sha256)
    return root(settings) / sha256[:2] / sha256


def syncfs(path: Path) -> None:
    """Flush the file system holding `path` (Linux syncfs; elsewhere a global sync).

    One call after a batch of ``put(..., sync=False)`` costs one flush instead of an
    fsync per blob: ingest of a burst of incidents is several times faster."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        os.sync()


def put(settings, data: bytes, kind: str, meta: dict[str, Any] | None = None,
        sync: bool = True) -> str:
    """Store bytes once; return their SHA-256. Re-putting the same bytes only appends metadata.

    sync=False skips the per-blob fsync; the caller must call :func:`syncfs` on
    :func:`root` before it commits anything that refers to the blob."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError("evidence must be bytes")
    data = bytes(data)
    if len(data) > MAX_BLOB:
        raise InputError(f"evidence of {len(data)} bytes exceeds the {MAX_BLOB}-byte limit")
    sha = hashlib.sha256(data).hexdigest()
    path = blob_path(settings, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write to a temp name and rename: a crash never leaves a half blob under its hash.
        tmp = path.with_name(f".{sha}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    line = {"at": utcnow().isoformat(), "kind": str(kind)[:50], "size": len(data),
            "meta": json.loads(json.dumps(meta or {}, default=str))}
    with open(path.with_name(sha + ".meta.jsonl"), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
    return sha


def get(settings, sha256: str) -> bytes:
    """The stored bytes, verified against their hash on the way out."""
    path = blob_path(settings, sha256)
    if not path.exists():
        raise InputError(f"evidence {sha256} is not in the store (deleted by retention or never stored)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256.lower():
        raise InputError(f"evidence {sha256} is corrupt: its content no longer matches its hash")
    return data


def verify(settings, sha256: str) -> bool:
    """True when the blob exists and still hashes to its name."""
    path = blob_path(settings, sha256)
    if not path.exists():
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == sha256.lower()


def info(settings, sha256: str) -> EvidenceInfo:
    """Metadata of a blob: the first put's kind and time, every put's metadata merged."""
    path = blob_path(settings, sha256)
    meta_path = path.with_name(sha256.lower() + ".meta.jsonl")
    lines = []
    if meta_path.exists():
        for raw in meta_path.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash; earlier lines stay valid
    first = lines[0] if lines else {}
    merged: dict[str, Any] = {}
    for line in lines:
        merged.update(line.get("meta") or {})
    stored = first.get("at")
    return EvidenceInfo(
        sha256=sha256.lower(),
        size=path.stat().st_size if path.exists() else int(first.get("size", 0)),
        kind=first.get("kind", "unknown"),
        stored_at=datetime.fromisoformat(stored) if stored else utcnow(),
        meta=merged, present=path.exists())


def custody(settings, sha256: str) -> list[dict[str, Any]]:
    """Every put of a blob (time, kind, metadata): its chain of custody in the store."""
    meta_path = blob_path(settings, sha256).with_name(sha256.lower() + ".meta.jsonl")
    if not meta_path.exists():
        return []
    out = []
    for raw in meta_path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return out


def iter_blobs(settings):
    base = root(settings)
    if not base.exists():
        return
    for sub in sorted(base.iterdir()):
        if sub.is_dir():
            for path in sorted(sub.iterdir()):
                if _SHA.match(path.name):
                    yield path.name


@dataclass
class SweepReport:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)


def sweep(settings) -> SweepReport:
    """Re-hash every blob in the store; list those whose content no longer matches."""
    report = SweepReport()
    for sha in iter_blobs(settings):
        report.checked += 1
        if not verify(settings, sha):
            report.corrupt.append(sha)
    return report


# --- references from other stages ------------------------------------------------------

_INTAKE_REF = re.compile(r"^raw/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})\.eml$")


def ref_of(item: Any) -> str | None:
    """The SHA-256 an incident evidence item refers to: ``{"sha256": ...}`` (this store) or
    intake's ``{"raw_ref": "raw/ab/cd/<sha256>.eml"}``; None for inline samples."""
    if not isinstance(item, dict):
        return None
    sha = item.get("sha256")
    if isinstance(sha, str) and _SHA.match(sha.lower()):
        return sha.lower()
    raw_ref = item.get("raw_ref")
    if isinstance(raw_ref, str):
        match = _INTAKE_REF.match(raw_ref)
        if match:
            return match.group(1)
    return None


def adopt(settings, item: Any) -> str | None:
    """Make sure the blob an item refers to is in this store; intake's raw messages are
    copied in (verified against their hash) so holds, exports and retention cover them."""
    sha = ref_of(item)
    if sha is None or blob_path(settings, sha).exists():
        return sha
    raw_ref = item.get("raw_ref") if isinstance(item, dict) else None
    if not isinstance(raw_ref, str) or not _INTAKE_REF.match(raw_ref):
        return sha  # referenced but absent: the case records the hash; the notice says so
    source = Path(settings.data_dir) / "intake" / raw_ref
    try:
        data = source.read_bytes()
    except OSError:
        return sha
    if hashlib.sha256(data).hexdigest() != sha:
        return sha  # a corrupt raw copy is not adopted as evidence
    meta = {k: item[k] for k in ("reference", "event_id", "kind") if k in item}
    put(settings, data, str(item.get("kind") or "complaint"), {"source": "intake", **meta})
    return sha


# --- legal hold -------------------------------------------------------------------------

def place_hold(session: Session, sha256: str, *, until: datetime | None, reason: str,
               actor: str, case_id: int | None = None) -> None:
    """Put evidence under legal hold (until=None: indefinitely). Audited."""
    from aupguard.cases.models import LegalHoldRow

    sha256 = _check(sha256)
    row = LegalHoldRow(sha256=sha256, case_id=case_id, reason=reason, start=utcnow(),
                       until=until, created_by=actor)
    session.add(row)
    session.flush()
    audit.record(session, actor, "evidence.hold", "evidence", sha256,
                 after={"until": until, "case": case_id, "reason": reason})


def is_held(session: Session, sha256: str, now: datetime) -> bool:
    from aupguard.cases.models import LegalHoldRow

    row = session.execute(
        select(LegalHoldRow.id).where(LegalHoldRow.sha256 == sha256.lower(),
                                      or_(LegalHoldRow.until.is_(None), LegalHoldRow.until > now))
        .limit(1)).first()
    return row is not None


def held_until(session: Session, sha256: str) -> tuple[bool, datetime | None]:
    """(held at all, latest end; None with True means indefinitely)."""
    from aupguard.cases.models import LegalHoldRow

    rows = session.execute(select(LegalHoldRow.until)
                           .where(LegalHoldRow.sha256 == sha256.lower())).scalars().all()
    if not rows:
        return False, None
    if any(r is None for r in rows):
        return True, None
    return True, max(rows)


@dataclass
class RetentionReport:
    examined: int = 0
    deleted: list[str] = field(default_factory=list)
    kept_held: list[str] = field(default_factory=list)
    kept_young: int = 0


def apply_retention(settings, session: Session, now: datetime | None = None,
                    actor: str = "system:retention") -> RetentionReport:
    """Delete evidence older than the retention period, except what a legal hold covers."""
    now = now or utcnow()
    report = RetentionReport()
    days = settings.cases.evidence_retention_days
    if days <= 0:
        return report
    cutoff = now - timedelta(days=days)
    for sha in list(iter_blobs(settings)):
        report.examined += 1
        meta = info(settings, sha)
        if meta.stored_at >= cutoff:
            report.kept_young += 1
            continue
        if is_held(session, sha, now):
            report.kept_held.append(sha)
            continue
        path = blob_path(settings, sha)
        os.chmod(path, 0o644)
        path.unlink()
        with open(root(settings) / "retention.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"at": now.isoformat(), "sha256": sha, "kind": meta.kind,
                                 "stored_at": meta.stored_at.isoformat()}) + "\n")
        audit.record(session, actor, "evidence.delete", "evidence", sha,
                     before={"kind": meta.kind, "stored_at": meta.stored_at},
                     note=f"retention {days} days")
        report.deleted.append(sha)
    return report
