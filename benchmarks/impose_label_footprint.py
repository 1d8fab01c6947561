"""Write a copy of a Sen1Floods11 chip that is no-data (NaN) wherever its hand label has no data (-1).

Why: measuring what each codec does beside no-data (``border_bias_db``, docs/config.md) needs real tiles with
no-data in the default test set, and none of the real data at hand has no-data of its own (the Sen1Floods11 chips, the
patches and the SAFE crop have no NaN and no zero). The hand label of the Mekong chip marks 23 % of it as not
labelled, in the irregular patches where the analysts could not see the ground; that footprint, imposed on the
chip's own real pixels, gives tiles with a real outline of no-data beside real speckle. The shipped test chip
``data/test/sen1floods11/Mekong_333434_S1Hand.tif`` was written by this script from the published chip
(``../shared/data/sen1floods11/``); ``data/README.md`` says so. Every band, the grid, the tags and the creation
options stay as they were; only the pixels under the footprint change, to NaN (the file's no-data value).

    .venv/bin/python benchmarks/impose_label_footprint.py CHIP LABEL OUTPUT
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from harness_datasets._labels import NOT_LABELLED


def impose_label_footprint(chip: Path, label: Path, output: Path) -> float:
    """Write ``chip`` to ``output`` with NaN wherever ``label`` is -1 (Sen1Floods11's hand labels: -1 not
    labelled, 0 not water, 1 water); return the share of pixels made no-data."""
    with rasterio.open(chip) as source, rasterio.open(label) as labels:
        if (labels.height, labels.width) != (source.height, source.width):
            raise SystemExit(f"{label}: {labels.height}x{labels.width}, not the chip's "
                             f"{source.height}x{source.width}; give the chip's own label")
        footprint = labels.read(1) == NOT_LABELLED
        profile, tags, pixels = source.profile, source.tags(), source.read()
    if not np.issubdtype(pixels.dtype, np.floating):
        raise SystemExit(f"{chip}: {pixels.dtype} pixels cannot hold NaN; give a float chip such as Sen1Floods11's")
    pixels[:, footprint] = np.nan
    with rasterio.open(output, "w", **{**profile, "nodata": np.nan}) as target:
        target.update_tags(**tags)
        target.write(pixels)
    return float(footprint.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chip", type=Path, help="a Sen1Floods11 chip, e.g. Mekong_333434_S1Hand.tif")
    parser.add_argument("label", type=Path, help="its hand label, e.g. Mekong_333434_LabelHand.tif")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    share = impose_label_footprint(args.chip, args.label, args.output)
    print(f"{args.output}: {share:.1%} of the pixels are no-data (NaN)")


if __name__ == "__main__":
    main()
