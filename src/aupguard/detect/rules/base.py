"""What a detection rule is: SQL over a window of flows, bound to an AUP clause.

Every rule is one SELECT in a portable subset of DuckDB's dialect (sqlglot
transpiles it for Spark): integer literals, ``CAST(n AS DOUBLE)`` instead of
decimal literals, ``GREATEST``/``LEAST``, ``ARG_MAX``, ``COUNT(DISTINCT ...)``.
It reads the view ``flows`` (the prepared window, see ``detect.prepare``) and
returns one row per candidate with the standard columns

    offender BLOB, victim BLOB, client VARCHAR, role VARCHAR, port INTEGER,
    first_ms BIGINT, last_ms BIGINT

plus the rule's metric columns. ``condition`` is a boolean template over the
metric columns with ``{threshold}`` placeholders; the engine fills it with
literals (the loosest threshold any client or host group uses, so the SQL
prunes early) and then with per-row threshold columns (exact per-client and
per-host-group thresholds on the few candidates left).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Columns every rule returns besides its metrics.
STANDARD_COLUMNS = ("offender", "victim", "client", "role", "port", "first_ms", "last_ms")


@dataclass(frozen=True)
class Rule:
    name: str
    clause_id: str
    description: str
    sql: str                         # template: {since}, {until} (ms) and {w} (window ms)
    condition: str                   # template over metrics: {threshold names}
    defaults: dict[str, float]       # default thresholds
    source: str                      # where the defaults come from
    window_s: float                  # how much history the rule looks at
    headline: str                    # metric reported as the incident's peak
    key: tuple[str, ...] = ("offender", "victim")  # standard columns naming one incident
    subject: str = "victim"          # the client's host for host-group thresholds (role-aware)
    prefilter: str = ""              # rows the rule can need (long windows keep only these)
    evidence: tuple[tuple[str, str], ...] = (("src", "offender"), ("dst", "victim"))
    metrics: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = set(re.findall(r"\{(\w+)\}", self.condition))
        if names != set(self.defaults):
            raise ValueError(f"rule {self.name}: condition uses {sorted(names)}, "
                             f"defaults give {sorted(self.defaults)}")

    def render(self, since_ms: int, until_ms: int) -> str:
        """The rule's SELECT for one window (since, until]."""
        return self.sql.format(since=int(since_ms), until=int(until_ms),
                               w=int(self.window_s * 1000))

    def condition_with(self, values: dict[str, float]) -> str:
        return self.condition.format(**{k: literal(v) for k, v in values.items()})

    def condition_by_column(self) -> str:
        return self.condition.format(**{k: f"th_{k}" for k in self.defaults})

    def query(self, since_ms: int, until_ms: int, loosest: dict[str, float]) -> str:
        return (f"SELECT * FROM ({self.render(since_ms, until_ms)}) AS candidates "
                f"WHERE {self.condition_with(loosest)}")


def literal(value: float) -> str:
    """A portable numeric literal: Spark reads `300.0` as DECIMAL, so always cast."""
    number = float(value)
    text = str(int(number)) if number.is_integer() else repr(number)
    return f"CAST({text} AS DOUBLE)"


# -- SQL fragments shared by rules -------------------------------------------------
def dbl(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE)"


#: Share of each flow's packets inside the window (since, until]: NetFlow records cover
#: a duration, so a long flow ending in the window contributes only its overlapping part.
OVERLAP = ("CASE WHEN end_ms <= start_ms THEN CAST(1 AS DOUBLE) ELSE "
           "CAST(LEAST(end_ms, {until}) - GREATEST(start_ms, {since}) AS DOUBLE) / "
           "CAST(end_ms - start_ms AS DOUBLE) END")

#: Seconds the key's flows cover within the window, at least one: from its first flow
#: (clipped to the window) to its last flow end. Not up to the window end: flows of the
#: current second are exported later (active timeout), so measuring to the window end
#: would dilute an ongoing attack. A burst that began 300 ms ago is measured over 1 s.
SPAN_S = ("GREATEST(CAST(1 AS DOUBLE), CAST(LEAST(last_ms, {until}) - t0 AS DOUBLE) / "
          "CAST(1000 AS DOUBLE))")

TCP_SYN_ONLY = "(proto = 6 AND (tcp_flags & 2) = 2 AND (tcp_flags & 16) = 0)"
TCP_ACKED = "(proto = 6 AND (tcp_flags & 16) = 16)"
ICMP = "(proto = 1 OR proto = 58)"
AMPLIFIER_PORTS = (53, 123, 161, 389, 1900, 11211, 19)
AMP_PORT_LIST = ", ".join(str(p) for p in AMPLIFIER_PORTS)
