"""The checks of scripts/check_site.py, on small pages written here and on the built book.

The pages written here show that every check fails on what it is meant to catch and passes on
a page written the right way. The built book (``_build/html``) is checked when it exists;
CI builds the book after the tests and runs ``scripts/check_site.py`` on it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"

_spec = importlib.util.spec_from_file_location("check_site", ROOT / "scripts" / "check_site.py")
check_site = importlib.util.module_from_spec(_spec)
sys.modules["check_site"] = check_site
_spec.loader.exec_module(check_site)

PAGE = """<!DOCTYPE html><html><head>{head}</head><body>
<article class="bd-article" role="main">{body}</article></body></html>"""
MATHJAX_SCRIPT = '<script defer src="_static/mathjax/tex-chtml.js"></script>'
GOOD_FIGURE = """<figure><img alt="Accuracy per class before and after forgetting digit 3"
 src="_images/abc.png"/><figcaption><p>Per-class accuracy.</p></figcaption></figure>"""


def make_site(tmp_path: Path, body: str, head: str = "", mathjax: bool = True) -> Path:
    """A one-page site (page.html) with, optionally, a stand-in MathJax file."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "index.html").write_text(PAGE.format(head="", body="<p>home</p>"))
    (tmp_path / "page.html").write_text(PAGE.format(head=head, body=body))
    if mathjax:
        (tmp_path / "_static" / "mathjax").mkdir(parents=True)
        (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("// stand-in")
    return tmp_path / "page.html"


def problems(page: Path) -> list[str]:
    return check_site.static_checks(page.parent, page).problems


@pytest.mark.parametrize(
    ("alt", "src", "generated"),
    [
        ("../_images/06f8d090ef905465b096862d07aa9085f4888b2f5d52997a299be5c6629f0ab5.png",
         "../_images/06f8d090ef905465b096862d07aa9085f4888b2f5d52997a299be5c6629f0ab5.png", True),
        ("06f8d090ef905465b096862d07aa9085", "x.png", True),
        ("figure_3.png", "figure_3.png", True),
        ("", "a.png", True),
        ("Image", "a.png", True),
        ("Test accuracy per digit, before and after forgetting 3", "../_images/ab12.png", False),
    ],
)
def test_generated_alt_text_is_recognised(alt, src, generated):
    assert check_site.generated_alt(alt, src) is generated


def test_a_captioned_figure_with_written_alt_text_passes(tmp_path):
    assert problems(make_site(tmp_path, GOOD_FIGURE)) == []


def test_an_output_image_without_caption_or_alt_text_fails(tmp_path):
    body = '<div class="cell_output"><img alt="_images/0a1b2c3d4e5f60718293a4b5c6d7e8f9.png" src="_images/0a1b2c3d4e5f60718293a4b5c6d7e8f9.png"/></div>'
    found = problems(make_site(tmp_path, body))
    assert any("alt text" in p for p in found)
    assert any("no caption" in p for p in found)


def test_visible_asserts_count_and_hidden_ones_do_not(tmp_path):
    visible = '<div class="cell"><div class="cell_input"><pre>x = 1\nassert x == 1\n  assert x</pre></div></div>'
    hidden = ('<div class="cell"><details class="hide above-input"><summary>Show</summary>'
              '<div class="cell_input"><pre>assert x == 1</pre></div></details></div>')
    page = make_site(tmp_path, visible + hidden)
    report = check_site.static_checks(tmp_path, page)
    assert report.visible_asserts == 2
    # "assert" inside a word or a string is not an assert statement
    ok = make_site(tmp_path / "b", '<div class="cell_input"><pre>reassert = 1\nprint("assert")</pre></div>')
    assert problems(ok) == []


def test_resources_from_another_host_fail(tmp_path):
    head = ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
            '<link rel="stylesheet" href="//fonts.example.org/font.css"/>')
    found = problems(make_site(tmp_path, "<p>text</p>", head=head))
    assert sum("another host" in p for p in found) == 2


def test_math_needs_mathjax_served_by_the_site(tmp_path):
    body = '<p><span class="math notranslate nohighlight">\\(E_F\\)</span></p>'
    assert any("no MathJax" in p for p in problems(make_site(tmp_path / "a", body)))
    assert problems(make_site(tmp_path / "b", body, head=MATHJAX_SCRIPT)) == []
    # a script tag naming a file the site does not have is reported
    missing = make_site(tmp_path / "c", body, head=MATHJAX_SCRIPT, mathjax=False)
    assert any("missing from the site" in p for p in problems(missing))


def test_tex_outside_the_math_markup_fails(tmp_path):
    typeset_later = '<p><span class="math notranslate nohighlight">\\(E_F\\)</span></p>'
    in_code = "<pre>print(r'$$x$$')</pre>"
    assert problems(make_site(tmp_path / "a", typeset_later + in_code, head=MATHJAX_SCRIPT)) == []
    unparsed = "<p>the loss $$L(w)$$ and \\(E_F\\)</p>"
    found = problems(make_site(tmp_path / "b", unparsed, head=MATHJAX_SCRIPT))
    assert any("raw TeX" in p for p in found)


def test_every_file_of_a_vendored_library_on_a_page_fails(tmp_path):
    head = MATHJAX_SCRIPT + "".join(
        f'<script src="_static/mathjax/{name}.js"></script>' for name in ("core", "loader")
    )
    site = make_site(tmp_path, "<p>text</p>", head=head)
    for name in ("core", "loader"):
        (site.parent / "_static" / "mathjax" / f"{name}.js").write_text("// stand-in")
    assert any("3 mathjax/ scripts" in p for p in problems(site))


def test_a_widget_needs_a_captioned_figure_in_its_section(tmp_path):
    widget = ('<div class="cell_output"><script type="application/vnd.jupyter.widget-view+json">'
              '{"model_id": "x", "version_major": 2}</script></div>')
    bare = f"<section><h2>Try it</h2>{widget}</section>"
    assert any("widget" in p for p in problems(make_site(tmp_path / "a", bare)))
    with_fallback = f"<section><h2>Try it</h2>{widget}{GOOD_FIGURE}</section>"
    assert problems(make_site(tmp_path / "b", with_fallback)) == []


def test_bad_arguments_exit_with_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        check_site.main(["--html", str(tmp_path), "--browser", "never"])
    assert stop.value.code == 2
    assert "--html" in capsys.readouterr().err
    site = make_site(tmp_path / "site", "<p>text</p>").parent
    with pytest.raises(SystemExit) as stop:
        check_site.main(["--html", str(site), "--browser", "never", "--pages", "nope"])
    assert stop.value.code == 2
    assert "--pages" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        check_site.main(["--html", str(site), "--browser", "never", "--budget-ms", "0"])
    assert stop.value.code == 2
    # a good site passes: exit status 0
    assert check_site.main(["--html", str(site), "--browser", "never"]) == 0


# ------------------------------------------------------------------ the browser part

MATHJAX_PACKAGE = importlib.util.find_spec("sphinx-mathjax-offline")
CHROMIUM = check_site.find_chromium(None)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or MATHJAX_PACKAGE is None,
    reason="needs Chromium (apt-get install chromium) and sphinx-mathjax-offline",
)


@needs_browser
def test_browser_sees_raw_tex_without_mathjax_and_typeset_math_with_it(tmp_path):
    body = ('<p>The error <span class="math notranslate nohighlight">\\(E_F\\)</span> and</p>'
            '<div class="math notranslate nohighlight">\\[ L(w + \\delta) \\approx L(w) \\]</div>')
    served = tmp_path / "served"
    make_site(served, body, head=MATHJAX_SCRIPT, mathjax=False)
    package = Path(MATHJAX_PACKAGE.submodule_search_locations[0]) / "static" / "mathjax"
    shutil.copytree(package, served / "_static" / "mathjax")
    bare = tmp_path / "bare"
    make_site(bare, body, head="", mathjax=False)

    results = {}
    for name, site in (("served", served), ("bare", bare)):
        server, port = check_site.serve(site)
        try:
            dom = check_site.dump_dom(CHROMIUM, f"http://127.0.0.1:{port}/page.html", 20000, 120)
        finally:
            server.shutdown()
        report = check_site.PageReport(name)
        check_site.browser_checks(dom, report)
        results[name] = report
    assert results["served"].typeset == 2 and results["served"].problems == []
    assert results["bare"].typeset == 0
    assert any("not typeset" in p for p in results["bare"].problems)
    assert any("raw TeX" in p for p in results["bare"].problems)


# ------------------------------------------------------------------ the built book

OWN_PAGES = ["intro", "differences", "references", "api", "api/*"]


@pytest.mark.skipif(not (SITE / "index.html").is_file(), reason="book not built (_build/html)")
def test_built_book_pages_outside_the_chapters_pass_the_static_checks():
    pages = check_site.pages_of(SITE, OWN_PAGES)
    assert len(pages) > len(OWN_PAGES), "the API reference has a page per module"
    reports = [check_site.static_checks(SITE, page) for page in pages]
    assert {r.name: r.problems for r in reports if r.problems} == {}
    assert sum(r.math for r in reports) > 0, "the introduction and differences pages have math"


@pytest.mark.skipif(not (SITE / "index.html").is_file(), reason="book not built (_build/html)")
def test_built_book_serves_mathjax_and_widget_javascript_itself():
    assert (SITE / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (SITE / "_static" / "ipywidgets" / "embed-amd.js").is_file()
    assert (SITE / "_static" / "ipywidgets" / "require.js").is_file()
    # vendored scripts are on the widget pages only, not on every page
    assert "ipywidgets/embed-amd.js" not in (SITE / "book" / "references.html").read_text()


# ------------------------------------------------------------------ the book's sources


def test_every_package_module_has_an_api_page_in_the_table_of_contents():
    """Every module of the package (subpackages included) is documented by automodule on one
    of the API pages, and every page is in the table of contents."""
    import yaml

    package = ROOT / "mnemo_tutorial"
    modules = {
        ".".join(p.relative_to(package).with_suffix("").parts)
        for p in package.rglob("*.py")
        if "assignment_tests" not in p.parts and not p.name.startswith("_")
    }
    toc = (ROOT / "_toc.yml").read_text()
    pages = set(re.findall(r"file: book/api/(\w+)", toc))
    documented = set()
    for name in pages:
        page = (ROOT / "book" / "api" / f"{name}.md").read_text()
        documented |= set(re.findall(r"\.\. automodule:: mnemo_tutorial\.([\w.]+)\n", page))
    assert modules - documented == set(), "add an automodule block to a page of book/api/"
    assert documented - modules == set(), "an API page names a module that no longer exists"
    on_disk = {p.stem for p in (ROOT / "book" / "api").glob("*.md")}
    assert on_disk == pages, "every page of book/api/ is listed in _toc.yml"
    yaml.safe_load(toc)  # the table of contents stays valid YAML


def test_citation_file_names_the_book_the_paper_and_both_licences():
    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"] and cff["authors"]
    assert set(cff["license"]) == {"MIT", "CC-BY-4.0"}
    licence = (ROOT / "LICENSE").read_text()
    assert "MIT License" in licence and "CC BY 4.0" in licence
    paper = cff["references"][0]
    assert paper["title"] == "One-Shot Machine Unlearning with Mnemonic Code"
    assert [a["family-names"] for a in paper["authors"]] == ["Yamashita", "Yamada", "Shibata"]


def test_citation_names_the_package_version():
    import tomllib

    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert str(cff["version"]) == version, "CITATION.cff's version follows pyproject.toml's"
