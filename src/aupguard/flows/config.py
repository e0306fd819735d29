"""[flows]: the UDP collector and the hourly Parquet flow store."""

from pydantic import BaseModel, ConfigDict, Field


class FlowSettings(BaseModel):
    """[flows]: flow collection and the Parquet flow store."""

    model_config = ConfigDict(extra="forbid")

    listen: list[str] = Field(
        default=["127.0.0.1", "::1"],
        description="Addresses the collector binds (one UDP socket per address and port). "
        "Loopback by default; use 0.0.0.0 and :: to hear routers.",
    )
    netflow_port: int = Field(
        default=2055, ge=0, le=65535,
        description="UDP port for NetFlow v5/v9 and IPFIX (0 = do not listen; "
        "one port serves all three: the version is read from each datagram).",
    )
    sflow_port: int = Field(
        default=6343, ge=0, le=65535, description="UDP port for sFlow v5 (0 = do not listen).",
    )
    rcvbuf_bytes: int = Field(
        default=32 * 1024 * 1024, ge=65536,
        description="SO_RCVBUF asked of the kernel per socket; exporters send in bursts and a "
        "small buffer drops datagrams. The kernel caps it at net.core.rmem_max unless we "
        "may use SO_RCVBUFFORCE (root); `aupguard collect --stats` shows what was granted.",
    )
    batch_datagrams: int = Field(
        default=2048, ge=1,
        description="Datagrams handed to the decoder together (bigger batches decode faster; "
        "a batch only fills under load, batch_wait_ms bounds the delay otherwise).",
    )
    batch_wait_ms: int = Field(
        default=200, ge=1,
        description="Longest a received datagram waits for its batch to fill before decoding.",
    )
    flush_seconds: float = Field(
        default=5.0, gt=0,
        description="Write buffered flows to a Parquet file at least this often.",
    )
    flush_records: int = Field(
        default=200_000, ge=1,
        description="Write buffered flows to a Parquet file once this many are waiting "
        "(bounds the collector's memory: about 200 bytes per buffered flow).",
    )
    retention_days: int = Field(
        default=30, ge=0,
        description="Delete hourly flow partitions older than this many days (0 = keep forever).",
    )
    default_sampling: int = Field(
        default=1, ge=1,
        description="Sampling rate assumed for exporters that announce none (softflowd).",
    )
    sampling_overrides: dict[str, int] = Field(
        default_factory=dict,
        description='Per-exporter sampling rate that wins over the announced one, '
        'e.g. {"192.0.2.1" = 1000}.',
    )
    writer_process: bool = Field(
        default=False,
        description="Encode Parquet in a separate process so it does not compete with "
        "receiving and decoding (uses one more process; see docs/flows.md).",
    )
    max_pending: int = Field(
        default=10_000, ge=0,
        description="Data records held per exporter while waiting for their template (bounded).",
    )
    metrics_port: int = Field(
        default=9425, ge=0, le=65535,
        description="Prometheus metrics on http://127.0.0.1:PORT/metrics (0 = no endpoint).",
    )
    metrics_address: str = Field(
        default="127.0.0.1", description="Address the metrics endpoint binds.",
    )
    stats_interval_seconds: float = Field(
        default=5.0, gt=0,
        description="How often the collector writes its counters to DATA_DIR/flows/collector-stats.json.",
    )
