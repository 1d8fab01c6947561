"""What the benchmarks that code a config's tiles with an encoder tool and without it share (``scale_shift_gain.py``,
``post_filter_gain.py``): their options, and the shipped model's codec beside a copy whose coder lacks the tool."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path

from harness_codecs._autoencoder.runtime.entropy_coder import EntropyLatentCoder
from harness_codecs.autoencoder_entropy import CheckerboardAutoencoder

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "autoencoder-gdn-dct-light-checkerboard.pt"


def parsed_arguments(description: str) -> argparse.Namespace:
    """``checkpoint`` (default: the shipped model), ``--config``, ``--qualities`` (default: 0 to 8), ``--repeats``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED)
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks.yaml")
    parser.add_argument("--qualities", default="0,1,2,3,4,5,6,7,8")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


def without_and_with(checkpoint: Path, quality: float,
                     without_tool: Callable[[EntropyLatentCoder], EntropyLatentCoder]) -> dict:
    """The codec at ``quality`` (``with``) and a copy whose coder is ``without_tool`` of its own (``without``)."""
    codec = CheckerboardAutoencoder(checkpoint=str(checkpoint), quality=quality)
    lacking = copy.copy(codec)
    lacking.coder = without_tool(codec.coder)
    return {"without": lacking, "with": codec}
