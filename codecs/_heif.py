"""Reading the HEIF container that AVIF and HEVC-in-HEIF streams share (ISO base media file format boxes).

The decoders behind both codecs allocate the image a file claims before they check it against anything, so the
codecs read the claimed size and the codec configuration from the boxes first, from the bytes alone. Every
reader here raises ``ValueError`` naming the codec on a box that runs past its container or is missing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator


def boxes(data: bytes, start: int, end: int, codec: str) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1 and start + 16 <= end:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            raise ValueError(f"{codec}: the {kind.decode('latin-1')!r} box at byte {start} runs past its container")
        yield kind, start + header, start + size
        start += size


def child(data: bytes, start: int, end: int, kind: bytes, codec: str) -> tuple[int, int]:
    """(payload start, payload end) of the first ``kind`` box in ``data[start:end]``."""
    for found, payload, stop in boxes(data, start, end, codec):
        if found == kind:
            return payload, stop
    raise ValueError(f"{codec}: no {kind.decode()} box in the HEIF file")


def item_properties(data: bytes, codec: str) -> tuple[int, int]:
    """Where the item property boxes lie: meta/iprp/ipco (meta is a full box: 4 bytes of version and flags)."""
    meta, meta_end = child(data, 0, len(data), b"meta", codec)
    iprp, iprp_end = child(data, meta + 4, meta_end, b"iprp", codec)
    return child(data, iprp, iprp_end, b"ipco", codec)


def image_size(data: bytes, properties: tuple[int, int], codec: str) -> tuple[int, int]:
    """(height, width) from the image spatial extents property (ispe) among ``properties``."""
    ispe, ispe_end = child(data, *properties, b"ispe", codec)
    if ispe_end - ispe < 12:
        raise ValueError(f"{codec}: the ispe box is truncated")
    width, height = struct.unpack_from(">II", data, ispe + 4)  # a full box: 4 bytes of version and flags first
    return height, width
