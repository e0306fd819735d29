"""[detect]: detection rules, thresholds, threat feeds and BGP mitigation.

Thresholds resolve from the most general to the most specific: the rule's
built-in default (documented with its source in ``detect/rules``), then
``[detect.thresholds.<rule>]``, then ``[detect.clients.<client>.<rule>]``,
then the host group whose prefix holds the client's address
(``[detect.host_groups.<name>]``) — a host group is the most specific.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

ThresholdMap = dict[str, dict[str, float]]


class HostGroup(BaseModel):
    """A named list of prefixes with its own thresholds (e.g. DNS servers, game servers)."""

    model_config = ConfigDict(extra="forbid")

    prefixes: list[str] = Field(default_factory=list,
                                description="Prefixes in the group, e.g. [\"192.0.2.53/32\"].")
    thresholds: ThresholdMap = Field(
        default_factory=dict,
        description="Per-rule threshold overrides for hosts in the group: {rule: {name: value}}.")


class MitigationSettings(BaseModel):
    """[detect.mitigation]: RTBH / FlowSpec announcements through ExaBGP."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Propose mitigations for flood victims.")
    auto: bool = Field(False, description="Announce without waiting for `aupguard mitigations approve`.")
    mode: str = Field("blackhole", pattern="^(blackhole|flowspec)$",
                      description="blackhole (RTBH /32 or /128) or flowspec (discard rule for the attack traffic).")
    rules: list[str] = Field(
        default_factory=lambda: ["syn_flood_in", "udp_flood_in", "icmp_flood_in", "reflection_victim"],
        description="Rules whose victims are mitigated.")
    mitigate_sources: bool = Field(False, description="Also blackhole the offending client host of outbound floods.")
    communities: list[str] = Field(default_factory=lambda: ["65535:666"],
                                   description="Communities on blackhole routes (RFC 7999 BLACKHOLE by default).")
    next_hop: str = Field("192.0.2.1", description="Next hop of blackhole routes (a discard address on the routers).")
    hold_s: float = Field(300.0, ge=0, description="Withdraw this long after the attack was last seen.")
    allow_list: list[str] = Field(default_factory=list,
                                  description="Prefixes never blackholed (resolvers, core routers, customers' gateways).")
    local_address: str = Field("127.0.0.1", description="ExaBGP local address.")
    local_as: int = Field(65000, ge=1, description="Our AS number in the ExaBGP session.")
    router_id: str = Field("127.0.0.1", description="ExaBGP router id.")
    peer_address: str = Field("127.0.0.1", description="BGP peer (route server / edge router) address.")
    peer_as: int = Field(65000, ge=1, description="Peer AS (same as local_as for iBGP).")
    peer_port: int = Field(179, ge=1, le=65535, description="Peer TCP port.")


class DetectSettings(BaseModel):
    """[detect]: detection rules, thresholds and mitigation."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(1.0, gt=0, description="Evaluate the rules this often on the live window.")
    long_interval_s: float = Field(
        5.0, gt=0, description="Evaluate the minute-long rules (scans, spam, brute force, C2) "
                               "this often; floods run every interval_s.")
    rules: list[str] = Field(default_factory=list, description="Rules to run (empty: all).")
    disabled_rules: list[str] = Field(default_factory=list, description="Rules never run.")
    hold_s: float = Field(300.0, ge=0, description="End an incident after this long without a finding.")
    max_window_rows: int = Field(5_000_000, ge=1000,
                                 description="Cap on rows kept for minute-long windows (oldest dropped first).")
    thresholds: ThresholdMap = Field(
        default_factory=dict,
        description="Global threshold overrides: {rule: {name: value}}, e.g. syn_flood_in.pps = 20000.")
    clients: dict[str, ThresholdMap] = Field(
        default_factory=dict, description="Per-client overrides: {client_id: {rule: {name: value}}}.")
    host_groups: dict[str, HostGroup] = Field(
        default_factory=dict, description="Named prefix lists with their own thresholds.")
    client_interfaces: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Access interfaces per client, as \"exporter-ip:ifindex\": traffic entering "
                    "there must carry the client's own source addresses (BCP 38 spoofing check).")
    mitigation: MitigationSettings = MitigationSettings()
