"""report.html: one self-contained, escaped, reproducible page per run folder."""

from __future__ import annotations

import base64
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.reporting.html import write_html_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
CONFIG_COMMENT = "# compare <quantize> & quantize_zlib"
ERROR_MESSAGE = 'decoder said <bad tile> & "gave up"'
CHROMIUM_TIMEOUT_S = 60


class Page(HTMLParser):
    """The parts of a page the tests look at: title, tags seen, <img> and <table> counts, every URL attribute."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.title = ""
        self.images: list[dict[str, str | None]] = []
        self.tables = 0
        self.urls: list[str] = []
        self._in_title = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_title = tag == "title"
        self.tables += tag == "table"
        if tag == "img":
            self.images.append(dict(attrs))
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "action", "data")]

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def tiny_config(tmp_path: Path) -> Path:
    """Two fast codecs on two tiles of one small synthetic scene, enough for a BD-rate and a visual comparison."""
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent(f"""\
        {CONFIG_COMMENT}
        name: tiny
        seed: 0
        device: cpu
        anchor: quantize
        dataset:
          kind: synthetic
          cache_dir: {tmp_path / 'cache'}
          scenes: 1
          scene_size: 512
          tile_size: 128
          max_tiles: 2
          polarisations: [VV, VH]
        normalization:
          VV: [-25, 5]
          VH: [-32, -2]
        codecs:
          - name: quantize
            points: [{{bits: 2}}, {{bits: 4}}, {{bits: 6}}, {{bits: 8}}]
          - name: quantize_zlib
            points: [{{bits: 2}}, {{bits: 4}}, {{bits: 6}}, {{bits: 8}}]
        timing: {{warmup: 0, repeats: 1, isolate: false}}
        """))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished run of the tiny config; tests that change files work on a copy."""
    tmp_path = tmp_path_factory.mktemp("html")
    folder = tmp_path / "run"
    assert main(["run", str(tiny_config(tmp_path)), "--output", str(folder), "--no-progress"]) == 0
    return folder


@pytest.fixture(scope="module")
def page_text(run_dir) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


def test_a_run_writes_a_page_that_parses_with_the_run_name_in_its_title(page_text):
    assert "tiny" in Page(page_text).title


def test_every_figure_is_embedded_as_a_png_data_uri_with_alt_text(run_dir, page_text):
    images = Page(page_text).images
    figures = [*run_dir.glob("rd_*.png"), run_dir / "timing.png", *run_dir.glob("visual_*.png")]
    assert len(images) == len(figures) and any(path.name.startswith("visual_") for path in figures)
    for image in images:
        assert image["src"].startswith(DATA_PNG)
        assert base64.b64decode(image["src"].removeprefix(DATA_PNG), validate=True).startswith(PNG_MAGIC)
        assert image["alt"]


def test_the_page_loads_nothing_from_the_network(page_text):
    assert all(url.startswith(DATA_PNG) for url in Page(page_text).urls)
    assert "http://" not in page_text and "https://" not in page_text
    assert "<script" not in page_text.lower() and "url(" not in page_text


def test_the_summary_and_bd_rate_tables_are_shown_with_rounded_numbers(run_dir, page_text):
    assert Page(page_text).tables == 4  # environment, clipping, summary, BD-rate
    first_bpp = pd.read_csv(run_dir / "summary.csv")["bpp_mean"].iloc[0]
    assert f"<td>{first_bpp:.3f}</td>" in page_text and repr(first_bpp) not in page_text


def test_the_config_is_shown_escaped(page_text):
    assert "# compare &lt;quantize&gt; &amp; quantize_zlib" in page_text
    assert CONFIG_COMMENT not in page_text


def test_a_run_without_errors_says_so(page_text):
    assert "No errors" in page_text


def test_error_rows_are_listed_with_their_message_escaped(run_copy):
    results = pd.read_csv(run_copy / "results.csv", keep_default_na=False, dtype=str)
    results.loc[0, "error"] = ERROR_MESSAGE
    results.to_csv(run_copy / "results.csv", index=False)
    page = write_html_report(run_copy).read_text(encoding="utf-8")
    assert "decoder said &lt;bad tile&gt; &amp; &quot;gave up&quot;" in page
    assert "<bad tile>" not in page and "No errors" not in page
    assert results.loc[0, "tile_id"] in page


def test_rebuilding_the_page_gives_identical_bytes(run_dir, run_copy):
    assert write_html_report(run_copy).read_bytes() == (run_dir / "report.html").read_bytes()


def test_harness_report_rebuilds_the_page(run_copy):
    (run_copy / "report.html").unlink()
    assert main(["report", str(run_copy)]) == 0
    assert Page((run_copy / "report.html").read_text(encoding="utf-8")).images


def test_a_folder_missing_optional_files_still_gives_a_page(run_copy):
    for path in [run_copy / "bd_rate.csv", *run_copy.glob("visual_*.png")]:
        path.unlink()
    page = Page(write_html_report(run_copy).read_text(encoding="utf-8"))
    assert "tiny" in page.title and page.tables == 3
    assert not any("visual" in (image["alt"] or "").lower() for image in page.images)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_chromium_renders_the_title_tables_and_images(run_dir, tmp_path):
    command = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (run_dir / "report.html").as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=True).stdout
    rendered = Page(dom)
    assert "tiny" in rendered.title
    assert rendered.tables == 3
    assert len(rendered.images) == len(Page((run_dir / "report.html").read_text(encoding="utf-8")).images)
    assert all(image["src"].startswith(DATA_PNG) for image in rendered.images)
