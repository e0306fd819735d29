"""Suppression lists (clause mail.unwanted): who asked not to be mailed.

Entries are addresses or whole domains, global (scope ``*``) or per client,
in clear text or as SHA-256 of the normalised form. Screening a mailing list
is one DuckDB query: four equi-joins (address/domain x clear/hashed) over
Arrow tables, so a million addresses against a million entries is seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.bulkmail.addresses import (
    is_address, is_domain, normalise_address, normalise_arrow, normalise_domain, sha256_arrow,
    sha256_hex,
)
from aupguard.bulkmail.models import GLOBAL, Suppression
from aupguard.errors import InputError
from aupguard.incidents import Finding, report
from aupguard.store import audit
from aupguard.store.types import utcnow

SOURCES = ("fbl", "unsubscribe", "manual", "import", "complaint")
MAX_SAMPLES = 20


def _scope(client_id: str | None) -> str:
    return GLOBAL if client_id is None else client_id


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def parse_entries(values: pa.Array) -> pa.Table:
    """Raw entries -> (raw, kind, value, valid). '@example.com' or 'example.com' is a domain."""
    raw = pc.fill_null(pc.cast(values, pa.large_string()), "")
    trimmed = pc.utf8_trim_whitespace(raw)
    is_dom = pc.or_(pc.starts_with(trimmed, "@"), pc.invert(pc.match_substring(trimmed, "@")))
    addr = normalise_arrow(trimmed)
    dom = pc.utf8_lower(pc.utf8_rtrim(pc.utf8_ltrim(trimmed, "@"), "."))
    dom_valid = pc.match_substring_regex(dom, r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
    return pa.table({
        "raw": raw,
        "kind": pc.if_else(is_dom, "domain", "address"),
        "value": pc.if_else(is_dom, dom, addr["norm"]),
        "valid": pc.if_else(is_dom, dom_valid, addr["valid"]),
    })


@dataclass
class AddResult:
    added: int = 0
    duplicates: int = 0
    invalid: int = 0
    invalid_samples: list[str] = field(default_factory=list)


def add_suppressions(session: Session, entries: pa.Array | list[str], *, client_id: str | None = None,
                     source: str = "import", at: datetime | None = None, reason: str = "",
                     hashed: bool = False, actor: str = "system") -> AddResult:
    """Add many entries at once (deduplicated against the batch and the stored list)."""
    import duckdb

    if source not in SOURCES:
        raise InputError(f"unknown suppression source {source!r}; use one of {', '.join(SOURCES)}")
    at = at or utcnow()
    array = entries if isinstance(entries, (pa.Array, pa.ChunkedArray)) else pa.array(entries, pa.large_string())
    parsed = parse_entries(array)
    bad = parsed.filter(pc.invert(parsed["valid"]))
    good = parsed.filter(parsed["valid"])
    if hashed:
        good = good.set_column(2, "value", sha256_arrow(good["value"].combine_chunks()))
    scope = _scope(client_id)
    existing = session.execute(select(Suppression.kind, Suppression.value)
                               .where(Suppression.scope == scope)).all()
    stored = pa.table({"kind": pa.array([k for k, _ in existing], pa.large_string()),
                       "value": pa.array([v for _, v in existing], pa.large_string())})
    con = duckdb.connect()
    try:
        con.register("good", good)
        con.register("stored", stored)
        new = con.sql("SELECT DISTINCT g.kind, g.value FROM good g ANTI JOIN stored s "
                      "ON g.kind = s.kind AND g.value = s.value").to_arrow_table()
    finally:
        con.close()
    if new.num_rows:
        _insert_entries(session, new["kind"].to_pylist(), new["value"].to_pylist(), scope=scope,
                        hashed=hashed, source=source, reason=reason[:2000], at=at)
    audit.record(session, actor, "suppression.add", "suppression_list", scope,
                 after={"added": new.num_rows, "source": source, "hashed": hashed}, note=reason[:500])
    return AddResult(added=new.num_rows, duplicates=good.num_rows - new.num_rows,
                     invalid=bad.num_rows, invalid_samples=bad["raw"].to_pylist()[:MAX_SAMPLES])


def _insert_entries(session: Session, kinds: list[str], values: list[str], *, scope: str,
                    hashed: bool, source: str, reason: str, at: datetime) -> None:
    """Bulk insert through the DBAPI's executemany.

    SQLAlchemy's per-row type processing costs ~100 us a row (minutes for a
    million); every column but kind/value is the same for the whole batch, so
    those are bound once through the column types and the rows go as tuples.
    """
    table = Suppression.__table__
    conn = session.connection()
    dialect = conn.dialect
    at_proc = table.c.suppressed_at.type.dialect_impl(dialect).bind_processor(dialect)
    at_value = at_proc(at) if at_proc else at
    mark = "%s" if dialect.paramstyle in ("format", "pyformat") else "?"
    columns = ("scope", "kind", "value", "hashed", "source", "reason", "suppressed_at", "suppressed_ms")
    sql = (f"INSERT INTO suppressions ({', '.join(columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    ms = _ms(at)
    rows = [(scope, k, v, hashed, source, reason, at_value, ms) for k, v in zip(kinds, values)]
    conn.exec_driver_sql(sql, rows)


def add_one(session: Session, entry: str, *, client_id: str | None = None, source: str = "manual",
            at: datetime | None = None, reason: str = "", hashed: bool = False,
            actor: str = "system") -> bool:
    """Add one address or domain by hand; False if it was already there."""
    result = add_suppressions(session, [entry], client_id=client_id, source=source, at=at,
                              reason=reason, hashed=hashed, actor=actor)
    if result.invalid:
        raise InputError(f"{entry!r} is neither an e-mail address nor a domain")
    return result.added == 1


def suppress_from_complaint(session: Session, client_id: str | None, address: str, at: datetime,
                            source: str = "fbl", hashed: bool | None = None) -> bool:
    """For intake: the recipient of a complaint (FBL/ARF) is suppressed for that client.
    `hashed` defaults to [bulkmail] hash_suppressions of the loaded configuration.
    Returns False if it was already suppressed (the earlier time is kept)."""
    if hashed is None:
        from aupguard.config import load_settings

        hashed = load_settings().bulkmail.hash_suppressions
    return add_one(session, address, client_id=client_id, source=source, at=at,
                   reason="recipient complained", hashed=hashed, actor="intake")


def _fetch_scope(session: Session, scope: str) -> pa.Table:
    """One scope's entries through the raw cursor (SQLAlchemy row processing is 10x slower)."""
    conn = session.connection()
    mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
    rows = conn.exec_driver_sql(
        f"SELECT kind, value, hashed, source, suppressed_ms FROM suppressions WHERE scope = {mark}",
        (scope,)).fetchall()
    cols = list(zip(*rows)) if rows else [[]] * 5
    n = len(rows)
    return pa.table({
        "scope": pa.array([scope], pa.large_string()).take(pa.array(np.zeros(n, dtype=np.int64))),
        "kind": pa.array(cols[0], pa.large_string()), "value": pa.array(cols[1], pa.large_string()),
        # SQLite hands back 0/1, PostgreSQL booleans: both cast to bool.
        "hashed": pc.cast(pa.array(cols[2]), pa.bool_()) if n else pa.array([], pa.bool_()),
        "source": pa.array(cols[3], pa.large_string()), "since_ms": pa.array(cols[4], pa.int64()),
    })


def _snapshot(session: Session, scope: str, cache_dir: Path) -> pa.Table:
    """A Parquet copy of one scope's entries, rebuilt when entries were added.

    Lists change seldom and are screened often: reading a million entries from
    Parquet takes a fraction of a second, from the database several seconds.
    The name carries (count, max id), which any insert changes.
    """
    import pyarrow.parquet as pq
    from sqlalchemy import func

    count, max_id = session.execute(select(func.count(), func.max(Suppression.id))
                                    .where(Suppression.scope == scope)).one()
    tag = sha256_hex(scope)[:16]
    path = cache_dir / f"suppressions-{tag}-{count}-{max_id or 0}.parquet"
    if path.exists():
        return pq.read_table(path)
    table = _fetch_scope(session, scope)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for old in cache_dir.glob(f"suppressions-{tag}-*.parquet"):
        old.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return table


def load_suppressions(session: Session, client_id: str | None = None,
                      cache_dir: Path | None = None) -> pa.Table:
    """Global entries plus the client's, as Arrow (from a Parquet snapshot when cache_dir is set)."""
    scopes = [GLOBAL] if client_id is None else [GLOBAL, client_id]
    parts = [_snapshot(session, sc, cache_dir) if cache_dir else _fetch_scope(session, sc)
             for sc in scopes]
    return pa.concat_tables(parts)


@dataclass
class ScreenResult:
    total: int
    invalid: int
    suppressed: pa.Table        # pos, address, kind, scope, source, since_ms
    mailable: pa.Array          # normalised valid addresses that may be mailed, input order
    invalid_samples: list[str] = field(default_factory=list)

    def suppressed_rows(self, limit: int | None = None) -> list[dict]:
        table = self.suppressed if limit is None else self.suppressed.slice(0, limit)
        rows = table.to_pylist()
        for r in rows:
            r["since"] = datetime.fromtimestamp(r.pop("since_ms") / 1000, timezone.utc).isoformat()
        return rows


# Each branch is an equi-join on one (kind, hashed) slice of the entries; the
# domain is the part after the only "@" (valid addresses have exactly one).
SCREEN_SQL = """
WITH l AS (SELECT pos, norm, split_part(norm, '@', 2) AS domain FROM list WHERE valid)
SELECT l.pos, 'address' AS kind, s.scope, s.source, s.since_ms
  FROM l JOIN supp_address s ON s.value = l.norm
UNION ALL
SELECT l.pos, 'domain', s.scope, s.source, s.since_ms
  FROM l JOIN supp_domain s ON s.value = l.domain
{hashed}
"""
HASHED_SQL = {
    "address": """
    UNION ALL
    SELECT l.pos, 'address', s.scope, s.source, s.since_ms
      FROM l JOIN supp_address_hashed s ON s.value = sha256(l.norm)""",
    "domain": """
    UNION ALL
    SELECT l.pos, 'domain', s.scope, s.source, s.since_ms
      FROM l JOIN supp_domain_hashed s ON s.value = sha256(l.domain)""",
}


def screen_arrow(addresses: pa.Array, suppressions: pa.Table) -> ScreenResult:
    """Which addresses must not be mailed (pure function over Arrow; no database)."""
    import duckdb

    if isinstance(addresses, pa.ChunkedArray):
        addresses = addresses.combine_chunks()
    norm = normalise_arrow(addresses, with_domain=False)
    raw = pc.fill_null(pc.cast(addresses, pa.large_string()), "")
    listing = pa.table({"pos": pa.array(np.arange(len(addresses), dtype=np.int64)),
                        "norm": norm["norm"], "valid": norm["valid"]})
    con = duckdb.connect()
    extra = ""
    try:
        con.register("list", listing)
        for kind in ("address", "domain"):
            for hashed in (False, True):
                mask = pc.and_(pc.equal(suppressions["kind"], kind),
                               suppressions["hashed"] if hashed else pc.invert(suppressions["hashed"]))
                part = suppressions.filter(mask)
                con.register(f"supp_{kind}{'_hashed' if hashed else ''}", part)
                # Hash the list only for kinds with hashed entries (SHA-256 is the costly part).
                if hashed and part.num_rows:
                    extra += HASHED_SQL[kind]
        matches = con.sql(SCREEN_SQL.format(hashed=extra)).to_arrow_table()
    finally:
        con.close()
    # One row per listed address: its earliest entry (numpy sort, cheaper than GROUP BY
    # with arg_min over strings in DuckDB).
    pos = matches["pos"].to_numpy()
    since = matches["since_ms"].to_numpy()
    order = np.lexsort((since, pos))
    _, first = np.unique(pos[order], return_index=True)
    chosen = matches.take(pa.array(order[first]))
    hits = pa.table({"pos": chosen["pos"], "address": raw.take(chosen["pos"]),
                     "kind": chosen["kind"], "scope": chosen["scope"],
                     "source": chosen["source"], "since_ms": chosen["since_ms"]})
    blocked = np.zeros(len(addresses), dtype=bool)
    blocked[hits["pos"].to_numpy()] = True
    valid = norm["valid"].to_numpy(zero_copy_only=False)
    mailable = pc.filter(norm["norm"], pa.array(valid & ~blocked))
    invalid_mask = pc.invert(norm["valid"])
    invalid = int(len(addresses) - valid.sum())
    samples = pc.filter(raw, invalid_mask).slice(0, MAX_SAMPLES).to_pylist()
    return ScreenResult(total=len(addresses), invalid=invalid, suppressed=hits, mailable=mailable,
                        invalid_samples=samples)


def screen(session: Session, addresses: pa.Array | list[str], client_id: str | None = None,
           cache_dir: Path | None = None) -> ScreenResult:
    """Screen a list against the global list and (with client_id) the client's own list."""
    array = addresses if isinstance(addresses, (pa.Array, pa.ChunkedArray)) else pa.array(addresses, pa.large_string())
    return screen_arrow(array, load_suppressions(session, client_id, cache_dir))


def read_address_file(path) -> pa.Array:
    """One address per line, or a CSV with an 'email'/'address' column, or a JSON list."""
    import json
    from pathlib import Path

    import pyarrow.csv as pacsv

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of addresses")
        values = [d.get("email") or d.get("address") if isinstance(d, dict) else d for d in data]
        return pa.array([v if isinstance(v, str) else None for v in values], pa.large_string())
    with path.open("rb") as fh:
        head = fh.readline().decode("utf-8", "replace").strip()
    columns = [c.strip().strip('"') for c in head.split(",")]
    wanted = ("email", "address", "e-mail", "recipient")
    column = next((c for c in columns if c.lower() in wanted), None)
    try:
        if column is not None:
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                include_columns=[column], column_types={column: pa.large_string()}))
            return table.column(0).combine_chunks()
        # Plain list: a delimiter that cannot appear in addresses, no quoting.
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=["address"]),
                               parse_options=pacsv.ParseOptions(delimiter="\x1f", quote_char=False),
                               convert_options=pacsv.ConvertOptions(
                                   column_types={"address": pa.large_string()}))
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot read as an address list: {exc}") from None
    return table.column("address").combine_chunks()


def is_suppressed(session: Session, client_id: str | None, recipient: str,
                  before: datetime | None = None) -> Suppression | None:
    """The earliest entry covering `recipient` (global or the client's), optionally older than `before`."""
    norm = normalise_address(recipient)
    if not is_address(norm):
        raise InputError(f"{recipient!r} is not an e-mail address")
    domain = norm.rsplit("@", 1)[1]
    scopes = [GLOBAL] if client_id is None else [GLOBAL, client_id]
    found: list[Suppression] = []
    # One equality lookup per (scope, kind): each uses the (scope, kind, value) unique
    # index; a single OR-ed query makes SQLite scan the whole table.
    for scope in scopes:
        for kind, values in (("address", [norm, sha256_hex(norm)]),
                             ("domain", [domain, sha256_hex(domain)])):
            query = select(Suppression).where(Suppression.scope == scope, Suppression.kind == kind,
                                              Suppression.value.in_(values))
            if before is not None:
                query = query.where(Suppression.suppressed_at < before)
            found.extend(session.execute(query).scalars())
    return min(found, key=lambda e: (e.suppressed_at, e.id)) if found else None


def check_complaint(session: Session, client_id: str, recipient: str, sent_at: datetime,
                    ref: str = "") -> bool:
    """A complaint about mail to `recipient` sent at `sent_at`: if the recipient was already
    suppressed then, the client mailed someone who had said no -> finding (mail.unwanted)."""
    entry = is_suppressed(session, client_id, recipient, before=sent_at)
    if entry is None:
        return False
    norm = normalise_address(recipient)
    report(session, Finding(
        source="complaint", rule="suppression_violation", clause_id="mail.unwanted",
        key=f"unwanted:{client_id}:{sha256_hex(norm)[:16]}", first_seen=sent_at, last_seen=sent_at,
        client_id=client_id, victim=norm,
        summary=f"mail sent {sent_at.isoformat()} to a recipient suppressed since "
                f"{entry.suppressed_at.isoformat()} ({entry.source}, "
                f"{'global' if entry.scope == GLOBAL else 'client'} list)",
        metrics={"suppressed_at": entry.suppressed_at.isoformat(), "kind": entry.kind,
                 "scope": entry.scope, "source": entry.source},
        evidence=[{"kind": "suppression", "id": entry.id, "ref": ref}], peak=1.0), actor="bulkmail")
    return True


def list_entries(session: Session, client_id: str | None = None, limit: int = 1000) -> list[Suppression]:
    query = select(Suppression).order_by(Suppression.suppressed_at.desc(), Suppression.id.desc()).limit(limit)
    if client_id is not None:
        query = query.where(Suppression.scope == client_id)
    return list(session.execute(query).scalars())


def parse_entry(text: str) -> tuple[str, str]:
    """(kind, normalised value) of one hand-typed entry, or InputError."""
    t = text.strip()
    if t.startswith("@") or "@" not in t:
        value = normalise_domain(t)
        if not is_domain(value):
            raise InputError(f"{text!r} is not a domain (e.g. @example.com)")
        return "domain", value
    value = normalise_address(t)
    if not is_address(value):
        raise InputError(f"{text!r} is not an e-mail address")
    return "address", value
