"""Spoofing, outbound spam, mail-bombing, brute force and C2 contact."""

from __future__ import annotations

from aupguard.detect.rules.base import TCP_ACKED, Rule

_WINDOW = "end_ms > {since} AND start_ms <= {until}"

# BCP 38: what enters from a client's access interface must carry the client's own
# source addresses. The interface -> client map comes from [detect] client_interfaces.
SPOOF_PRED = "(if_client IS NOT NULL AND (src_client IS NULL OR src_client <> if_client))"
SPOOFING = Rule(
    name="spoofing", clause_id="security.forgery",
    description="packets from a client's access interface with a source address outside the "
                "client's assignments (BCP 38), bogons included",
    sql=("SELECT ARG_MAX(src, packets) AS offender, ARG_MAX(dst, packets) AS victim, "
         "if_client AS client, 'offender' AS role, CAST(NULL AS INTEGER) AS port, "
         "MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(COUNT(*) AS DOUBLE) AS flows, CAST(COUNT(DISTINCT src) AS DOUBLE) AS sources, "
         "CAST(SUM(CASE WHEN src_bogon THEN 1 ELSE 0 END) AS DOUBLE) AS bogon_flows, "
         "CAST(SUM(packets) AS DOUBLE) AS packets "
         "FROM flows WHERE " + _WINDOW + " AND " + SPOOF_PRED + " GROUP BY if_client"),
    condition="flows >= {flows}", defaults={"flows": 5.0},
    source="aupguard default: 5 foreign-source flows per minute (BCP 38 allows none; the "
           "margin absorbs stale assignments)",
    window_s=60.0, headline="flows", key=("client",), subject="client",
    prefilter=SPOOF_PRED, evidence=(), metrics=("flows", "sources", "bogon_flows", "packets"),
)

# Bogon sources where no access interface is known: someone upstream of the exporter
# forged them. Attributed to the destination's client only as the party affected.
BOGON_PRED = "(src_bogon AND if_client IS NULL)"
BOGON = Rule(
    name="bogon_source", clause_id="security.forgery",
    description="flows with bogon (unallocated / special-purpose) source addresses",
    sql=("SELECT ARG_MAX(src, packets) AS offender, dst AS victim, MAX(dst_client) AS client, "
         "'victim' AS role, CAST(NULL AS INTEGER) AS port, MIN(start_ms) AS first_ms, "
         "MAX(end_ms) AS last_ms, CAST(COUNT(*) AS DOUBLE) AS flows, "
         "CAST(COUNT(DISTINCT src) AS DOUBLE) AS sources, CAST(SUM(packets) AS DOUBLE) AS packets "
         "FROM flows WHERE " + _WINDOW + " AND " + BOGON_PRED + " GROUP BY dst"),
    condition="flows >= {flows}", defaults={"flows": 5.0},
    source="Team Cymru bogon reference / RFC 6890 special-purpose registries; 5 flows: aupguard",
    window_s=60.0, headline="flows", key=("victim",), subject="victim",
    prefilter=BOGON_PRED, evidence=(("dst", "victim"),), metrics=("flows", "sources", "packets"),
)

SMTP_OUT = "(proto = 6 AND dst_port = 25 AND src_client IS NOT NULL AND NOT src_mail)"
SPAM = Rule(
    name="spam_fanout", clause_id="mail.spam",
    description="SMTP (tcp/25) to many mail servers from a client host that is not a "
                "registered mail server",
    sql=("SELECT src AS offender, CAST(NULL AS BLOB) AS victim, MAX(src_client) AS client, "
         "'offender' AS role, 25 AS port, MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(COUNT(DISTINCT dst) AS DOUBLE) * CAST(MAX(sampling_rate) AS DOUBLE) AS hosts, "
         "CAST(COUNT(*) AS DOUBLE) AS sessions "
         "FROM flows WHERE " + _WINDOW + " AND " + SMTP_OUT + " GROUP BY src"),
    condition="hosts >= {hosts}", defaults={"hosts": 25.0},
    source="aupguard default: 25 distinct SMTP servers in 5 min from a non-mail-server host "
           "(M3AAWG port 25 management: end-user hosts should not send direct-to-MX at all)",
    window_s=300.0, headline="hosts", key=("offender",), subject="offender",
    prefilter=SMTP_OUT, evidence=(("src", "offender"),), metrics=("hosts", "sessions"),
)

SMTP_ANY = "(proto = 6 AND dst_port = 25 AND NOT src_mail)"
MAILBOMB = Rule(
    name="mail_bombing", clause_id="security.flood",
    description="one destination hit by many SMTP sessions from one source",
    sql=("SELECT src AS offender, dst AS victim, COALESCE(MAX(src_client), MAX(dst_client)) "
         "AS client, CASE WHEN MAX(src_client) IS NOT NULL THEN 'offender' ELSE 'victim' END "
         "AS role, 25 AS port, MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(COUNT(*) AS DOUBLE) AS sessions "
         "FROM flows WHERE " + _WINDOW + " AND " + SMTP_ANY +
         " AND (src_client IS NOT NULL OR dst_client IS NOT NULL) GROUP BY src, dst"),
    condition="sessions >= {sessions}", defaults={"sessions": 100.0},
    source="aupguard default: 100 SMTP sessions from one source to one server in 5 min",
    window_s=300.0, headline="sessions", key=("offender", "victim"), subject="offender",
    prefilter=SMTP_ANY, metrics=("sessions",),
)

# Login attempts are established sessions (ACK seen) of a few packets each, unlike
# scan probes; one source either sprays many hosts or hammers one.
LOGIN_PORTS = "(22, 23, 3389, 5900)"
LOGIN = f"(proto = 6 AND dst_port IN {LOGIN_PORTS} AND {TCP_ACKED})"
BRUTE = Rule(
    name="brute_force", clause_id="security.cracking",
    description="many login sessions to 22/23/3389/5900 from one source, on many hosts or "
                "repeatedly on one",
    sql=("SELECT src AS offender, ARG_MAX(dst, sessions) AS victim, "
         "COALESCE(MAX(src_client), MAX(dst_client)) AS client, "
         "CASE WHEN MAX(src_client) IS NOT NULL THEN 'offender' ELSE 'victim' END AS role, "
         "dst_port AS port, MIN(first_ms) AS first_ms, MAX(last_ms) AS last_ms, "
         "CAST(SUM(sessions) AS DOUBLE) AS sessions, CAST(COUNT(*) AS DOUBLE) AS hosts, "
         "CAST(MAX(sessions) AS DOUBLE) AS per_host FROM ("
         "SELECT src, dst, dst_port, MAX(src_client) AS src_client, MAX(dst_client) AS dst_client,"
         " COUNT(*) AS sessions, MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms "
         "FROM flows WHERE " + _WINDOW + " AND " + LOGIN + " GROUP BY src, dst, dst_port"
         ") AS per_dst GROUP BY src, dst_port"),
    condition="sessions >= {sessions} AND (hosts >= {hosts} OR per_host >= {per_host})",
    defaults={"sessions": 20.0, "hosts": 10.0, "per_host": 20.0},
    source="aupguard default after fail2ban/sshguard practice (a handful of failures per "
           "host per 10 min): 20 sessions in 5 min, on 10 hosts or 20 on one",
    window_s=300.0, headline="sessions", key=("offender", "port"), subject="offender",
    prefilter=LOGIN, evidence=(("src", "offender"),), metrics=("sessions", "hosts", "per_host"),
)

# A client host talking to (or answered by) an address on a threat feed. The feed
# columns are the index of the matching feed entry, -1 when none.
C2_PRED = "((dst_feed >= 0 AND src_client IS NOT NULL) OR (src_feed >= 0 AND dst_client IS NOT NULL))"
C2 = Rule(
    name="c2_contact", clause_id="mail.malware",
    description="a client host in contact with a malware command-and-control address from a "
                "loaded threat feed",
    sql=("SELECT host AS offender, c2 AS victim, MAX(client) AS client, 'offender' AS role, "
         "MAX(port) AS port, MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms, "
         "CAST(COUNT(*) AS DOUBLE) AS flows, CAST(MAX(feed) AS DOUBLE) AS feed_entry FROM ("
         "SELECT src AS host, dst AS c2, src_client AS client, dst_port AS port, dst_feed AS feed,"
         " start_ms, end_ms FROM flows WHERE " + _WINDOW + " AND dst_feed >= 0 AND "
         "src_client IS NOT NULL UNION ALL "
         "SELECT dst AS host, src AS c2, dst_client AS client, src_port AS port, src_feed AS feed,"
         " start_ms, end_ms FROM flows WHERE " + _WINDOW + " AND src_feed >= 0 AND "
         "dst_client IS NOT NULL) AS contacts GROUP BY host, c2"),
    condition="flows >= {flows}", defaults={"flows": 1.0},
    source="any contact with a listed C2 address (abuse.ch Feodo Tracker, Spamhaus DROP)",
    window_s=300.0, headline="flows", key=("offender", "victim"), subject="offender",
    prefilter=C2_PRED, metrics=("flows", "feed_entry"),
)

RULES = [SPOOFING, BOGON, SPAM, MAILBOMB, BRUTE, C2]
