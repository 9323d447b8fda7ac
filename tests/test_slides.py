"""The lecture slides (scripts/build_slides.py) and the module plan that links to them.

The decks are built once, into a temporary folder: one per lecture notebook, one per lecture
of book/teaching/module.md, and none of them loads a script or a style sheet from another
host (the script's own check is tested to catch that). The links of the teaching pages
resolve in the built site, where the decks go to _build/html/slides/.
"""

from __future__ import annotations

import importlib.util
import json
import posixpath
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SLIDES = ROOT / "book" / "teaching" / "slides"
MODULE = ROOT / "book" / "teaching" / "module.md"
SLIDES_PAGE = ROOT / "book" / "teaching" / "slides.md"
DECK_LINK = re.compile(
    r"""href="([^"]*lecture-(\d\d)\.slides\.html)"|\]\(([^)]*lecture-(\d\d)\.slides\.html)\)"""
)

_spec = importlib.util.spec_from_file_location("build_slides", ROOT / "scripts" / "build_slides.py")
build_slides = importlib.util.module_from_spec(_spec)
sys.modules["build_slides"] = build_slides
_spec.loader.exec_module(build_slides)


def lecture_numbers() -> list[str]:
    """The lectures of the module plan, from its headings "### Lecture N: ..."."""
    found = re.findall(r"^#+ Lecture (\d+):", MODULE.read_text(encoding="utf-8"), re.MULTILINE)
    return [f"{int(n):02d}" for n in found]


def deck_links(page: Path) -> dict[str, str]:
    """Lecture number -> the URL a page links its deck with."""
    links = {}
    for match in DECK_LINK.finditer(page.read_text(encoding="utf-8")):
        url, number = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
        links.setdefault(number, url)
    return links


class _Loaded(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
        if tag == "link" and "stylesheet" in (found.get("rel") or "").split():
            self.urls.append(found.get("href") or "")


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slides")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_slides.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return out


def test_the_module_has_about_six_lectures_each_with_a_notebook():
    numbers = lecture_numbers()
    assert 5 <= len(numbers) <= 8, numbers
    assert numbers == [f"{i:02d}" for i in range(1, len(numbers) + 1)], numbers
    notebooks = sorted(p.name for p in SLIDES.glob("lecture-*.ipynb"))
    assert notebooks == [f"lecture-{n}.ipynb" for n in numbers]


def test_one_deck_per_lecture_and_nothing_from_another_host(decks: Path):
    built = sorted(p.name for p in decks.glob("*.slides.html"))
    assert built == [f"lecture-{n}.slides.html" for n in lecture_numbers()]
    for deck in decks.glob("*.slides.html"):
        parser = _Loaded()
        parser.feed(deck.read_text(encoding="utf-8"))
        assert any("reveal.js" in url for url in parser.urls), deck.name
        assert any("mathjax" in url for url in parser.urls), deck.name
        for url in parser.urls:
            assert not build_slides.is_remote(url), f"{deck.name} loads {url}"
            assert (decks / url).is_file(), f"{deck.name}: {url} missing"
        assert build_slides.problems_of(deck) == []
    assert build_slides.css_problems(decks) == []
    assert (decks / "revealjs" / "LICENSE").is_file()


def test_decks_carry_the_slides_maths_and_figures(decks: Path):
    html = {p.name: p.read_text(encoding="utf-8") for p in decks.glob("*.slides.html")}
    for name, text in html.items():
        assert text.count("<section") >= 5, f"{name}: too few slides"
        assert re.search(r"\$[^$\n]+\$", text), f"{name}: no maths left for MathJax"
    with_figures = [n for n, t in html.items() if "<img alt=" in t or "<img src=" in t]
    assert with_figures, "no deck has a figure drawn from the shipped results"
    for name in with_figures:
        assert re.search(r'<img alt="[^"]{20,}" src="data:image/png', html[name]), name


def test_the_check_catches_remote_and_missing_resources(tmp_path: Path):
    deck = tmp_path / "lecture-99.slides.html"
    deck.write_text(
        '<html><head><script src="https://unpkg.com/reveal.js@4.0.2/dist/reveal.js"></script>'
        '<link rel="stylesheet" href="//cdn.example.org/theme.css">'
        '<script src="local.js"></script>'
        "<script type=\"module\">import m from 'https://cdn.example.org/m.mjs';</script>"
        "</head></html>"
    )
    problems = build_slides.problems_of(deck)
    assert len(problems) == 4, problems
    (tmp_path / "revealjs").mkdir()
    (tmp_path / "revealjs" / "t.css").write_text("@import url(https://fonts.example.org/x.css);")
    assert build_slides.css_problems(tmp_path)


def test_every_lecture_notebook_is_a_slideshow():
    for nb_path in sorted(SLIDES.glob("lecture-*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        types = [c.get("metadata", {}).get("slideshow", {}).get("slide_type") for c in nb["cells"]]
        assert all(types), f"{nb_path.name}: every cell needs slideshow.slide_type"
        assert types.count("slide") >= 5, nb_path.name
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), (
            f"{nb_path.name}: commit without outputs (the build executes it)"
        )


@pytest.mark.parametrize("page", [MODULE, SLIDES_PAGE], ids=lambda p: p.name)
def test_teaching_pages_link_every_deck_where_the_site_serves_it(page: Path):
    links = deck_links(page)
    assert sorted(links) == lecture_numbers(), links
    # the page is built to _build/html/book/teaching/<page>.html, the decks to
    # _build/html/slides/ (the script's default --out)
    built_page_dir = "html/book/teaching"
    default_out = build_slides.DEFAULT_OUT.relative_to(ROOT / "_build").as_posix()
    for number, url in links.items():
        target = posixpath.normpath(posixpath.join(built_page_dir, url))
        assert target == f"{default_out}/lecture-{number}.slides.html", (number, url)


def test_the_slide_notebooks_are_not_pages_of_the_book():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert "book/teaching/slides/**" in config["exclude_patterns"]
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert "teaching/slides/" not in toc
