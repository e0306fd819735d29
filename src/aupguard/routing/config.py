"""[routing]: where BGP routes come from (MRT files, a live ExaBGP speaker)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Neighbour(BaseModel):
    """One BGP neighbour of aupguard's ExaBGP speaker."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="Neighbour IP address (the router or route server).")
    peer_as: int = Field(description="The neighbour's AS number (4-byte ASNs allowed).")
    port: int = Field(179, description="TCP port to connect to on the neighbour.")
    passive: bool = Field(False, description="Only accept the neighbour's connection, never dial out.")
    families: list[str] = Field(
        default_factory=lambda: ["ipv4 unicast", "ipv6 unicast"],
        description="Address families to negotiate (add 'ipv4 flow' for FlowSpec mitigation).",
    )
    md5_password: str = Field("", description="TCP MD5 password (RFC 2385); empty: none.")


class RoutingSettings(BaseModel):
    """[routing]: BGP RIB input (MRT files, live ExaBGP feed)."""

    model_config = ConfigDict(extra="forbid")

    rib_file: Path | None = Field(
        None,
        description="RIB snapshot (Arrow IPC) used for enrichment; default DATA_DIR/routing/rib.arrow.",
    )
    local_address: str = Field("127.0.0.1", description="Address aupguard's BGP speaker binds to.")
    listen_port: int = Field(1179, description="TCP port aupguard's BGP speaker listens on.")
    local_as: int = Field(65000, description="aupguard's own AS number in its BGP sessions.")
    router_id: str = Field("127.0.0.1", description="BGP router id of aupguard's speaker.")
    neighbours: list[Neighbour] = Field(
        default_factory=list, description="BGP neighbours (none by default: no live feed)."
    )
    exabgp_command: str = Field("exabgp", description="The ExaBGP executable (PyPI exabgp >= 4.2).")
    snapshot_seconds: float = Field(
        60.0, description="How often the live speaker writes its RIB to rib_file (0: never)."
    )
