"""Truncated or corrupt MRT: a clear error with the byte offset; records before the fault kept."""

from __future__ import annotations

import bz2
import gzip
import struct

from hypothesis import given, settings, strategies as st

from aupguard.routing.mrt import MrtReader, read_mrt
from aupguard.routing.rib import Rib
from aupguard.routing.synth import encode_attributes, peer_index, rib_record

ROUTES = [(4, 0x0A000000 + (i << 8), 24) for i in range(10)] + [(6, 0x20010DB8 << 96 | (i << 80), 48) for i in range(4)]


def _records() -> list[bytes]:
    recs = [peer_index()]
    for seq, (fam, net, plen) in enumerate(ROUTES):
        nh = "192.0.2.1" if fam == 4 else "2001:db8::1"
        attrs = encode_attributes(fam, [64496, 4200000000 + seq], ["65000:1"], nh)
        recs.append(rib_record(seq, fam, net, plen, attrs))
    return recs


def _offsets(recs: list[bytes]) -> list[int]:
    out, pos = [], 0
    for r in recs:
        out.append(pos)
        pos += len(r)
    return out


def test_clean_file_reads_all(tmp_path):
    path = tmp_path / "ok.mrt"
    path.write_bytes(b"".join(_records()))
    res = read_mrt(path)
    assert res.fatal is None and res.error_count == 0 and len(res.routes) == len(ROUTES)
    rib = Rib.from_mrt(res)
    assert rib.lookup("10.0.3.7")["as_path"] == [64496, 4200000003]
    assert rib.lookup("2001:db8:2::1")["origin_as"] == 4200000000 + 12


def test_truncated_record_reports_offset_and_keeps_earlier(tmp_path):
    recs = _records()
    offsets = _offsets(recs)
    data = b"".join(recs)
    k = 6  # cut inside record 6
    path = tmp_path / "cut.mrt"
    path.write_bytes(data[: offsets[k] + 20])
    res = read_mrt(path)
    assert res.fatal is not None and res.fatal.offset == offsets[k]
    assert "truncated MRT record" in res.fatal.message and "only 8 remain" in res.fatal.message
    assert len(res.routes) == k - 1  # records 1..k-1 (record 0 is the peer index)
    assert str(res.fatal).startswith(f"byte offset {offsets[k]}:")


def test_truncated_header(tmp_path):
    data = b"".join(_records())
    path = tmp_path / "hdr.mrt"
    path.write_bytes(data + b"\x00\x00\x00")
    res = read_mrt(path)
    assert res.fatal.offset == len(data) and "header" in res.fatal.message
    assert len(res.routes) == len(ROUTES)


def test_corrupt_record_counted_and_skipped(tmp_path):
    recs = _records()
    offsets = _offsets(recs)
    bad = bytearray(recs[3])
    # attribute length field of the only RIB entry claims more than the record holds
    body = 12 + 4 + 1 + 3 + 2 + 2 + 4
    struct.pack_into(">H", bad, body, 0xFFF0)
    recs[3] = bytes(bad)
    path = tmp_path / "bad.mrt"
    path.write_bytes(b"".join(recs))
    res = read_mrt(path)
    assert res.fatal is None
    assert res.error_count == 1 and res.errors[0].offset == offsets[3]
    assert "corrupt MRT record (type 13/2)" in res.errors[0].message
    assert len(res.routes) == len(ROUTES) - 1


def test_compressed_and_truncated_gzip(tmp_path):
    data = b"".join(_records())
    (tmp_path / "a.mrt.bz2").write_bytes(bz2.compress(data))
    assert len(read_mrt(tmp_path / "a.mrt.bz2").routes) == len(ROUTES)
    gz = gzip.compress(data)
    (tmp_path / "b.mrt.gz").write_bytes(gz[: len(gz) // 2])
    res = read_mrt(tmp_path / "b.mrt.gz")
    assert res.fatal is not None  # the cut shows up as a truncated record
    assert 0 <= len(res.routes) < len(ROUTES)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 2000), st.integers(0, 255))
def test_fuzz_never_raises(noise, where, value):
    data = bytearray(b"".join(_records()))
    if where < len(data):
        data[where] = value
    data += noise
    res = MrtReader().read(bytes(data))
    # every byte is accounted for: read to the end or stopped at a reported fault
    assert res.bytes_read == len(data) or res.fatal is not None
    assert res.records + res.error_count >= 1 or res.fatal is not None
    Rib.from_mrt(res)  # whatever was kept builds a RIB
