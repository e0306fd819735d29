"""[reputation]: DNSBL monitor of the client address space and SMTP relay/auth probes.

Defaults send nothing off the machine: no zones configured and the resolver
is 127.0.0.1, so a fresh install checks nothing until an operator lists the
zones it is allowed to query (most public DNSBLs have usage terms).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DnsblZone(BaseModel):
    """One blocklist zone and what its answers mean."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="DNS zone queried, e.g. zen.spamhaus.org (the address is "
                                  "prepended reversed: 2.0.0.127.zen.spamhaus.org).")
    codes: dict[str, str] = Field(
        default_factory=dict,
        description="Meaning of each return address, e.g. {\"127.0.0.2\" = \"SBL\"}. "
                    "Unlisted 127.x.y.z answers still count as a listing ('listed').")
    error_codes: list[str] = Field(
        default_factory=lambda: ["127.255.255.252", "127.255.255.254", "127.255.255.255"],
        description="Answers that mean 'query refused / rate limited' (Spamhaus style): "
                    "reported as errors, never as a listing or a delisting.")
    concurrency: int = Field(default=64, ge=1, le=4096,
                             description="Queries in flight at once for this zone.")
    rate: float = Field(default=500.0, gt=0,
                        description="Maximum queries per second sent for this zone.")
    ipv6: bool = Field(default=False,
                       description="The zone answers IPv6 (nibble-reversed) queries.")


class ReputationSettings(BaseModel):
    """[reputation]: DNSBL monitor and SMTP relay probes."""

    model_config = ConfigDict(extra="forbid")

    resolver: str = Field(default="127.0.0.1",
                          description="Address of the recursive resolver (or DNSBL mirror) "
                                      "that answers DNSBL queries.")
    resolver_port: int = Field(default=53, ge=1, le=65535, description="Resolver UDP port.")
    zones: list[DnsblZone] = Field(default_factory=list,
                                   description="DNSBL zones to check (none by default). Add one "
                                               "[[reputation.zones]] table per zone with name, codes, "
                                               "error_codes, concurrency, rate, ipv6 "
                                               "(see docs/reputation.md).")
    timeout: float = Field(default=2.0, gt=0, description="Seconds to wait for one answer.")
    retries: int = Field(default=2, ge=0, le=10,
                         description="Retries after a timeout before the address is "
                                     "reported as an error (never as 'not listed').")
    max_addresses: int = Field(default=1_048_576, ge=1,
                               description="Refuse a check that would query more addresses "
                                           "than this (a typo in a prefix can mean a /8).")
    probe_ports: list[int] = Field(default_factory=lambda: [25, 587],
                                   description="Ports probed when `probe smtp HOST` has no port.")
    probe_timeout: float = Field(default=10.0, gt=0,
                                 description="Seconds to wait for each SMTP reply.")
    check_interval_hours: float = Field(
        default=6.0, ge=0, description="`aupguard run` checks client space against the zones this "
                                       "often (0: only by hand; nothing runs while no zone is set).")
    probe_schedule: bool = Field(
        default=False, description="Let `aupguard run` probe clients' registered mail servers "
                                   "(every probe_interval_hours). Off by default: probing "
                                   "connects to client hosts, which may be off this machine.")
    probe_interval_hours: float = Field(default=24.0, ge=0,
                                        description="Do not probe the same host:port again "
                                                    "within this many hours (rate limit).")
    probe_pause: float = Field(default=1.0, ge=0,
                               description="Seconds between two probe connections.")
    probe_outside_domain: str = Field(
        default="relay-test.invalid",
        description="Outside domain used for relay-test sender and recipients "
                    "(never delivered: the probe stops before DATA).")
    probe_helo: str = Field(default="aupguard-probe.invalid",
                            description="Name given in EHLO by the probe.")
