"""The one Arrow schema every flow decoder emits and every later stage reads.

Addresses are 16-byte IPv4-mapped IPv6 (``aupguard.netaddr``). Counters are
signed 64-bit so Spark reads the Parquet files as plain longs (it reads
unsigned 64-bit as DECIMAL). ``packets``/``bytes`` are scaled by the sampling
rate; the raw counts and the rate are kept beside them.
"""

import pyarrow as pa

TS = pa.timestamp("ms", tz="UTC")
ADDR = pa.binary(16)

FLOW_FIELDS = [
    pa.field("start", TS, nullable=False),           # flow start, UTC ms
    pa.field("end", TS, nullable=False),             # flow end, UTC ms
    pa.field("src_addr", ADDR, nullable=False),
    pa.field("dst_addr", ADDR, nullable=False),
    pa.field("src_port", pa.uint16()),
    pa.field("dst_port", pa.uint16()),
    pa.field("proto", pa.uint8()),
    pa.field("tcp_flags", pa.uint16()),
    pa.field("packets", pa.int64()),                 # scaled by sampling_rate
    pa.field("bytes", pa.int64()),                   # scaled by sampling_rate
    pa.field("packets_raw", pa.int64()),
    pa.field("bytes_raw", pa.int64()),
    pa.field("sampling_rate", pa.uint32()),          # 1 = unsampled
    pa.field("exporter", ADDR, nullable=False),
    pa.field("obs_domain", pa.uint32()),             # v9 source id / IPFIX domain / sFlow agent sub-id
    pa.field("in_if", pa.uint32()),
    pa.field("out_if", pa.uint32()),
    pa.field("src_as", pa.uint32()),                 # as exported (0 = not exported)
    pa.field("dst_as", pa.uint32()),
    pa.field("src_mask", pa.uint8()),
    pa.field("dst_mask", pa.uint8()),
    pa.field("next_hop", ADDR),
    pa.field("direction", pa.int8()),                # -1 unknown, 0 ingress, 1 egress (as exported)
    pa.field("flow_version", pa.uint8()),            # 5, 9, 10 (IPFIX), 105 (sFlow v5)
]
FLOW_SCHEMA = pa.schema(FLOW_FIELDS)

# Columns added by enrichment (routing + registry) before the store.
ENRICHED_FIELDS = [
    pa.field("src_client", pa.string()),             # client holding src_addr at `start`
    pa.field("dst_client", pa.string()),
    pa.field("client", pa.string()),                 # the client the flow belongs to
    pa.field("client_dir", pa.string()),             # "out" (client sent), "in" (client received)
    pa.field("src_asn", pa.uint32()),                # origin AS from the RIB (0 = unknown)
    pa.field("dst_asn", pa.uint32()),
    pa.field("src_as_path", pa.list_(pa.uint32())),
    pa.field("dst_as_path", pa.list_(pa.uint32())),
]
ENRICHED_SCHEMA = pa.schema(FLOW_FIELDS + ENRICHED_FIELDS)


def empty_flows(enriched: bool = False) -> pa.Table:
    return (ENRICHED_SCHEMA if enriched else FLOW_SCHEMA).empty_table()
