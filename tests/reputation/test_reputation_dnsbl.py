"""The DNSBL monitor against a real rbldnsd on loopback."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from aupguard.incidents import list_incidents
from aupguard.registry import Client, add_assignment, add_client
from aupguard.reputation.config import DnsblZone, ReputationSettings
from aupguard.reputation.dnsbl import ERROR, LISTED, check_sync, query_name
from aupguard.reputation.models import DnsblListing
from aupguard.reputation.monitor import check, current_listings, listing_history

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _clients(store) -> None:
    with store.session() as s:
        add_client(s, Client(id="acme", name="Acme"))
        add_client(s, Client(id="beta", name="Beta"))
        add_assignment(s, "acme", "192.0.2.0/28")
        add_assignment(s, "beta", "198.51.100.0/29")


def _settings(server, **zone) -> ReputationSettings:
    return ReputationSettings(
        resolver="127.0.0.1", resolver_port=server.port, timeout=1.0, retries=1,
        zones=[DnsblZone(name="bl.test", codes={"127.0.0.2": "test listing",
                                                 "127.0.0.4": "spam source"}, **zone),
               DnsblZone(name="spam.test", **zone)])


def test_query_names():
    assert query_name("192.0.2.5", "zen.example") == "5.2.0.192.zen.example."
    assert query_name("::ffff:192.0.2.5", "bl.test.") == "5.2.0.192.bl.test."
    v6 = query_name("2001:db8::1", "bl6.test")
    assert v6.startswith("1.0.0.0.0.0.0.0") and v6.endswith("8.b.d.0.1.0.0.2.bl6.test.")
    assert len(v6.split(".")) == 32 + 3


def test_listing_and_delisting_follow_the_zone(store, rbldnsd):
    _clients(store)
    rbldnsd.write("bl.test", ["192.0.2.5", "192.0.2.7 :127.0.0.4:Spam source", "203.0.113.9"])
    rbldnsd.write("spam.test", ["198.51.100.3"])
    rbldnsd.reload()
    settings = _settings(rbldnsd)

    with store.session() as s:
        rep = check(s, settings, now=T0)
    assert rep.addresses == 16 + 8
    assert rep.queries == 2 * 24 and rep.errors == 0
    found = {(n["zone"], n["address"], n["client_id"]) for n in rep.new_listings}
    # 203.0.113.9 is listed but not ours: never queried, never reported.
    assert found == {("bl.test", "192.0.2.5", "acme"), ("bl.test", "192.0.2.7", "acme"),
                     ("spam.test", "198.51.100.3", "beta")}
    with store.session() as s:
        now_listed = current_listings(s)
        assert [(r.address, r.zone) for r in now_listed] == sorted(
            [("192.0.2.5", "bl.test"), ("192.0.2.7", "bl.test"), ("198.51.100.3", "spam.test")])
        spam = next(r for r in now_listed if r.address == "192.0.2.7")
        assert spam.codes == ["127.0.0.4"] and spam.meanings == ["spam source"]
        incidents = list_incidents(s, clause_id="security.blacklisting", status="active")
        assert {(i.client_id, i.offender) for i in incidents} == {
            ("acme", "192.0.2.5"), ("acme", "192.0.2.7"), ("beta", "198.51.100.3")}

    # Still listed an hour later: same listing, same incident, no new ones.
    with store.session() as s:
        rep2 = check(s, settings, now=T0 + timedelta(hours=1))
    assert rep2.new_listings == [] and rep2.delistings == [] and rep2.listed == 3

    # 192.0.2.5 is delisted.
    rbldnsd.write("bl.test", ["192.0.2.7 :127.0.0.4:Spam source"])
    rbldnsd.reload()
    with store.session() as s:
        rep3 = check(s, settings, now=T0 + timedelta(hours=2))
    assert [(d["zone"], d["address"]) for d in rep3.delistings] == [("bl.test", "192.0.2.5")]
    with store.session() as s:
        history = listing_history(s, "192.0.2.5")
        assert len(history) == 1 and history[0].status == "delisted"
        assert history[0].listed_at == T0 and history[0].delisted_at == T0 + timedelta(hours=2)
        ended = list_incidents(s, clause_id="security.blacklisting", status="ended")
        assert [i.offender for i in ended] == ["192.0.2.5"]
        assert len(list_incidents(s, clause_id="security.blacklisting", status="active")) == 2

    # Listed again: a second episode and a new incident.
    rbldnsd.write("bl.test", ["192.0.2.5", "192.0.2.7 :127.0.0.4:Spam source"])
    rbldnsd.reload()
    with store.session() as s:
        rep4 = check(s, settings, now=T0 + timedelta(hours=3))
        assert [n["address"] for n in rep4.new_listings] == ["192.0.2.5"]
        assert [h.status for h in listing_history(s, "192.0.2.5")] == ["listed", "delisted"]


def test_check_one_client_only(sqlite_store, rbldnsd):
    _clients(sqlite_store)
    rbldnsd.write("bl.test", ["192.0.2.5", "198.51.100.3"])
    rbldnsd.reload()
    with sqlite_store.session() as s:
        rep = check(s, _settings(rbldnsd), client_id="beta", now=T0)
    assert rep.addresses == 8
    assert [(n["address"], n["client_id"]) for n in rep.new_listings] == [("198.51.100.3", "beta")]


def test_rate_and_concurrency_limits_hold(rbldnsd):
    rbldnsd.write("bl.test", ["10.0.0.0/24"])
    rbldnsd.reload()
    zone = DnsblZone(name="bl.test", rate=40, concurrency=4)
    addresses = [f"10.0.0.{i}" for i in range(60)]
    started = time.monotonic()
    answers, stats = check_sync(addresses, [zone], "127.0.0.1", rbldnsd.port, timeout=1, retries=0)
    elapsed = time.monotonic() - started
    assert [a.status for a in answers].count(LISTED) == 60
    st = stats["bl.test"]
    assert st.queries_sent == 60 and st.max_in_flight <= 4
    assert elapsed >= 59 / 40 * 0.95
    sends = st.send_times
    # No one-second window holds more than rate (+1 for the window edge).
    worst = max(sum(1 for t in sends if s0 <= t < s0 + 1.0) for s0 in sends)
    assert worst <= 41


def test_timeout_is_retried_and_reported_never_clear(sqlite_store, rbldnsd, silent_udp):
    _clients(sqlite_store)
    rbldnsd.write("bl.test", ["192.0.2.5"])
    rbldnsd.reload()
    with sqlite_store.session() as s:
        check(s, _settings(rbldnsd), client_id="acme", now=T0)
    port, received = silent_udp
    dead = ReputationSettings(resolver="127.0.0.1", resolver_port=port, timeout=0.2, retries=2,
                              zones=[DnsblZone(name="bl.test", concurrency=16)])
    with sqlite_store.session() as s:
        rep = check(s, dead, client_id="acme", now=T0 + timedelta(hours=1))
    assert rep.addresses == 16 and rep.errors == 16 and rep.delistings == []
    assert rep.zones["bl.test"]["timeouts"] == 48
    assert received() == 16 * 3            # each address asked three times at the server
    assert all(e["attempts"] == 3 and "no answer" in e["error"] for e in rep.error_samples)
    with sqlite_store.session() as s:
        still = current_listings(s)
        assert [(r.address, r.status) for r in still] == [("192.0.2.5", "listed")]


def test_refusal_codes_are_errors_not_listings(rbldnsd):
    rbldnsd.write("bl.test", ["10.0.0.1 :127.255.255.254:refused", "10.0.0.2"])
    rbldnsd.reload()
    answers, _ = check_sync(["10.0.0.1", "10.0.0.2", "10.0.0.3"], [DnsblZone(name="bl.test")],
                            "127.0.0.1", rbldnsd.port, timeout=1, retries=0)
    by = {a.address: a for a in answers}
    assert by["10.0.0.1"].status == ERROR and "refused" in by["10.0.0.1"].error
    assert by["10.0.0.2"].status == LISTED and by["10.0.0.3"].status == "clear"


def test_no_zones_is_a_clear_config_error(sqlite_store):
    from aupguard.errors import ConfigError

    with sqlite_store.session() as s, pytest.raises(ConfigError, match="no DNSBL zones"):
        check(s, ReputationSettings())


def test_listing_model_roundtrip(sqlite_store):
    with sqlite_store.session() as s:
        s.add(DnsblListing(zone="z", address="192.0.2.1", codes=[], meanings=[], listed_at=T0,
                           last_seen_at=T0))
    with sqlite_store.session() as s:
        assert listing_history(s, "::ffff:192.0.2.1")[0].listed_at == T0


def test_garbage_and_hijacked_answers_are_errors():
    """A 'resolver' that answers garbage first, then a non-127 address (NXDOMAIN rewriting)."""
    import socket
    import threading

    import dns.message
    import dns.rrset

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)

    def serve():
        for _ in range(2):
            data, peer = sock.recvfrom(4096)
            sock.sendto(b"\x00\x01garbage", peer)          # malformed: ignored, counted
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "198.51.100.80"))
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    answers, stats = check_sync(["10.0.0.1", "10.0.0.2"], [DnsblZone(name="bl.test", concurrency=1)],
                                "127.0.0.1", sock.getsockname()[1], timeout=2, retries=0)
    thread.join(5)
    sock.close()
    assert [a.status for a in answers] == [ERROR, ERROR]
    assert all("outside 127.0.0.0/8" in a.error for a in answers)
    assert stats["bl.test"].malformed == 2
