"""Vectorised address helpers shared by every stage.

One representation everywhere: 16-byte IPv4-mapped IPv6 (``::ffff:a.b.c.d``
for IPv4), held as Arrow ``fixed_size_binary(16)``, numpy ``(n, 16) uint8`` or
two ``uint64`` halves (hi, lo) for arithmetic and ``searchsorted``. The Python
``ipaddress`` module is used only for scalars (CLI input, display).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

V4_MAPPED_HI = np.uint64(0)
V4_MAPPED_LO_PREFIX = np.uint64(0x0000FFFF00000000)
ADDR_TYPE = pa.binary(16)


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A single address from user input; IPv4-mapped IPv6 is returned as IPv4."""
    addr = ipaddress.ip_address(text.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def address_int(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """The 128-bit integer of an address in the mapped space."""
    if isinstance(addr, ipaddress.IPv4Address):
        return 0xFFFF00000000 | int(addr)
    return int(addr)


def network_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int, int]:
    """(first, last, mapped prefix length) of a network in the 128-bit mapped space."""
    first = address_int(net.network_address)
    last = address_int(net.broadcast_address)
    plen = net.prefixlen + (96 if isinstance(net, ipaddress.IPv4Network) else 0)
    return first, last, plen


def prefix_range(text: str) -> tuple[int, int, int]:
    """(first, last, mapped prefix length) of a prefix given as text.

    ``socket.inet_pton`` instead of ``ipaddress.ip_network``: the registry builds
    its index from hundreds of thousands of prefixes and ipaddress is ~10x slower.
    Host bits are ignored here (the registry rejects them at input).
    """
    addr, _, length = text.strip().partition("/")
    if ":" in addr:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big")
        plen = int(length) if length else 128
        if not 0 <= plen <= 128:
            raise ValueError(f"bad prefix length in {text!r}")
        mapped = plen
    else:
        value = 0xFFFF00000000 | int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
        plen = int(length) if length else 32
        if not 0 <= plen <= 32:
            raise ValueError(f"bad prefix length in {text!r}")
        mapped = plen + 96
    host = (1 << (128 - mapped)) - 1
    first = value & ~host
    return first, first | host, mapped


def int_to_hilo(values: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    vals = list(values)
    hi = np.fromiter(((v >> 64) & 0xFFFFFFFFFFFFFFFF for v in vals), dtype=np.uint64, count=len(vals))
    lo = np.fromiter((v & 0xFFFFFFFFFFFFFFFF for v in vals), dtype=np.uint64, count=len(vals))
    return hi, lo


def strings_to_hilo(addresses: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse address strings (scalar path: for user input and tests, not flows)."""
    return int_to_hilo(address_int(parse_address(a)) for a in addresses)


def ipv4_to_hilo(v4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint32 IPv4 addresses to mapped (hi, lo) halves."""
    lo = v4.astype(np.uint64) | V4_MAPPED_LO_PREFIX
    return np.zeros(len(v4), dtype=np.uint64), lo


def bytes16_to_hilo(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 16) uint8 big-endian addresses to (hi, lo) uint64 halves."""
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, 16)
    halves = data.view(">u8").reshape(-1, 2)
    return halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64)


def hilo_to_bytes16(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    out = np.empty((len(hi), 2), dtype=">u8")
    out[:, 0] = hi
    out[:, 1] = lo
    return out.view(np.uint8).reshape(-1, 16)


def arrow_to_hilo(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Arrow fixed_size_binary(16) column to (hi, lo) without a Python loop."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if array.null_count:
        array = array.fill_null(b"\x00" * 16)
    buf = array.buffers()[1]
    raw = np.frombuffer(buf, dtype=np.uint8, count=(array.offset + len(array)) * 16)
    return bytes16_to_hilo(raw[array.offset * 16:])


def hilo_to_arrow(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    data = hilo_to_bytes16(hi, lo)
    return pa.FixedSizeBinaryArray.from_buffers(ADDR_TYPE, len(hi), [None, pa.py_buffer(data.tobytes())])


def is_ipv4(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))


def format_address(value: bytes | int) -> str:
    """One 16-byte (or 128-bit int) mapped address as text: IPv4 dotted when mapped."""
    number = int.from_bytes(value, "big") if isinstance(value, (bytes, bytearray)) else int(value)
    addr = ipaddress.IPv6Address(number)
    return str(addr.ipv4_mapped) if addr.ipv4_mapped is not None else str(addr)


def format_hilo(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Display strings for arrays (for output of bounded size, not hot paths)."""
    return [format_address((int(h) << 64) | int(l)) for h, l in zip(hi, lo)]
