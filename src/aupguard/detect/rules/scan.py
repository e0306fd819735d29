"""Scans (security.scan): horizontal, vertical and distributed.

Defaults follow Zeek's ``policy/misc/scan.zeek`` (simple scan): an address
scan is one source reaching 25 hosts on one port, a port scan one source
reaching 15 ports on one host, both within 5 minutes. Zeek counts *failed*
connection attempts; from flow records the closest signal is a TCP flow from
the prober that never carried an ACK (SYN only, or SYN+RST of a half-open
scan), which is what ``PROBE`` selects. UDP is left out: a resolver talking to
many authoritative servers on 53 looks exactly like a UDP sweep without the
reverse flows.

Sampled flows (1:N packet sampling): a one-packet probe is seen with
probability 1/N, so the number of distinct hosts (ports) observed is about
the true number divided by N. The rules therefore compare
``distinct * sampling_rate`` (the Horvitz-Thompson estimate) with the
threshold, and additionally require ``min_seen`` distinct targets actually
observed, so that a couple of sampled packets at 1:1000 never open an
incident on their own.
"""

from __future__ import annotations

from aupguard.detect.rules.base import ICMP, Rule

ZEEK = ("Zeek policy/misc/scan.zeek: addr_scan_threshold 25 hosts, port_scan_threshold 15 "
        "ports, addr_scan_interval/port_scan_interval 5 min")
SCAN_WINDOW_S = 300.0

#: A probe: TCP that never got an ACK (failed or half-open), or an ICMP echo request
#: (type 8; NetFlow carries ICMP type*256+code in the destination port).
PROBE = ("((proto = 6 AND (tcp_flags & 2) = 2 AND (tcp_flags & 16) = 0) "
         "OR (proto = 6 AND (tcp_flags & 4) = 4 AND packets_raw <= 2) "
         "OR (" + ICMP.strip("()") + ") AND dst_port = 2048)")
_WINDOW = "end_ms > {since} AND start_ms <= {until}"

HORIZONTAL = Rule(
    name="horizontal_scan", clause_id="security.scan",
    description="one source probing many hosts on one port",
    sql=("SELECT src AS offender, CAST(NULL AS BLOB) AS victim, "
         "COALESCE(MAX(src_client), MAX(dst_client)) AS client, "
         "CASE WHEN MAX(src_client) IS NOT NULL THEN 'offender' ELSE 'victim' END AS role, "
         "dst_port AS port, MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(COUNT(DISTINCT dst) AS DOUBLE) AS seen, "
         "CAST(COUNT(DISTINCT dst) AS DOUBLE) * CAST(MAX(sampling_rate) AS DOUBLE) AS hosts "
         "FROM flows WHERE " + _WINDOW + " AND " + PROBE + " GROUP BY src, dst_port"),
    condition="hosts >= {hosts} AND seen >= {min_seen}",
    defaults={"hosts": 25.0, "min_seen": 5.0}, source=ZEEK + "; min_seen: aupguard",
    window_s=SCAN_WINDOW_S, headline="hosts", key=("offender", "port"), subject="offender",
    prefilter=PROBE, evidence=(("src", "offender"),), metrics=("hosts", "seen"),
)

VERTICAL = Rule(
    name="vertical_scan", clause_id="security.scan",
    description="one source probing many ports on one host",
    sql=("SELECT src AS offender, dst AS victim, "
         "COALESCE(MAX(src_client), MAX(dst_client)) AS client, "
         "CASE WHEN MAX(src_client) IS NOT NULL THEN 'offender' ELSE 'victim' END AS role, "
         "CAST(NULL AS INTEGER) AS port, MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(COUNT(DISTINCT dst_port) AS DOUBLE) AS seen, "
         "CAST(COUNT(DISTINCT dst_port) AS DOUBLE) * CAST(MAX(sampling_rate) AS DOUBLE) AS ports "
         "FROM flows WHERE " + _WINDOW + " AND proto = 6 AND " + PROBE + " GROUP BY src, dst"),
    condition="ports >= {ports} AND seen >= {min_seen}",
    defaults={"ports": 15.0, "min_seen": 5.0}, source=ZEEK + "; min_seen: aupguard",
    window_s=SCAN_WINDOW_S, headline="ports", key=("offender", "victim"), subject="offender",
    prefilter=PROBE, metrics=("ports", "seen"),
)

# Many outside sources, each probing some of one client's hosts on one port (a
# botnet sweep): each source may stay under the single-source threshold.
DISTRIBUTED = Rule(
    name="distributed_scan", clause_id="security.scan",
    description="many sources probing one client's hosts on one port",
    sql=("SELECT ARG_MAX(src, packets) AS offender, CAST(NULL AS BLOB) AS victim, "
         "dst_client AS client, 'victim' AS role, dst_port AS port, "
         "MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(COUNT(DISTINCT src) AS DOUBLE) * CAST(MAX(sampling_rate) AS DOUBLE) AS sources, "
         "CAST(COUNT(DISTINCT dst) AS DOUBLE) * CAST(MAX(sampling_rate) AS DOUBLE) AS hosts "
         "FROM flows WHERE " + _WINDOW + " AND " + PROBE +
         " AND dst_client IS NOT NULL AND src_client IS NULL GROUP BY dst_client, dst_port"),
    condition="sources >= {sources} AND hosts >= {hosts}",
    defaults={"sources": 10.0, "hosts": 25.0},
    source=ZEEK + " (hosts); sources 10: aupguard default",
    window_s=SCAN_WINDOW_S, headline="hosts", key=("client", "port"), subject="client",
    prefilter=PROBE, evidence=(), metrics=("sources", "hosts"),
)

RULES = [HORIZONTAL, VERTICAL, DISTRIBUTED]
