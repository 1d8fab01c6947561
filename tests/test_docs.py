"""The documentation is plain Markdown: a short README.md and one page per topic in docs/, every link resolving."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1)[^\n]|\n(?!\n))+?\1")  # a code span may wrap, not cross a paragraph
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose_lines(path: Path) -> list[str]:
    """The lines of a page outside fenced code blocks (a link or heading in a code block is code, not Markdown)."""
    lines, fence = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text in lower case, punctuation but - and _ dropped, spaces as -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading renders as its text
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a page; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> list[str]:
    """The targets of the page's inline links and images, outside code (a link's text may wrap onto the next line)."""
    return [match.group(1) for match in LINK.finditer(INLINE_CODE.sub("", "\n".join(prose_lines(path))))]


def relative_links(path: Path) -> list[tuple[str, Path, str]]:
    """(link as written, the file it points to, its #anchor or '') for every link that is not to another site."""
    result = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        result.append((target, resolved, unquote(anchor)))
    return result


def test_there_are_docs_pages_and_an_index():
    assert INDEX.is_file() and len(PAGES) > 3


def test_the_readme_is_at_most_250_lines():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the detail to a page in docs/"


def test_the_readme_keeps_the_two_commands_that_ci_runs():
    readme = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert "## Two commands" in readme and f"\n{ci}\n" in readme


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(page):
    missing = [target for target, resolved, _ in relative_links(page) if not resolved.exists()]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_anchor_matches_a_heading_of_its_page(page):
    broken = [target for target, resolved, anchor in relative_links(page)
              if anchor and resolved.suffix == ".md" and resolved.is_file() and anchor not in anchors(resolved)]
    assert broken == []


def test_every_docs_page_is_linked_from_the_readme_or_the_index():
    linked = {resolved for page in (README, INDEX) for _, resolved, _ in relative_links(page)}
    assert [page.name for page in PAGES[1:] if page != INDEX and page.resolve() not in linked] == []


def test_the_index_is_linked_from_the_readme():
    assert INDEX.resolve() in {resolved for _, resolved, _ in relative_links(README)}


def test_the_slugs_follow_githubs_rules():
    assert github_slug("The seed-sized model: `gdn-dct-light`") == "the-seed-sized-model-gdn-dct-light"
    assert github_slug("Writing a codec plugin: `harness_codecs`") == "writing-a-codec-plugin-harness_codecs"
    assert github_slug("What the default run produces") == "what-the-default-run-produces"


def test_every_results_column_is_described_on_the_metrics_page():
    from harness.plugins import build_registry
    from harness.results import RESULTS_SPEC

    page = (DOCS / "metrics.md").read_text()
    columns = [column.name for column in RESULTS_SPEC] + [column.name for column in build_registry().metric_columns()]
    assert [name for name in columns if f"`{name}`" not in page] == []
