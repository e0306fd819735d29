"""Asynchronous DNSBL lookups: many queries over one UDP socket per zone.

dnspython builds and parses every message; what is hand-written here is the
multiplexing. ``dns.asyncquery.udp`` opens a socket per query (or, given a
shared socket, lets concurrent callers read each other's answers), which
caps a /16 x 3 zones check far below the rate a local resolver or rbldnsd
mirror serves. One connected socket per zone with answers matched on
(message id, question) keeps hundreds of queries in flight cheaply.

A timeout is retried ``retries`` times and then reported as ``error``: an
unanswered query is never taken as "not listed".
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from aupguard.reputation.config import DnsblZone

LISTED, CLEAR, ERROR = "listed", "clear", "error"


@dataclass
class Answer:
    """The verdict of one zone on one address."""

    zone: str
    address: str
    status: str                       # listed | clear | error
    codes: list[str] = field(default_factory=list)
    meanings: list[str] = field(default_factory=list)
    error: str = ""
    attempts: int = 1


@dataclass
class ZoneStats:
    queries_sent: int = 0
    answers: int = 0
    timeouts: int = 0
    max_in_flight: int = 0
    malformed: int = 0                                        # unparseable datagrams received
    send_times: list[float] = field(default_factory=list)   # monotonic, for rate checks


def query_name(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, zone: str) -> str:
    """The DNSBL query name: reversed octets (IPv4) or reversed nibbles (IPv6)."""
    addr = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        a, b, c, d = addr.packed
        return f"{d}.{c}.{b}.{a}.{zone.rstrip('.')}."
    nibbles = addr.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + f".{zone.rstrip('.')}."


def build_query(qid: int, qname: str) -> bytes:
    """Wire form of a recursive A query.

    Hand-built because dnspython's Message.to_wire does name-compression
    bookkeeping that costs ~250 us per query here (more than the rest of the
    round trip); a query is a 12-byte header, the labels and type/class.
    Answers are still parsed by dnspython.
    """
    labels = qname.rstrip(".").split(".")
    if any(not 0 < len(label) < 64 for label in labels) or len(qname) > 253:
        raise ValueError(f"{qname!r} is not a valid DNS name")
    body = b"".join(bytes((len(label),)) + label.encode("ascii") for label in labels)
    return struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + body + b"\x00\x00\x01\x00\x01"


def _labels(qname: str) -> tuple[bytes, ...]:
    return tuple(label.lower().encode("ascii") for label in qname.rstrip(".").split(".")) + (b"",)


class RateLimiter:
    """Strict pacing: sends at least 1/rate seconds apart, no burst (retries count too).

    Waiters queue on a lock and each re-bases on the time it actually woke, so a
    stalled event loop never releases a backlog in one burst.
    """

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            wait = self._next - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next = max(self._next, loop.time()) + self.interval


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, pending: dict[int, tuple[asyncio.Future, tuple[bytes, ...]]]):
        self.pending = pending
        self.malformed = 0

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            msg = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException:
            self.malformed += 1    # counted; a garbled reply is a timeout for its query
            return
        entry = self.pending.get(msg.id)
        if entry is None:
            return                 # late answer to a query already timed out
        future, labels = entry
        if (not msg.question or future.done()
                or tuple(l.lower() for l in msg.question[0].name.labels) != labels):
            return                 # id collision or spoof: keep waiting for the real one
        future.set_result(msg)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc.: the waiting queries time out and are retried.
        pass


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


class ZoneResolver:
    """Queries one zone through one resolver, paced and bounded."""

    def __init__(self, zone: DnsblZone, resolver: str, port: int, timeout: float, retries: int):
        self.zone = zone
        self.resolver, self.port = resolver, port
        self.timeout, self.retries = timeout, retries
        self.limiter = RateLimiter(zone.rate)
        self.stats = ZoneStats()
        self._pending: dict[int, tuple[asyncio.Future, tuple[bytes, ...]]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self._in_flight = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, self._protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._pending), remote_addr=(self.resolver, self.port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _new_id(self) -> int:
        while True:
            qid = random.getrandbits(16)
            if qid not in self._pending:
                return qid

    async def _ask(self, qname: str) -> tuple[dns.message.Message | None, int]:
        """One A query with retries: (reply or None after the last timeout, attempts made)."""
        loop = asyncio.get_running_loop()
        labels = _labels(qname)
        for attempt in range(1, self.retries + 2):
            await self.limiter.acquire()
            qid = self._new_id()
            future = loop.create_future()
            # call_later instead of asyncio.wait_for: no extra task per query.
            timer = loop.call_later(self.timeout, _expire, future)
            self._pending[qid] = (future, labels)
            self._in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
            self.stats.queries_sent += 1
            self.stats.send_times.append(time.monotonic())
            try:
                assert self._transport is not None
                self._transport.sendto(build_query(qid, qname))
                reply = await future
                self.stats.answers += 1
                return reply, attempt
            except asyncio.TimeoutError:
                self.stats.timeouts += 1
            finally:
                timer.cancel()
                self._in_flight -= 1
                self._pending.pop(qid, None)
        return None, self.retries + 1

    async def check(self, address: str) -> Answer:
        zone = self.zone
        reply, attempts = await self._ask(query_name(address, zone.name))
        if reply is None:
            return Answer(zone.name, address, ERROR, error=f"no answer after {attempts} tries "
                          f"(timeout {self.timeout}s each)", attempts=attempts)
        rcode = reply.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return Answer(zone.name, address, CLEAR, attempts=attempts)
        if rcode != dns.rcode.NOERROR:
            return Answer(zone.name, address, ERROR, error=f"resolver answered {dns.rcode.to_text(rcode)}",
                          attempts=attempts)
        if reply.flags & dns.flags.TC:
            return Answer(zone.name, address, ERROR, error="truncated answer", attempts=attempts)
        codes = sorted({rr.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A
                        for rr in rrset})
        if not codes:
            return Answer(zone.name, address, CLEAR, attempts=attempts)   # NODATA
        refused = [c for c in codes if c in zone.error_codes]
        foreign = [c for c in codes if not c.startswith("127.")]
        if refused or foreign:
            # A DNSBL answers inside 127/8; anything else is a resolver that rewrites
            # NXDOMAIN (ad servers) or a refusal code: neither listed nor clear.
            why = "zone refused the query" if refused else "answer outside 127.0.0.0/8"
            return Answer(zone.name, address, ERROR, codes=codes, error=f"{why}: {', '.join(codes)}",
                          attempts=attempts)
        meanings = [zone.codes.get(c, "listed") for c in codes]
        return Answer(zone.name, address, LISTED, codes=codes, meanings=meanings, attempts=attempts)

    async def run(self, addresses: Iterable[str]) -> list[Answer]:
        """Check every address with `concurrency` workers sharing one iterator."""
        iterator: Iterator[str] = iter(addresses)
        results: list[Answer] = []

        async def worker() -> None:
            for address in iterator:
                results.append(await self.check(address))

        await asyncio.gather(*(worker() for _ in range(self.zone.concurrency)))
        return results


async def check_addresses(addresses: list[str], zones: list[DnsblZone], resolver: str, port: int,
                          timeout: float = 2.0, retries: int = 2
                          ) -> tuple[list[Answer], dict[str, ZoneStats]]:
    """Every address against every zone, zones in parallel; answers and per-zone stats."""
    resolvers = [ZoneResolver(z, resolver, port, timeout, retries) for z in zones]
    try:
        for r in resolvers:
            await r.open()
        chunks = await asyncio.gather(*(
            r.run(a for a in addresses if r.zone.ipv6 or ":" not in a) for r in resolvers))
    finally:
        for r in resolvers:
            r.close()
    answers = [a for chunk in chunks for a in chunk]
    for r in resolvers:
        r.stats.malformed = r._protocol.malformed if r._protocol else 0
    return answers, {r.zone.name: r.stats for r in resolvers}


def check_sync(addresses: list[str], zones: list[DnsblZone], resolver: str, port: int,
               timeout: float = 2.0, retries: int = 2) -> tuple[list[Answer], dict[str, ZoneStats]]:
    return asyncio.run(check_addresses(addresses, zones, resolver, port, timeout, retries))
