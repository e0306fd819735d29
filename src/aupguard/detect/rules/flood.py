"""Floods (security.flood): SYN, UDP, ICMP, reflection/amplification, smurf.

Defaults follow FastNetMon's per-host ban thresholds (``threshold_pps = 20000``,
``threshold_mbps = 1000``, ``threshold_flows = 3500`` in fastnetmon.conf) and its
attack classification: an attack is of one kind when that kind carries more
than 90% of the host's packets. Rates are measured over a 5 s window, each
flow record weighted by the part of its duration inside the window, and over
at least 1 s (so a burst is detected in its first second, not after 5 s).
"""

from __future__ import annotations

from aupguard.detect.rules.base import (
    AMP_PORT_LIST,
    ICMP,
    OVERLAP,
    SPAN_S,
    TCP_SYN_ONLY,
    Rule,
)

FASTNETMON = ("FastNetMon per-host defaults: threshold_pps 20000, threshold_mbps 1000, "
              "threshold_flows 3500; attack type = >90% of packets of one kind")
FLOOD_DEFAULTS = {"pps": 20000.0, "mbps": 1000.0, "flows_per_s": 3500.0, "share": 0.9}
FLOOD_CONDITION = ("(pps >= {pps} OR mbps >= {mbps} OR flows_per_s >= {flows_per_s}) "
                   "AND share >= {share}")
FLOOD_WINDOW_S = 5.0

_WEIGHTED = ("(SELECT *, CAST(packets AS DOUBLE) * ov AS pk, CAST(bytes AS DOUBLE) * ov AS bk "
             "FROM (SELECT *, " + OVERLAP + " AS ov FROM flows "
             "WHERE end_ms > {since} AND start_ms <= {until} AND @WHERE@) AS o) AS weighted")

_AGGREGATES = ("SUM(pk) AS pkts, SUM(bk) AS byts, COUNT(*) AS flows, "
               "SUM(CASE WHEN @KIND@ THEN pk ELSE CAST(0 AS DOUBLE) END) AS kind_pkts, "
               "SUM(CASE WHEN @KIND@ THEN bk ELSE CAST(0 AS DOUBLE) END) AS kind_bytes, "
               "COUNT(DISTINCT src) AS sources, "
               "MIN(GREATEST(start_ms, {since})) AS t0, MIN(start_ms) AS first_ms, "
               "MAX(end_ms) AS last_ms")

_METRICS = ("first_ms, last_ms, pkts / " + SPAN_S + " AS pps, "
            "byts * CAST(8 AS DOUBLE) / " + SPAN_S + " / CAST(1000000 AS DOUBLE) AS mbps, "
            "CAST(flows AS DOUBLE) / " + SPAN_S + " AS flows_per_s, "
            "CASE WHEN pkts > 0 THEN kind_pkts / pkts ELSE CAST(0 AS DOUBLE) END AS share, "
            "CASE WHEN kind_pkts > 0 THEN kind_bytes / kind_pkts ELSE CAST(0 AS DOUBLE) END "
            "AS avg_bytes, sources")

FLOOD_METRICS = ("pps", "mbps", "flows_per_s", "share", "avg_bytes", "sources")


def _toward(kind: str) -> str:
    """Per victim inside a client's space: everything it receives."""
    return ("SELECT offender, dst AS victim, dst_client AS client, 'victim' AS role, "
            "CAST(NULL AS INTEGER) AS port, " + _METRICS + " FROM ("
            "SELECT dst, MAX(dst_client) AS dst_client, ARG_MAX(src, CASE WHEN @KIND@ THEN pk "
            "ELSE CAST(0 AS DOUBLE) END) AS offender, " + _AGGREGATES +
            " FROM " + _WEIGHTED + " GROUP BY dst) AS g"
            ).replace("@KIND@", kind).replace("@WHERE@", "dst_client IS NOT NULL")


def _from(kind: str) -> str:
    """Per (client, outside victim): what a client's hosts send to one destination."""
    return ("SELECT src AS offender, dst AS victim, src_client AS client, 'offender' AS role, "
            "CAST(NULL AS INTEGER) AS port, " + _METRICS + " FROM ("
            "SELECT src_client, dst, ARG_MAX(src, CASE WHEN @KIND@ THEN pk "
            "ELSE CAST(0 AS DOUBLE) END) AS src, " + _AGGREGATES +
            " FROM " + _WEIGHTED + " GROUP BY src_client, dst) AS g"
            ).replace("@KIND@", kind).replace("@WHERE@", "src_client IS NOT NULL")


UDP_PLAIN = f"(proto = 17 AND src_port NOT IN ({AMP_PORT_LIST}))"
UDP_AMPLIFIED = f"(proto = 17 AND src_port IN ({AMP_PORT_LIST}))"


def _flood(name: str, kind: str, what: str, direction: str) -> Rule:
    toward = direction == "in"
    return Rule(
        name=name, clause_id="security.flood",
        description=f"{what} {'toward a client host' if toward else 'from a client host'}",
        sql=_toward(kind) if toward else _from(kind),
        condition=FLOOD_CONDITION, defaults=dict(FLOOD_DEFAULTS), source=FASTNETMON,
        window_s=FLOOD_WINDOW_S, headline="pps",
        key=("victim",) if toward else ("client", "victim"),
        subject="victim" if toward else "offender",
        evidence=(("dst", "victim"),) if toward else (("src", "offender"), ("dst", "victim")),
        metrics=FLOOD_METRICS,
    )


SYN_FLOOD_IN = _flood("syn_flood_in", TCP_SYN_ONLY, "SYN flood", "in")
SYN_FLOOD_OUT = _flood("syn_flood_out", TCP_SYN_ONLY, "SYN flood", "out")
UDP_FLOOD_IN = _flood("udp_flood_in", UDP_PLAIN, "UDP flood", "in")
UDP_FLOOD_OUT = _flood("udp_flood_out", UDP_PLAIN, "UDP flood", "out")
ICMP_FLOOD_IN = _flood("icmp_flood_in", ICMP, "ICMP flood", "in")
ICMP_FLOOD_OUT = _flood("icmp_flood_out", ICMP, "ICMP flood", "out")

REFLECTION_VICTIM = Rule(
    name="reflection_victim", clause_id="security.flood",
    description="reflection/amplification flood toward a client host: large UDP from service "
                f"ports {AMP_PORT_LIST}",
    sql=_toward(UDP_AMPLIFIED),
    condition=FLOOD_CONDITION + " AND avg_bytes >= {avg_bytes}",
    defaults={**FLOOD_DEFAULTS, "avg_bytes": 200.0},
    source=FASTNETMON + "; avg_bytes 200: amplified responses are large (US-CERT TA14-017A "
           "amplification factors 2x-50000x), requests are ~60 bytes",
    window_s=FLOOD_WINDOW_S, headline="pps", key=("victim",), subject="victim",
    evidence=(("dst", "victim"),), metrics=FLOOD_METRICS,
)

# One client host answering from a service port, mostly toward one destination:
# an open reflector being used. Legitimate servers answer many different clients.
REFLECTOR = Rule(
    name="reflection_reflector", clause_id="security.flood",
    description="a client host used as an open reflector: large UDP responses from service "
                f"ports {AMP_PORT_LIST}, concentrated on one victim",
    sql=("SELECT offender, victim, client, 'offender' AS role, port, first_ms, last_ms, "
         "pkts / " + SPAN_S + " AS pps, "
         "byts * CAST(8 AS DOUBLE) / " + SPAN_S + " / CAST(1000000 AS DOUBLE) AS mbps, "
         "CASE WHEN pkts > 0 THEN byts / pkts ELSE CAST(0 AS DOUBLE) END AS avg_bytes, "
         "CASE WHEN pkts > 0 THEN top_pkts / pkts ELSE CAST(0 AS DOUBLE) END AS victim_share, "
         "destinations FROM ("
         "SELECT src AS offender, MAX(src_client) AS client, MAX(port) AS port, "
         "ARG_MAX(dst, dst_pkts) AS victim, MAX(dst_pkts) AS top_pkts, SUM(dst_pkts) AS pkts, "
         "SUM(dst_bytes) AS byts, COUNT(*) AS destinations, MIN(t0) AS t0, "
         "MIN(first_ms) AS first_ms, MAX(last_ms) AS last_ms FROM ("
         "SELECT src, dst, MAX(src_client) AS src_client, MAX(src_port) AS port, "
         "SUM(pk) AS dst_pkts, SUM(bk) AS dst_bytes, MIN(GREATEST(start_ms, {since})) AS t0, "
         "MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms FROM "
         + _WEIGHTED + " GROUP BY src, dst) AS per_dst GROUP BY src) AS g"
         ).replace("@WHERE@", "src_client IS NOT NULL AND " + UDP_AMPLIFIED),
    condition="pps >= {pps} AND avg_bytes >= {avg_bytes} AND victim_share >= {victim_share}",
    defaults={"pps": 1000.0, "avg_bytes": 400.0, "victim_share": 0.5},
    source="aupguard default (no standard source): 1,000 pps of responses averaging "
           ">= 400 bytes, half of them to one destination",
    window_s=FLOOD_WINDOW_S, headline="pps", key=("offender",), subject="offender",
    evidence=(("src", "offender"),),
    metrics=("pps", "mbps", "avg_bytes", "victim_share", "destinations"),
)

# ICMP sent to a network's broadcast (or network) address: smurf. The amplifying
# network answers to the spoofed source, which is the real victim.
SMURF = Rule(
    name="smurf", clause_id="security.flood",
    description="ICMP to broadcast or network addresses (smurf / broadcast attack)",
    sql=("SELECT dst AS offender, src AS victim, "
         "COALESCE(MAX(if_client), MAX(src_client), MAX(dst_client)) AS client, "
         "CASE WHEN MAX(if_client) IS NOT NULL OR MAX(src_client) IS NOT NULL "
         "THEN 'offender' ELSE 'victim' END AS role, "
         "CAST(NULL AS INTEGER) AS port, MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(SUM(packets) AS DOUBLE) AS packets, "
         "CAST(SUM(packets) AS DOUBLE) / CAST({w} AS DOUBLE) * CAST(1000 AS DOUBLE) AS pps "
         "FROM flows WHERE end_ms > {since} AND start_ms <= {until} AND " + ICMP +
         " AND dst_bcast GROUP BY dst, src"),
    condition="packets >= {packets}",
    defaults={"packets": 50.0},
    source="aupguard default: 50 ICMP packets to a broadcast address within 10 s "
           "(RFC 2644: directed broadcasts should not be forwarded at all)",
    window_s=10.0, headline="pps", key=("offender", "victim"), subject="offender",
    evidence=(("dst", "offender"), ("src", "victim")), metrics=("packets", "pps"),
)

RULES = [SYN_FLOOD_IN, SYN_FLOOD_OUT, UDP_FLOOD_IN, UDP_FLOOD_OUT, ICMP_FLOOD_IN,
         ICMP_FLOOD_OUT, REFLECTION_VICTIM, REFLECTOR, SMURF]
