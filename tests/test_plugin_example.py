"""The codec plugin example of docs/plugins.md is complete, shown verbatim, runs, and passes the conformance checks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from examples.blockmean_codec import BlockMean
from harness.cli import main
from harness.testing import CodecConformance

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "blockmean_codec.py"


def test_the_plugin_docs_show_the_example_plugin_verbatim():
    assert EXAMPLE.read_text().strip() in (ROOT / "docs" / "plugins.md").read_text()


def test_the_example_config_runs_the_plugin_beside_jpeg2000(tmp_path):
    config = (ROOT / "examples" / "blockmean.yaml").read_text()
    config = config.replace("plugins: [blockmean_codec.py]", f"plugins: [{EXAMPLE}]")
    config = config.replace("kind: synthetic,", f"kind: synthetic, cache_dir: {tmp_path / 'cache'},")
    (tmp_path / "blockmean.yaml").write_text(config)
    assert main(["run", str(tmp_path / "blockmean.yaml"), "--output", str(tmp_path / "run"), "--no-progress"]) == 0
    results = pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False)
    blockmean = results[results["codec"] == "blockmean"]
    assert (blockmean["error"] == "").all() and len(blockmean) == 2 * 8
    header_bits = 8 / (128 * 128)
    rates = blockmean.groupby("point")["bpp"].first()
    assert rates["factor=2"] == 8 / 4 + header_bits and rates["factor=4"] == 8 / 16 + header_bits


class TestTheExampleCodecConformsAsThePluginDocsShow(CodecConformance):
    codec_class = BlockMean
    options = {"factor": 2}
