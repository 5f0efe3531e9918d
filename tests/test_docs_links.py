"""The README and the pages under ``docs/``: every relative link resolves, the index lists every page.

Links are Markdown inline links ``[text](target)`` outside code; a target is a file or directory relative to
the page, optionally with ``#anchor``, which must be a heading of the target page as GitHub names its anchors
(lower case, punctuation dropped, spaces as hyphens, ``-1``, ``-2`` ... for repeated headings).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: ``"Export: ONNX and `onnx_int8`"`` -> ``"export-onnx-and-onnx_int8"``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(page: Path) -> list[str]:
    """``"<page>: <target>"`` for each relative link of ``page`` whose file or anchor does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ... are not checked
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and (dest.is_dir() or dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def test_the_pages_exist():
    assert (ROOT / "docs" / "README.md") in PAGES and len(PAGES) > 3


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_docs_index_links_every_page():
    index = (ROOT / "docs" / "README.md").read_text()
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(prose(index))}
    assert {p.name for p in PAGES if p.parent.name == "docs" and p.name != "README.md"} <= linked


def test_the_readme_stays_short():
    """Issue 22: a README a newcomer can read (<= 250 lines); the reference is under docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_checker_finds_broken_files_and_anchors(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Sweeps: pruning at `several` targets\n\n## Title\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md) [ok](a.md#sweeps-pruning-at-several-targets) [ok](a.md#title-1) [ok](#here)\n"
                    "# Here\n[gone](c.md) [bad anchor](a.md#sweeps) [web](https://example.com/x.md)\n"
                    "`[code](c.md)`\n```\n[fenced](c.md)\n# not a heading\n```\n[wrapped\ntext](a.md#not-a-heading)\n")
    assert broken_links(page) == ["b.md: c.md (no such file)", "b.md: a.md#sweeps (no such heading)",
                                  "b.md: a.md#not-a-heading (no such heading)"]
