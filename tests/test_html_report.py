"""report.html: one self-contained, escaped, reproducible page per run folder."""

from __future__ import annotations

import base64
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.cli import main
from harness.reporting.html import write_html_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
CONFIG_COMMENT = "# compare <quantize> & quantize_zlib"
ERROR_MESSAGE = 'decoder said <bad tile> & "gave up"'
CHROMIUM_TIMEOUT_S = 60
SCREEN = (1400, 900)
"""A laptop's first screen (width, height in CSS px) that the browser tests render the page in."""
RESULT_SECTIONS = ("bd-rate", "rd-curves", "summary")
APPENDIX_SECTIONS = ("configuration", "environment")
MARKER_RGB = (255, 0, 255)
PROBE_SCRIPT = """<script>window.addEventListener("load", () => {
  document.body.dataset.scrollWidth = document.documentElement.scrollWidth;
  document.querySelectorAll("img").forEach(image => image.dataset.naturalWidth = image.naturalWidth);
  document.querySelectorAll("table").forEach(table => table.dataset.top = table.getBoundingClientRect().top);
});</script>"""
"""Writes into the DOM what only layout knows, for ``--dump-dom`` to show: the page's width, each image's decoded
width (0 when it did not load) and each table's distance from the top of the first screen."""


class Page(HTMLParser):
    """The parts of a page the tests look at: title, sections in order, <img> and <table> (with the section each
    lies in), every cell's text per section, every URL attribute, and the <body>'s attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.title = ""
        self.body: dict[str, str | None] = {}
        self.sections: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.table_attributes: list[dict[str, str | None]] = []
        self.cells: dict[str, list[str]] = {}
        self.urls: list[str] = []
        self._in_title = self._in_cell = False
        self.feed(text)
        self.close()

    @property
    def tables(self) -> int:
        return len(self.table_attributes)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_title, self._in_cell = tag == "title", tag in ("td", "th")
        attributes = dict(attrs)
        if tag == "body":
            self.body = attributes
        if tag == "section":
            self.sections.append(attributes.get("id") or "")
        section = self.sections[-1] if self.sections else ""
        if tag == "table":
            self.table_attributes.append({**attributes, "section": section})
        if tag == "img":
            self.images.append({**attributes, "section": section})
        if self._in_cell:
            self.cells.setdefault(section, []).append("")
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "action", "data")]

    def handle_endtag(self, tag: str) -> None:
        self._in_title = self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._in_cell:
            self.cells[self.sections[-1] if self.sections else ""][-1] += data


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
    first = pd.read_csv(run_dir / "summary.csv").iloc[0]
    assert f"<td>{first['bpp_mean']:.3f} ± {first['bpp_std']:.3f}</td>" in page_text
    assert repr(first["bpp_mean"]) not in page_text


def test_the_summary_has_the_readable_headers_of_summary_md(run_dir, page_text):
    summary_cells = Page(page_text).cells["summary"]
    headers = ("bpp", "PSNR (dB)", "RMSE (dB)", "encode MPix/s")
    assert set(headers) <= set(summary_cells)
    assert not any(cell.endswith(("_mean", "_std", "_median")) for cell in summary_cells)
    summary_md = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert all(f" {header} |" in summary_md for header in headers)


def test_the_page_leads_with_the_results_and_ends_with_the_appendix(page_text):
    sections = Page(page_text).sections
    assert sections[:2] == list(RESULT_SECTIONS[:2]) and sections[-2:] == list(APPENDIX_SECTIONS)
    assert sections.index("summary") < sections.index(APPENDIX_SECTIONS[0])
    assert Page(page_text).table_attributes[0]["section"] == "bd-rate"


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


def chromium(page: Path, profile: Path, *arguments: str) -> str:
    """Headless Chromium on ``page`` in a first screen of ``SCREEN``; its standard output."""
    command = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
               f"--user-data-dir={profile}", f"--window-size={SCREEN[0]},{SCREEN[1]}", *arguments, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=True).stdout


def page_copy_with(run_dir: Path, tmp_path: Path, head: str = "", body_end: str = "", script: bool = False) -> Path:
    """The run's page with test-only markup added; ``script`` lets inline scripts run under its own
    Content-Security-Policy, which still forbids every image but its embedded ones."""
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    if script:
        text = text.replace("style-src 'unsafe-inline'\"", "style-src 'unsafe-inline'; script-src 'unsafe-inline'\"")
    path = tmp_path / "page.html"
    path.write_text(text.replace("</head>", head + "</head>").replace("</body>", body_end + "</body>"),
                    encoding="utf-8")
    return path


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="chromium is not installed (scripts/setup.sh installs it)")


@needs_chromium
def test_chromium_renders_the_results_a_reader_needs(run_dir, tmp_path):
    rendered = Page(chromium(page_copy_with(run_dir, tmp_path, body_end=PROBE_SCRIPT, script=True),
                             tmp_path / "profile", "--dump-dom"))
    assert "tiny" in rendered.title
    first_table = rendered.table_attributes[0]  # the first table after the title: BD-rate, on the first screen
    assert first_table["section"] == "bd-rate" and 0 < float(first_table["data-top"]) < SCREEN[1]
    assert "quantize_zlib" in rendered.cells["bd-rate"] and "PSNR (dB)" in rendered.cells["bd-rate"]
    rd_figures = [image for image in rendered.images if image["section"] == "rd-curves"]
    assert len(rd_figures) == len(list(run_dir.glob("rd_*.png"))) > 0
    assert len(rendered.images) == len(Page((run_dir / "report.html").read_text(encoding="utf-8")).images)
    assert all(int(image["data-natural-width"]) > 0 for image in rendered.images)  # every figure decoded
    assert any("±" in cell for cell in rendered.cells["summary"])
    assert int(rendered.body["data-scroll-width"]) <= SCREEN[0]  # wide tables scroll in their own box


@needs_chromium
def test_the_first_screen_shows_the_bd_rate_table(run_dir, tmp_path):
    """A screenshot of the first screen, with the BD-rate table painted in a colour nothing else on the page has."""
    marker = f"<style>#bd-rate table {{ background: rgb{MARKER_RGB}; }}</style>"
    screenshot = tmp_path / "first_screen.png"
    chromium(page_copy_with(run_dir, tmp_path, head=marker), tmp_path / "profile", f"--screenshot={screenshot}")
    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    assert pixels.shape[:2] == (SCREEN[1], SCREEN[0])
    rows = np.flatnonzero((pixels == MARKER_RGB).all(axis=2).sum(axis=1) > SCREEN[0] // 4)
    assert rows.size > 50, "the BD-rate table is not on the first screen"
