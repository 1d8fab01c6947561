"""What a raw JPEG 2000 codestream (Part 1 or HTJ2K) says about its image, read before any decoder sees it."""

from __future__ import annotations

import struct

START_OF_CODESTREAM = b"\xff\x4f"
END_OF_CODESTREAM = b"\xff\xd9"
IMAGE_AND_TILE_SIZE = b"\xff\x51"
_SIZ_FIELDS = struct.Struct(">2s2sHHIIIIIIIIH")
"""SOC, SIZ, Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz, Csiz; then 3 bytes per component."""
_COMPONENT = struct.Struct(">BBB")  # Ssiz, XRsiz, YRsiz


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
    (_, siz, length, _, width, height, x_offset, y_offset, tile_width, tile_height, tile_x_offset, tile_y_offset,
     components) = _SIZ_FIELDS.unpack_from(data)
    if siz != IMAGE_AND_TILE_SIZE:
        raise ValueError(f"{codec}: the codestream does not start with its SIZ marker")
    _check_tiling(data, length, (x_offset, y_offset), (tile_width, tile_height), (tile_x_offset, tile_y_offset),
                  components, codec)
    if not data.endswith(END_OF_CODESTREAM):
        raise ValueError(f"{codec}: the codestream is cut short (no EOC marker at its end)")
    claimed = (height - y_offset, width - x_offset)
    if claimed != tuple(shape):
        raise ValueError(f"{codec}: the codestream claims a {claimed[0]}x{claimed[1]} image, the tile is "
                         f"{shape[0]}x{shape[1]}")


def _check_tiling(data: bytes, length: int, image_offset: tuple[int, int], tile_size: tuple[int, int],
                  tile_offset: tuple[int, int], components: int, codec: str) -> None:
    """The SIZ constraints of ISO/IEC 15444-1 A.5.1 that decoders divide by: OpenJPH dies of SIGFPE on a tile
    size of 0, found by fuzzing (``harness.testing``)."""
    if length != _SIZ_FIELDS.size - 4 + _COMPONENT.size * components or not 1 <= components <= 16384:
        raise ValueError(f"{codec}: the SIZ marker is damaged (length {length} for {components} components)")
    for axis in (0, 1):
        if not tile_offset[axis] <= image_offset[axis] < tile_offset[axis] + tile_size[axis]:
            raise ValueError(f"{codec}: the SIZ marker's tiling is impossible (tile size {tile_size}, "
                             f"offsets {tile_offset} and {image_offset})")
    if len(data) < 4 + length:
        raise ValueError(f"{codec}: the codestream is too short to hold its SIZ marker")
    for index in range(components):
        _, x_step, y_step = _COMPONENT.unpack_from(data, _SIZ_FIELDS.size + _COMPONENT.size * index)
        if x_step == 0 or y_step == 0:
            raise ValueError(f"{codec}: the SIZ marker gives component {index} a sub-sampling of 0")
