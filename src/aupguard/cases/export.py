"""Law-enforcement export: a case bundle as a signed archive.

The archive (``.tar.gz``) holds ``case.json``, ``timeline.json``,
``incidents.json``, ``orders.json``, ``reports.json``, ``custody.json``
(audit-log entries of the case and its evidence, plus every store intake of
each blob), ``evidence/index.json`` and ``evidence/<sha256>`` blobs, then
``manifest.json`` (SHA-256 of every member) and ``signature.json`` (Ed25519
over the manifest when `cryptography` is installed, else HMAC-SHA256 with the
configured key). Restricted (CSAM) cases carry hashes and metadata only: the
material itself is never copied out of the evidence store.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aupguard.cases import evidence, keys
from aupguard.cases.models import (
    CaseEventRow,
    CaseEvidenceRow,
    CaseRow,
    EnforcementOrderRow,
    MandatoryReportRow,
)
from aupguard.errors import InputError
from aupguard.incidents.model import IncidentRow
from aupguard.store import audit
from aupguard.store.audit import AuditEntry
from aupguard.store.types import utcnow

FORMAT = "aupguard-case-export/1"
MAX_MEMBER = 256 * 1024 * 1024
MAX_TOTAL = 2 * 1024 * 1024 * 1024  # a hostile archive must not exhaust memory while checked
MAX_MEMBERS = 100_000


def _rows(rows) -> list[dict[str, Any]]:
    return [audit._canonical({c.name: getattr(r, c.name) for c in r.__table__.columns}) for r in rows]


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, default=str).encode()


def _sign(settings, manifest: bytes) -> dict[str, str]:
    if keys.ed25519_available():
        from cryptography.hazmat.primitives import serialization

        private = keys.ed25519_private_key(settings)
        public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
        return {"method": "ed25519", "public_key": base64.b64encode(public).decode(),
                "signature": base64.b64encode(private.sign(manifest)).decode()}
    return {"method": "hmac-sha256", "signature": keys.hmac_sign(settings, manifest)}


def public_key_b64(settings) -> str | None:
    if not keys.ed25519_available():
        return None
    from cryptography.hazmat.primitives import serialization

    public = keys.ed25519_private_key(settings).public_key()
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)).decode()


def export_case(session: Session, settings, case_id: int, out_path: str | Path,
                actor: str = "system") -> Path:
    """Write the signed archive of a case; returns its path. Audited."""
    row = session.get(CaseRow, int(case_id))
    if row is None:
        raise InputError(f"no case #{case_id}")
    members: dict[str, bytes] = {}
    members["case.json"] = _json(_rows([row])[0])
    events = session.execute(select(CaseEventRow).where(CaseEventRow.case_id == row.id)
                             .order_by(CaseEventRow.at, CaseEventRow.id)).scalars().all()
    members["timeline.json"] = _json(_rows(events))
    incidents = session.execute(select(IncidentRow).where(IncidentRow.case_id == row.id)
                                .order_by(IncidentRow.id)).scalars().all()
    incident_rows = _rows(incidents)
    if row.restricted:
        for inc in incident_rows:  # summaries and samples may describe the material: hashes only
            inc["summary"], inc["metrics"] = "[withheld: restricted case]", {}
            inc["evidence"] = [{"sha256": e.get("sha256")} for e in inc.get("evidence") or []
                               if isinstance(e, dict) and e.get("sha256")]
    members["incidents.json"] = _json(incident_rows)
    members["orders.json"] = _json(_rows(session.execute(
        select(EnforcementOrderRow).where(EnforcementOrderRow.case_id == row.id)).scalars()))
    members["reports.json"] = _json(_rows(session.execute(
        select(MandatoryReportRow).where(MandatoryReportRow.case_id == row.id)).scalars()))
    links = session.execute(select(CaseEvidenceRow).where(CaseEvidenceRow.case_id == row.id)
                            .order_by(CaseEvidenceRow.id)).scalars().all()
    index = []
    for link in links:
        present = evidence.verify(settings, link.sha256)
        included = present and not row.restricted
        if included:
            members[f"evidence/{link.sha256}"] = evidence.get(settings, link.sha256)
        index.append({"sha256": link.sha256, "kind": link.kind, "size": link.size,
                      "incident_id": link.incident_id, "added_at": link.added_at.isoformat(),
                      "added_by": link.added_by, "present_in_store": present,
                      "included": included,
                      "withheld_reason": "restricted case" if present and not included else ""})
    members["evidence/index.json"] = _json(index)
    shas = [link.sha256 for link in links]
    audit_rows = session.execute(select(AuditEntry).where(or_(
        (AuditEntry.entity == "case") & (AuditEntry.entity_id == str(row.id)),
        (AuditEntry.entity == "evidence") & (AuditEntry.entity_id.in_(shas or [""])),
    )).order_by(AuditEntry.id)).scalars().all()
    members["custody.json"] = _json({
        "audit_log": _rows(audit_rows),
        "store_intake": {sha: evidence.custody(settings, sha) for sha in shas},
    })
    files = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(members.items())}
    manifest = _json({"format": FORMAT, "case_id": row.id, "clause_id": row.clause_id,
                      "client_id": row.client_id, "restricted": row.restricted,
                      "created_at": utcnow().isoformat(), "created_by": actor, "files": files})
    signature = _json(_sign(settings, manifest))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    mtime = int(time.time())
    with tarfile.open(tmp, "w:gz") as tar:
        for name, data in [*sorted(members.items()), ("manifest.json", manifest),
                           ("signature.json", signature)]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o444
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    audit.record(session, actor, "case.export", "case", row.id,
                 after={"file": out.name, "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                        "members": len(files)})
    return out


@dataclass
class ExportCheck:
    ok: bool
    method: str = ""
    case_id: int | None = None
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    key_matches_ours: bool | None = None


def verify_export(path: str | Path, settings=None) -> ExportCheck:
    """Check every member against the manifest and the manifest against its signature."""
    check = ExportCheck(ok=False)
    try:
        tar = tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        check.problems.append(f"not a readable archive: {exc}")
        return check
    contents: dict[str, bytes] = {}
    total = 0
    try:
        with tar:
            for count, info in enumerate(tar):  # streamed: never extracted to disk
                if count >= MAX_MEMBERS or total + info.size > MAX_TOTAL:
                    check.problems.append("archive too large to be an aupguard export")
                    return check
                if not info.isfile() or info.size > MAX_MEMBER or info.name in contents:
                    check.problems.append(f"unexpected member {info.name[:200]!r}")
                    continue
                total += info.size
                fh = tar.extractfile(info)
                contents[info.name] = fh.read() if fh else b""
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        check.problems.append(f"archive is damaged: {exc}")
        return check
    manifest_raw, sig_raw = contents.pop("manifest.json", None), contents.pop("signature.json", None)
    if manifest_raw is None or sig_raw is None:
        check.problems.append("manifest.json or signature.json missing")
        return check
    try:
        manifest, sig = json.loads(manifest_raw), json.loads(sig_raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        check.problems.append(f"manifest or signature is not JSON: {exc}")
        return check
    if not isinstance(manifest, dict) or not isinstance(sig, dict) or not isinstance(
            manifest.get("files", {}), dict):
        check.problems.append("manifest or signature has the wrong shape")
        return check
    check.method, check.case_id = sig.get("method", ""), manifest.get("case_id")
    if check.method == "ed25519":
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig["public_key"]))
            public.verify(base64.b64decode(sig["signature"]), manifest_raw)
        except InvalidSignature:
            check.problems.append("signature does not match the manifest (manifest altered)")
        except (ImportError, KeyError, ValueError) as exc:
            check.problems.append(f"cannot check the Ed25519 signature: {exc}")
        if settings is not None:
            check.key_matches_ours = sig.get("public_key") == public_key_b64(settings)
            if not check.key_matches_ours:
                check.problems.append("signed with a key other than this installation's")
    elif check.method == "hmac-sha256":
        if settings is None:
            check.problems.append("HMAC signatures need the installation's key to verify")
        else:
            import hmac

            if not hmac.compare_digest(keys.hmac_sign(settings, manifest_raw), sig.get("signature", "")):
                check.problems.append("signature does not match the manifest (manifest altered)")
    else:
        check.problems.append(f"unknown signature method {check.method!r}")
    files = manifest.get("files") or {}
    for name, expected in files.items():
        data = contents.get(name)
        if data is None:
            check.problems.append(f"{name} listed in the manifest but missing")
            continue
        check.checked += 1
        if hashlib.sha256(data).hexdigest() != expected:
            check.problems.append(f"{name} altered: its hash does not match the manifest")
        if name.startswith("evidence/") and name != "evidence/index.json":
            if hashlib.sha256(data).hexdigest() != name.split("/", 1)[1]:
                check.problems.append(f"{name} content does not match its evidence hash")
    for name in contents:
        if name not in files:
            check.problems.append(f"{name} is not in the manifest (added after signing)")
    check.ok = not check.problems
    return check
