"""What a raw JPEG 2000 codestream (Part 1 or HTJ2K) says about its image, read before any decoder sees it."""

from __future__ import annotations

import struct

START_OF_CODESTREAM = b"\xff\x4f"
END_OF_CODESTREAM = b"\xff\xd9"
IMAGE_AND_TILE_SIZE = b"\xff\x51"
_SIZ_FIELDS = struct.Struct(">2s2sHHIIII")  # SOC, SIZ, Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz


def check_codestream(data: bytes, shape: tuple[int, int], codec: str) -> None:
    """Refuse a codestream that is cut short or whose SIZ marker claims another image size than the tile's.

    The decoder would allocate what the header claims before finding out: a
    65 kB stream claiming 30000 x 30000 pixels cost 1.8 GB and 73 s. And a
    stream cut short decodes, in OpenJPH, to a degraded image with only a note
    on stderr; every complete codestream ends with the EOC marker.
    """
    if not data.startswith(START_OF_CODESTREAM):
        raise ValueError(f"{codec}: not a raw JPEG 2000 codestream (no SOC marker at the start)")
    if len(data) < _SIZ_FIELDS.size:
        raise ValueError(f"{codec}: the codestream is too short to hold its SIZ marker")
    _, siz, _, _, width, height, x_offset, y_offset = _SIZ_FIELDS.unpack_from(data)
    if siz != IMAGE_AND_TILE_SIZE:
        raise ValueError(f"{codec}: the codestream does not start with its SIZ marker")
    if not data.endswith(END_OF_CODESTREAM):
        raise ValueError(f"{codec}: the codestream is cut short (no EOC marker at its end)")
    claimed = (height - y_offset, width - x_offset)
    if claimed != tuple(shape):
        raise ValueError(f"{codec}: the codestream claims a {claimed[0]}x{claimed[1]} image, the tile is "
                         f"{shape[0]}x{shape[1]}")
