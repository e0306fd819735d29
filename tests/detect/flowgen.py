"""Constructed flow tables for detection tests: normal traffic and each attack kind.

Everything is seeded and vectorised; the addresses follow one small world:

- client ``acme``  198.51.100.0/24 (victims of inbound attacks; 198.51.100.53 a DNS server)
- client ``beta``  203.0.113.0/24  (offenders of outbound attacks; .25 is its mail server)
- outside: 11.0.0.0/8 and 45.0.0.0/8 (routable, nobody's)
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa

from aupguard import netaddr
from aupguard.flows.schema import FLOW_SCHEMA
from aupguard.registry.attribution import AttributionIndex, Span

ACME_NET, BETA_NET = "198.51.100.0/24", "203.0.113.0/24"
VICTIM = "198.51.100.10"
DNS_SERVER = "198.51.100.53"
BETA_HOST = "203.0.113.66"
BETA_MAIL = "203.0.113.25"
EXPORTER = "127.0.0.1"
T0 = 1_790_000_000_000  # ms, a fixed instant


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def index() -> AttributionIndex:
    return AttributionIndex([Span("acme", ACME_NET), Span("beta", BETA_NET)])


def _addr(values) -> pa.Array:
    arr = np.asarray(values)
    if arr.dtype.kind in "US":
        arr = np.array([ip(v) for v in arr], dtype=np.uint32)
    hi, lo = netaddr.ipv4_to_hilo(arr.astype(np.uint32))
    return netaddr.hilo_to_arrow(hi, lo)


def flows(src, dst, *, sport, dport, proto, flags=0, packets=1, nbytes=None, start_ms,
          end_ms=None, sampling=1, in_if=0, dst_mask=0) -> pa.Table:
    """A FLOW_SCHEMA table; scalars broadcast to the length of src."""
    n = len(src)

    def arr(value, dtype):
        return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

    packets_a = arr(packets, np.int64)
    bytes_a = arr(nbytes if nbytes is not None else packets_a * 60, np.int64)
    start = arr(start_ms, np.int64)
    end = arr(end_ms if end_ms is not None else start_ms, np.int64)
    cols = {
        "start": pa.array(start, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "end": pa.array(end, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "src_addr": _addr(src), "dst_addr": _addr(dst),
        "src_port": pa.array(arr(sport, np.uint16)), "dst_port": pa.array(arr(dport, np.uint16)),
        "proto": pa.array(arr(proto, np.uint8)), "tcp_flags": pa.array(arr(flags, np.uint16)),
        "packets": pa.array(packets_a * arr(sampling, np.int64)),
        "bytes": pa.array(bytes_a * arr(sampling, np.int64)),
        "packets_raw": pa.array(packets_a), "bytes_raw": pa.array(bytes_a),
        "sampling_rate": pa.array(arr(sampling, np.uint32)),
        "exporter": _addr([EXPORTER] * n),
        "in_if": pa.array(arr(in_if, np.uint32)),
        "dst_mask": pa.array(arr(dst_mask, np.uint8)),
    }
    columns = [cols.get(f.name, pa.nulls(n, f.type)) for f in FLOW_SCHEMA]
    return pa.Table.from_arrays(columns, schema=FLOW_SCHEMA)


def outside(rng: np.random.Generator, n: int, net: str = "11.0.0.0") -> np.ndarray:
    return (ip(net) + rng.integers(1, 2**24 - 1, n)).astype(np.uint32)


def host_in(net: str, rng: np.random.Generator, n: int) -> np.ndarray:
    base = int(ipaddress.ip_network(net).network_address)
    return (base + rng.integers(1, 254, n)).astype(np.uint32)


SYN, ACK, RST, PSH, FIN = 0x02, 0x10, 0x04, 0x08, 0x01


def normal(seed: int, start_ms: int = T0, seconds: int = 60, per_s: int = 40) -> pa.Table:
    """Web, DNS, mail and ssh as ordinary clients use them: no rule should fire."""
    rng = np.random.default_rng(seed)
    n = seconds * per_s
    t = start_ms + np.sort(rng.integers(0, seconds * 1000, n))
    client_hosts = np.concatenate([host_in(ACME_NET, rng, n // 2), host_in(BETA_NET, rng, n - n // 2)])
    rng.shuffle(client_hosts)
    servers = outside(rng, 30, "45.0.0.0")[rng.integers(0, 30, n)]
    kind = rng.integers(0, 10, n)
    dport = np.select([kind < 6, kind < 8, kind < 9], [443, 80, 53], 22).astype(np.uint16)
    proto = np.where(dport == 53, 17, 6)
    flags = np.where(proto == 6, SYN | ACK | PSH | FIN, 0)
    packets = rng.integers(4, 40, n)
    out = flows(client_hosts, servers, sport=rng.integers(1024, 65535, n), dport=dport,
                proto=proto, flags=flags, packets=packets, nbytes=packets * 700,
                start_ms=t, end_ms=t + rng.integers(10, 900, n))
    back = flows(servers, client_hosts, sport=dport, dport=rng.integers(1024, 65535, n),
                 proto=proto, flags=flags, packets=packets, nbytes=packets * 900,
                 start_ms=t, end_ms=t + rng.integers(10, 900, n))
    return pa.concat_tables([out, back])


def per_second(make, seconds: int, start_ms: int) -> pa.Table:
    """One export per second of attack (routers export active flows every second here)."""
    return pa.concat_tables([make(start_ms + s * 1000, s) for s in range(seconds)])


def syn_flood_in(seed: int, start_ms: int = T0, seconds: int = 3, pps: int = 30000,
                 victim: str = VICTIM) -> pa.Table:
    rng = np.random.default_rng(seed)

    def one(t, _s):
        n = 500  # spoofed sources per second
        return flows(outside(rng, n), [victim] * n, sport=rng.integers(1024, 65535, n), dport=80,
                     proto=6, flags=SYN, packets=pps // n, nbytes=(pps // n) * 60,
                     start_ms=t, end_ms=t + 999)
    return per_second(one, seconds, start_ms)


def udp_flood_out(seed: int, start_ms: int = T0, seconds: int = 3, pps: int = 40000) -> pa.Table:
    rng = np.random.default_rng(seed)
    target = "45.1.2.3"

    def one(t, _s):
        return flows([BETA_HOST], [target], sport=40000, dport=9999, proto=17, packets=pps,
                     nbytes=pps * 1200, start_ms=t, end_ms=t + 999)
    del rng
    return per_second(one, seconds, start_ms)


def icmp_flood_in(seed: int, start_ms: int = T0, seconds: int = 3, pps: int = 25000) -> pa.Table:
    rng = np.random.default_rng(seed)

    def one(t, _s):
        n = 50
        return flows(outside(rng, n), [VICTIM] * n, sport=0, dport=2048, proto=1,
                     packets=pps // n, nbytes=(pps // n) * 84, start_ms=t, end_ms=t + 999)
    return per_second(one, seconds, start_ms)


def reflection_victim(seed: int, start_ms: int = T0, seconds: int = 3, pps: int = 30000) -> pa.Table:
    rng = np.random.default_rng(seed)

    def one(t, _s):
        n = 300  # open resolvers answering the spoofed queries
        return flows(outside(rng, n, "45.0.0.0"), [VICTIM] * n, sport=53,
                     dport=rng.integers(1024, 65535, n), proto=17, packets=pps // n,
                     nbytes=(pps // n) * 3000, start_ms=t, end_ms=t + 999)
    return per_second(one, seconds, start_ms)


def reflector(seed: int, start_ms: int = T0, seconds: int = 3, pps: int = 5000) -> pa.Table:
    """acme's DNS server answering spoofed queries toward one outside victim."""
    def one(t, _s):
        return flows([DNS_SERVER], ["45.9.9.9"], sport=53, dport=4444, proto=17, packets=pps,
                     nbytes=pps * 2900, start_ms=t, end_ms=t + 999)
    return per_second(one, seconds, start_ms)


def smurf(seed: int, start_ms: int = T0) -> pa.Table:
    """Echo requests to acme's broadcast address, spoofed from an outside victim."""
    n = 20
    t = start_ms + np.arange(n) * 100
    return flows(["45.7.7.7"] * n, ["198.51.100.255"] * n, sport=0, dport=2048, proto=1,
                 packets=10, nbytes=840, start_ms=t, end_ms=t + 50, dst_mask=24)


def horizontal_scan(seed: int, start_ms: int = T0, hosts: int = 60) -> pa.Table:
    """beta's host sweeping tcp/23 across outside hosts."""
    rng = np.random.default_rng(seed)
    targets = np.unique(outside(rng, hosts * 2, "45.0.0.0"))[:hosts]
    t = start_ms + np.arange(len(targets)) * 200
    return flows([BETA_HOST] * len(targets), targets, sport=rng.integers(1024, 65535, len(targets)),
                 dport=23, proto=6, flags=SYN, packets=1, start_ms=t)


def vertical_scan(seed: int, start_ms: int = T0, ports: int = 40) -> pa.Table:
    """An outside source probing many ports on acme's victim host."""
    p = np.arange(1, ports + 1) * 7
    t = start_ms + np.arange(ports) * 100
    return flows(["45.6.6.6"] * ports, [VICTIM] * ports, sport=55555, dport=p, proto=6,
                 flags=SYN | RST, packets=1, start_ms=t)


def distributed_scan(seed: int, start_ms: int = T0, sources: int = 40) -> pa.Table:
    """Many outside sources, each probing 3 acme hosts on tcp/3389."""
    rng = np.random.default_rng(seed)
    src = np.repeat(outside(rng, sources, "45.0.0.0"), 3)
    dst = np.array([ip("198.51.100.0") + 1 + i for i in range(len(src))], dtype=np.uint32)
    t = start_ms + np.arange(len(src)) * 50
    return flows(src, dst, sport=40000, dport=3389, proto=6, flags=SYN, packets=1, start_ms=t)


def spoofing(seed: int, start_ms: int = T0, in_if: int = 7) -> pa.Table:
    """Traffic entering on beta's access interface with sources outside beta's space."""
    rng = np.random.default_rng(seed)
    n = 30
    src = np.concatenate([outside(rng, n - 5, "45.0.0.0"),
                          np.array([ip("10.1.2.3")] * 5, dtype=np.uint32)])
    t = start_ms + np.arange(n) * 100
    return flows(src, ["45.3.3.3"] * n, sport=1234, dport=80, proto=6, flags=SYN, packets=1,
                 start_ms=t, in_if=in_if)


def spam(seed: int, start_ms: int = T0, servers: int = 50, src: str = BETA_HOST) -> pa.Table:
    rng = np.random.default_rng(seed)
    mx = np.unique(outside(rng, servers * 2, "45.0.0.0"))[:servers]
    t = start_ms + np.arange(len(mx)) * 300
    return flows([src] * len(mx), mx, sport=rng.integers(1024, 65535, len(mx)), dport=25,
                 proto=6, flags=SYN | ACK | PSH | FIN, packets=12, start_ms=t, end_ms=t + 2000)


def mail_bomb(seed: int, start_ms: int = T0, sessions: int = 150) -> pa.Table:
    t = start_ms + np.arange(sessions) * 150
    return flows([BETA_HOST] * sessions, ["45.5.5.5"] * sessions, sport=30000 + np.arange(sessions),
                 dport=25, proto=6, flags=SYN | ACK | PSH | FIN, packets=15, start_ms=t,
                 end_ms=t + 1000)


def brute_force(seed: int, start_ms: int = T0, attempts: int = 40) -> pa.Table:
    """An outside source hammering ssh on acme's victim host."""
    t = start_ms + np.arange(attempts) * 500
    return flows(["45.4.4.4"] * attempts, [VICTIM] * attempts, sport=20000 + np.arange(attempts),
                 dport=22, proto=6, flags=SYN | ACK | PSH | FIN, packets=14, start_ms=t,
                 end_ms=t + 400)


C2_ADDRESS = "45.66.66.66"


def c2_contact(seed: int, start_ms: int = T0) -> pa.Table:
    t = start_ms + np.arange(3) * 10_000
    return flows([BETA_HOST] * 3, [C2_ADDRESS] * 3, sport=50000, dport=443, proto=6,
                 flags=SYN | ACK | PSH | FIN, packets=8, start_ms=t, end_ms=t + 500)


SPAMMER = "203.0.113.77"

#: (rule, client, offender, victim, port, clause, headline metric, expected value, tolerance)
EXPECTED = [
    ("syn_flood_in", "acme", None, VICTIM, None, "security.flood", "pps", 30000, 0.01),
    ("udp_flood_out", "beta", BETA_HOST, "45.1.2.3", None, "security.flood", "pps", 40000, 0.01),
    ("icmp_flood_in", "acme", None, VICTIM, None, "security.flood", "pps", 25000, 0.01),
    ("reflection_victim", "acme", None, VICTIM, None, "security.flood", "pps", 30000, 0.01),
    ("reflection_reflector", "acme", DNS_SERVER, "45.9.9.9", 53, "security.flood", "pps", 5000, 0.01),
    ("smurf", "acme", "198.51.100.255", "45.7.7.7", None, "security.flood", "packets", 200, 0),
    ("horizontal_scan", "beta", BETA_HOST, "", 23, "security.scan", "hosts", 60, 0),
    ("vertical_scan", "acme", "45.6.6.6", VICTIM, None, "security.scan", "ports", 40, 0),
    ("distributed_scan", "acme", None, "", 3389, "security.scan", "hosts", 120, 0),
    ("spoofing", "beta", None, "45.3.3.3", None, "security.forgery", "flows", 30, 0),
    ("spam_fanout", "beta", SPAMMER, "", 25, "mail.spam", "hosts", 50, 0),
    ("mail_bombing", "beta", BETA_HOST, "45.5.5.5", 25, "security.flood", "sessions", 150, 0),
    ("brute_force", "acme", "45.4.4.4", VICTIM, 22, "security.cracking", "sessions", 40, 0),
    ("c2_contact", "beta", BETA_HOST, C2_ADDRESS, 443, "mail.malware", "flows", 3, 0),
]


def attacks(seed: int, base_ms: int = T0) -> pa.Table:
    """Every attack kind, one after the other (seconds from base noted)."""
    s = lambda sec: base_ms + sec * 1000
    return pa.concat_tables([
        syn_flood_in(seed + 1, s(10)), udp_flood_out(seed + 2, s(18)),
        icmp_flood_in(seed + 3, s(26)), reflection_victim(seed + 4, s(34)),
        reflector(seed + 5, s(42)), smurf(seed + 6, s(50)), horizontal_scan(seed + 7, s(55)),
        vertical_scan(seed + 8, s(60)), distributed_scan(seed + 9, s(65)),
        spoofing(seed + 10, s(70)), spam(seed + 11, s(75), src=SPAMMER),
        spam(seed + 12, s(75), src=BETA_MAIL),             # registered mail server: allowed
        mail_bomb(seed + 13, s(80)), brute_force(seed + 14, s(90)), c2_contact(seed + 15, s(100)),
    ])


def scenario(seed: int, base_ms: int = T0, seconds: int = 125) -> pa.Table:
    return pa.concat_tables([normal(seed, base_ms, seconds), attacks(seed, base_ms)]).sort_by("end")
