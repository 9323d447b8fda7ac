#!/usr/bin/env python
"""Check the built book as a reader without a network would see it.

Usage (from the repository root)::

    python scripts/check_site.py                 # check _build/html
    python scripts/check_site.py --build         # jupyter-book build . -W first
    python scripts/check_site.py --browser never # only the HTML checks (no Chromium)
    python scripts/check_site.py --pages intro 'api/*'      # some pages only

Static checks, on the HTML files:

* offline: no page (slide decks included) loads a script, style sheet or image from another
  host, and every local script and style sheet it loads exists in the site;
* math: a page with formulas loads MathJax from the site itself, and no TeX is left outside
  the math markup that MathJax typesets (a formula the Markdown parser did not recognise);
* figures: every image in a page's content has alt text that is not generated (not a file
  name, a path or a hash) and sits in a ``<figure>`` with a non-empty caption;
* scaffolding: no ``assert`` line in a visible code cell (cells whose input is hidden behind a
  toggle, or removed, do not count);
* widgets: every widget output has a captioned figure in its section (the static fallback).

Browser checks (headless Chromium, every page served on 127.0.0.1 with every other host
unreachable): every formula was typeset by MathJax (an ``mjx-container`` in each math element),
no raw TeX (``\\(``, ``\\[``, ``$$``, ``\\begin{``) is left in the text of the page, and every
widget is drawn from the state stored in the page. Pages with neither formulas nor widgets
are not loaded in the browser: nothing on them is drawn by a script.
``--browser auto`` (the default) runs them when a Chromium is found and says so when not.

Exit status: 0 when every check passes, 1 when one fails, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

from bs4 import BeautifulSoup, Tag

ROOT = Path(__file__).resolve().parent.parent

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGE_EXT = re.compile(r"\.(png|jpe?g|gif|svg|webp|pdf)$", re.I)
HASHLIKE = re.compile(r"[0-9a-f]{16,}", re.I)
GENERIC_ALT = {"image", "figure", "img", "png", "output", "plot", "chart", "untitled"}
ASSERT_LINE = re.compile(r"^\s*assert\b")
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\\begin\{")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass
class PageReport:
    """What the checks found on one page."""

    name: str
    math: int = 0
    figures: int = 0
    widgets: int = 0
    visible_asserts: int = 0
    typeset: int | None = None  # math elements typeset in the browser (None: not run)
    problems: list[str] = field(default_factory=list)
    has_content: bool = True


# ---------------------------------------------------------------------------- static part


def content_of(soup: BeautifulSoup) -> Tag | None:
    """The page's article (the book theme's content column), or None for a redirect page."""
    return soup.select_one("article.bd-article") or soup.select_one("div[role=main]")


def is_remote(url: str | None) -> bool:
    """True for a URL that names another host (http:, https:, protocol-relative)."""
    if not url:
        return False
    parts = urlsplit(url.strip())
    return bool(parts.netloc) or parts.scheme in {"http", "https"}


def generated_alt(alt: str, src: str) -> bool:
    """True when an image's alt text says nothing a person wrote: empty, a path or a hash."""
    text = alt.strip()
    if not text or text.lower() in GENERIC_ALT:
        return True
    base = os.path.basename(src or "")
    if base and (text == src or base in text):
        return True
    if "/" in text and " " not in text:
        return True
    return bool(IMAGE_EXT.search(text) or HASHLIKE.search(text))


def within(node: Tag, name: str, classes: set[str] | None = None) -> Tag | None:
    """The closest ancestor of ``node`` with tag ``name`` (and one of ``classes``)."""
    for parent in node.parents:
        if parent.name == name and (
            classes is None or classes & set(parent.get("class") or [])
        ):
            return parent
    return None


def check_figures(article: Tag, report: PageReport) -> None:
    for img in article.find_all("img"):
        report.figures += 1
        src = img.get("src", "")
        alt = img.get("alt")
        if alt is None or generated_alt(alt, src):
            report.problems.append(f"image {src}: alt text missing or generated ({alt!r})")
        figure = within(img, "figure")
        caption = figure.find("figcaption") if figure else None
        if caption is None or not caption.get_text(strip=True):
            report.problems.append(f"image {src}: no caption (not in a captioned <figure>)")


def check_asserts(article: Tag, report: PageReport) -> None:
    for cell_input in article.select("div.cell_input"):
        if within(cell_input, "details"):  # hide-input / hide-cell: behind a toggle
            continue
        for pre in cell_input.find_all("pre"):
            for line in pre.get_text().splitlines():
                if ASSERT_LINE.match(line):
                    report.visible_asserts += 1
                    report.problems.append(f"visible assert: {line.strip()[:70]}")


def check_widgets(article: Tag, report: PageReport) -> None:
    for script in article.find_all("script", type=WIDGET_VIEW):
        report.widgets += 1
        section = within(script, "section")
        scope = section if section is not None else article
        fallback = [
            fig
            for fig in scope.find_all("figure")
            if fig.find("img") is not None
            and fig.find("figcaption") is not None
            and fig.find("figcaption").get_text(strip=True)
        ]
        if not fallback:
            title = section.find(re.compile("^h[1-6]$")) if section else None
            where = title.get_text(" ", strip=True).rstrip("#") if title else "the page"
            report.problems.append(
                f"widget in section {where!r} has no captioned static figure beside it"
            )


def raw_tex(article: Tag) -> list[str]:
    """Stretches of TeX in the page's text outside code and outside math elements (which
    MathJax typesets), with some context: TeX there is shown to the reader as it is."""
    article = BeautifulSoup(str(article), "html.parser")
    for node in article.find_all(["pre", "code", "script", "style", "mjx-container"]):
        node.decompose()
    for node in article.select(".math"):
        node.decompose()
    text = article.get_text(" ")
    found = []
    for match in list(RAW_TEX.finditer(text))[:3]:
        found.append(text[max(0, match.start() - 30) : match.end() + 30].replace("\n", " "))
    return found


def check_resources(soup: BeautifulSoup, page: Path, site: Path, report: PageReport) -> None:
    """No resource from another host; every local script present in the site."""
    mathjax_local = False
    for tag, attr in (("script", "src"), ("link", "href"), ("img", "src")):
        for node in soup.find_all(tag):
            url = node.get(attr)
            if not url:
                continue
            if tag == "link" and not {"stylesheet", "preload", "icon"} & set(
                node.get("rel") or []
            ):
                continue
            if is_remote(url):
                report.problems.append(f"loads <{tag}> from another host: {url}")
                continue
            if tag in ("script", "link"):
                target = (page.parent / urlsplit(url).path).resolve()
                if not target.is_file():
                    what = "script" if tag == "script" else "style sheet or icon"
                    report.problems.append(f"{what} missing from the site: {url}")
                elif tag == "script" and "mathjax" in url.lower():
                    mathjax_local = True
    scripts = [n.get("src", "") for n in soup.find_all("script") if n.get("src")]
    for library, most in (("mathjax/", 1), ("ipywidgets/", 2)):
        count = sum(library in src for src in scripts)
        if count > most:
            report.problems.append(
                f"{count} {library} scripts on one page (at most {most}): is a vendored "
                "library under a static path? Jupyter Book 1 then adds every .js file to every page"
            )
    if report.math and not mathjax_local:
        report.problems.append(f"{report.math} formulas but no MathJax served by the site")
    del site


def static_checks(site: Path, page: Path) -> PageReport:
    report = PageReport(str(page.relative_to(site)))
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    article = content_of(soup)
    if article is not None:
        report.math = len(article.select(".math"))
    check_resources(soup, page, site, report)  # every page, decks and redirects included
    if article is None:
        report.has_content = False  # a redirect page or a slide deck: no content column
        return report
    check_figures(article, report)
    check_asserts(article, report)
    check_widgets(article, report)
    for around in raw_tex(article):
        report.problems.append(f"raw TeX outside the math markup: ...{around}...")
    return report


# --------------------------------------------------------------------------- browser part


def find_chromium(explicit: str | None) -> str | None:
    if explicit:
        return explicit if shutil.which(explicit) or Path(explicit).is_file() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102 - silence the access log
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def dump_dom(chromium: str, url: str, budget_ms: int, timeout_s: float) -> str:
    """The page's DOM after its scripts ran, loaded with every other host unreachable."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        # the network is off: a proxy that does not exist for every host but this one, and
        # no name of another host resolves
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--virtual-time-budget={budget_ms}",
        "--window-size=1280,900",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(
            f"chromium exited {done.returncode} on {url}: {done.stderr.strip()[-300:]}"
        )
    return done.stdout


def browser_checks(dom: str, report: PageReport) -> None:
    soup = BeautifulSoup(dom, "html.parser")
    article = content_of(soup)
    if article is None:
        return
    maths = article.select(".math")
    typeset = [m for m in maths if m.find("mjx-container") is not None]
    report.typeset = len(typeset)
    views = len(soup.find_all("script", type=WIDGET_VIEW))
    rendered = len(article.select(".widget-subarea"))
    if rendered < views:
        report.problems.append(
            f"browser: {views - rendered} of {views} widgets not drawn from their stored state"
        )
    if len(typeset) < len(maths):
        report.problems.append(
            f"browser: {len(maths) - len(typeset)} of {len(maths)} formulas not typeset"
        )
    for node in article.find_all(["pre", "code", "script", "style", "mjx-container"]):
        node.decompose()
    text = article.get_text(" ")
    for match in list(RAW_TEX.finditer(text))[:3]:
        around = text[max(0, match.start() - 30) : match.end() + 30].replace("\n", " ")
        report.problems.append(f"browser: raw TeX left on the page: ...{around}...")


# ----------------------------------------------------------------------------------- main


def pages_of(site: Path, only: list[str] | None) -> list[Path]:
    pages = sorted(
        p
        for p in site.rglob("*.html")
        if not {"_static", "_sources", "_images"} & set(p.relative_to(site).parts)
        and p.name not in {"genindex.html", "search.html", "py-modindex.html"}
    )
    if only:
        def names(page: Path) -> set[str]:
            rel = page.relative_to(site).with_suffix("").as_posix()
            return {rel, rel.removeprefix("book/")}

        matched = {pat: [p for p in pages if any(fnmatch(n, pat) for n in names(p))] for pat in only}
        missing = sorted(pat for pat, found in matched.items() if not found)
        if missing:
            raise ValueError(f"--pages: no built page matches {missing}")
        pages = [p for p in pages if any(p in found for found in matched.values())]
    return pages


def build(root: Path) -> None:
    command = [sys.executable, "-m", "jupyter_book", "build", str(root), "-W", "--keep-going"]
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent))
    if jb:
        command = [jb, *command[3:]]
    subprocess.run(command, check=True, cwd=root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html",
                        help="the built site (default: _build/html)")
    parser.add_argument("--build", action="store_true",
                        help="build the book first (jupyter-book build . -W)")
    parser.add_argument("--browser", choices=("auto", "always", "never"), default="auto",
                        help="run the Chromium checks: when found (auto), or fail without")
    parser.add_argument("--chromium", help="the Chromium or Chrome executable to use")
    parser.add_argument("--pages", nargs="+", metavar="NAME",
                        help="check only these pages: paths under book/ without .html, "
                             "shell patterns allowed (intro, api/*)")
    parser.add_argument("--budget-ms", type=int, default=20000,
                        help="virtual time each page gets to run its scripts (ms)")
    args = parser.parse_args(argv)
    if args.budget_ms <= 0:
        parser.error(f"--budget-ms must be a positive number of milliseconds, not {args.budget_ms}")

    if args.build:
        build(ROOT)
    site = args.html.resolve()
    if not (site / "index.html").is_file():
        parser.error(f"--html: {site} holds no built site (no index.html); build it with "
                     "`jupyter-book build . -W` or pass --build")
    try:
        pages = pages_of(site, args.pages)
    except ValueError as error:
        parser.error(str(error))

    chromium = None
    if args.browser != "never":
        chromium = find_chromium(args.chromium)
        if chromium is None and args.browser == "always":
            parser.error("--browser always: no Chromium found (apt-get install chromium, "
                         "or name one with --chromium)")
        if chromium is None:
            print("note: no Chromium found; browser checks skipped (--browser always to require)")

    reports = [static_checks(site, page) for page in pages]
    if chromium:
        server, port = serve(site)
        try:
            for page, report in zip(pages, reports):
                if not report.has_content:
                    continue  # a redirect page: its target is checked on its own
                if not (report.math or report.widgets):
                    continue  # nothing a script draws: the HTML checks said it all
                url = f"http://127.0.0.1:{port}/{page.relative_to(site).as_posix()}"
                try:
                    dom = dump_dom(chromium, url, args.budget_ms, timeout_s=120)
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    report.problems.append(f"browser: {error}")
                    continue
                browser_checks(dom, report)
        finally:
            server.shutdown()

    width = max(len(r.name) for r in reports)
    print(f"{'page':<{width}}  math  typeset  figures  widgets  asserts  problems")
    for r in reports:
        typeset = "-" if r.typeset is None else str(r.typeset)
        print(f"{r.name:<{width}}  {r.math:>4}  {typeset:>7}  {r.figures:>7}  "
              f"{r.widgets:>7}  {r.visible_asserts:>7}  {len(r.problems):>8}")
    failed = [r for r in reports if r.problems]
    for r in failed:
        print(f"\n{r.name}:")
        for problem in r.problems:
            print(f"  - {problem}")
    mode = "static and browser" if chromium else "static"
    print(f"\nsite check ({mode}): {len(reports) - len(failed)} of {len(reports)} pages pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
