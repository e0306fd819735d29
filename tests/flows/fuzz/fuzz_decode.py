"""Atheris (libFuzzer) target for the flow decoder. Run by hand, not by pytest:

    pip install atheris            # or: pip install -e .[fuzz]
    python tests/flows/fuzz/fuzz_decode.py -max_total_time=300 [corpus_dir]

Each input is split into up to 8 datagrams (a 0xFF 0x00 0xFF separator) fed in one
batch to a fresh decoder, so template state, held data and batch splitting are
exercised together. Any exception is a finding: the decoder must count bad input,
never raise. Seeds: the datagrams built in tests/flows/test_flows_fuzz.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from aupguard.flows.decode import Decoder

SEP = b"\xff\x00\xff"


def test_one_input(data: bytes) -> None:
    dec = Decoder(max_pending=100)
    datagrams = data.split(SEP)[:8]
    batches = dec.feed_many([(d, "192.0.2.1", 0) for d in datagrams])
    for b in batches:
        b.validate(full=True)
    assert dec.pending_records() <= 100


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
