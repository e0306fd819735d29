"""Flow export decoders: NetFlow v5, v9, IPFIX and sFlow v5 to Arrow (``FLOW_SCHEMA``).

    from aupguard.flows.decode import Decoder
    dec = Decoder(default_sampling=1, sampling_overrides={"192.0.2.1": 1000})
    batches = dec.feed_many([(datagram, "192.0.2.1", received_ms), ...])

See docs/flows-decoding.md for the design and the measured throughput.
"""

from aupguard.flows.decode.decoder import Decoder
from aupguard.flows.decode.stats import DecodeStats, ExporterStats

__all__ = ["DecodeStats", "Decoder", "ExporterStats"]
