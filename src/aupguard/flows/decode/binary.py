"""Vectorised big-endian reads at arbitrary byte offsets of one uint8 buffer.

Used to read many datagram headers at once: ``u16(buf, offsets)`` reads the
16-bit field at every offset without a Python loop.
"""

from __future__ import annotations

import numpy as np


def u8(buf: np.ndarray, off: np.ndarray) -> np.ndarray:
    return buf[off].astype(np.uint64)


def u16(buf: np.ndarray, off: np.ndarray) -> np.ndarray:
    return (buf[off].astype(np.uint64) << np.uint64(8)) | buf[off + 1]


def u32(buf: np.ndarray, off: np.ndarray) -> np.ndarray:
    b = buf[off[:, None] + np.arange(4)].astype(np.uint64)
    return (
        (b[:, 0] << np.uint64(24))
        | (b[:, 1] << np.uint64(16))
        | (b[:, 2] << np.uint64(8))
        | b[:, 3]
    )


def signed32(delta: np.ndarray) -> np.ndarray:
    """uint32 wrap-around difference (as int64 in [0, 2^32)) to a signed int64."""
    delta = delta.astype(np.int64) & 0xFFFFFFFF
    return np.where(delta >= 1 << 31, delta - (1 << 32), delta)
