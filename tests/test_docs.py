"""The user guide's links resolve: every relative link and #anchor in README.md, docs/ and the
packages' READMEs names a file that exists and, where it has one, a heading of that file.

Anchors follow GitHub's rules: the heading's text lowercased, markup and punctuation other
than '-' and '_' dropped, spaces turned into '-', a repeated heading numbered '-1', '-2', ..."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

REPO = REPO_ROOT
PAGES = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *REPO.glob("gradinv/*/README.md")]
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target), images included
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """The #anchors GitHub gives the headings of a Markdown page."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", FENCE.sub("", page.read_text()), re.MULTILINE):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The relative link targets of a page, outside code blocks and code spans."""
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_github_anchor_rules(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# W&B\n## The optimization attacks' fields\n### R-GAP (`attack=rgap`)\n## W&B\n"
        "```\n# not a heading\n```\n## multirun_analysis\n"
    )
    assert anchors(page) == {
        "wb",
        "the-optimization-attacks-fields",
        "r-gap-attackrgap",
        "wb-1",
        "multirun_analysis",
    }


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no file {path})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.relative_to(REPO)})")
    assert not broken, f"{page.relative_to(REPO)}: broken links: {', '.join(broken)}"
