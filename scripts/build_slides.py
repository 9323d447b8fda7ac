#!/usr/bin/env python
"""Build the lecture slides: book/teaching/slides/lecture-NN.ipynb -> reveal.js decks.

Usage (from the repository root, after ``jupyter-book build .``)::

    python scripts/build_slides.py                 # writes _build/html/slides/
    python scripts/build_slides.py --out /tmp/sl   # anywhere else
    python scripts/build_slides.py --lectures 01 04

Each notebook is executed in a fresh kernel (its figure cells read results shipped with the
package, in a second or two) and converted with ``jupyter nbconvert --to slides``. The decks
work without a network: next to them the script puts

* ``revealjs/``: reveal.js, its white theme, fonts and notes plugin, copied from
  ``book/_vendor/revealjs`` (see ``book/_vendor/README.md``);
* ``mathjax/``: the part of MathJax 3 the decks use, copied from the installed
  ``sphinx-mathjax-offline`` package (the copy the book serves).

nbconvert's reveal template loads jQuery, RequireJS, Mermaid, MathJax 2 and reveal.js from
CDNs; ``book/teaching/slides/offline.html.j2`` replaces those parts. The script fails (exit 1)
when a deck still names a script or a style sheet on another host, when a local one it names
is missing, or when a copied style sheet imports from another host.

Exit status: 0 when every deck was built and passed the checks, 1 otherwise, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_site import PageReport, check_resources, is_remote  # noqa: E402  (the site check)

ROOT = Path(__file__).resolve().parent.parent
SLIDES = ROOT / "book" / "teaching" / "slides"
TEMPLATE = SLIDES / "offline.html.j2"
REVEAL = ROOT / "book" / "_vendor" / "revealjs"
DEFAULT_OUT = ROOT / "_build" / "html" / "slides"
LECTURE = re.compile(r"^lecture-(\d\d)\.ipynb$")
# what the decks need of MathJax 3: the component, its fonts and the TeX extensions that
# the autoload package fetches on demand (\boldsymbol, \cancel, ...)
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")
CSS_REMOTE = re.compile(r"""(@import\s+(url\()?|url\()\s*['"]?\s*(https?:)?//""", re.I)


def lectures(only: list[str] | None = None) -> list[Path]:
    """The lecture notebooks, sorted; ``only`` keeps the given numbers ("01", "4")."""
    found = sorted(p for p in SLIDES.glob("lecture-*.ipynb") if LECTURE.match(p.name))
    if only:
        wanted = {f"{int(n):02d}" for n in only}
        found = [p for p in found if LECTURE.match(p.name).group(1) in wanted]
    return found


def mathjax_source() -> Path:
    """The MathJax 3 folder shipped by sphinx-mathjax-offline (a requirement of the book)."""
    try:
        dist = metadata.distribution("sphinx-mathjax-offline")
        folder = Path(str(dist.locate_file("sphinx-mathjax-offline/static/mathjax")))
    except metadata.PackageNotFoundError:
        folder = Path("sphinx-mathjax-offline (not installed)")
    if not (folder / "tex-chtml.js").is_file():
        raise FileNotFoundError(
            f"MathJax not found at {folder}: pip install sphinx-mathjax-offline (requirements.txt)"
        )
    return folder


def copy_assets(out: Path) -> None:
    """reveal.js and MathJax next to the decks, replacing older copies."""
    for name in ("revealjs", "mathjax"):
        shutil.rmtree(out / name, ignore_errors=True)
    shutil.copytree(REVEAL, out / "revealjs", ignore=shutil.ignore_patterns("README*"))
    source = mathjax_source()
    for part in MATHJAX_PARTS:
        src, dst = source / part, out / "mathjax" / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)


def convert(notebook: Path, out: Path, timeout: int) -> Path:
    """Execute ``notebook`` and write ``out/<name>.slides.html``; returns that path."""
    command = [
        sys.executable, "-m", "jupyter", "nbconvert", str(notebook),
        "--to", "slides",
        "--execute", f"--ExecutePreprocessor.timeout={timeout}",
        "--template-file", str(TEMPLATE),
        "--SlidesExporter.reveal_url_prefix=revealjs",
        "--SlidesExporter.reveal_theme=white",
        "--SlidesExporter.reveal_number=c/t",
        "--HTMLExporter.mathjax_url=mathjax/tex-chtml.js",
        "--TagRemovePreprocessor.enabled=True",
        "--TagRemovePreprocessor.remove_input_tags=remove-input",
        "--TagRemovePreprocessor.remove_cell_tags=remove-cell",
        "--no-prompt",
        "--output-dir", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=notebook.parent)
    if done.returncode != 0:
        raise RuntimeError(f"nbconvert failed on {notebook.name}:\n{done.stderr[-2000:]}")
    return out / f"{notebook.stem}.slides.html"


def problems_of(deck: Path) -> list[str]:
    """What keeps ``deck`` from working offline: the site check's test of its scripts, style
    sheets and images (``check_site.check_resources``), and ES-module imports from another host
    (the template's Mermaid loader)."""
    html = deck.read_text(encoding="utf-8")
    report = PageReport(deck.name)
    check_resources(BeautifulSoup(html, "html.parser"), deck, deck.parent, report)
    found = [f"{deck.name}: {problem}" for problem in report.problems]
    for url in re.findall(r"""\bimport\s[^;]*?from\s+['"]([^'"]+)['"]""", html):
        if is_remote(url):
            found.append(f"{deck.name}: module import from another host: {url}")
    return found


def css_problems(out: Path) -> list[str]:
    """Style sheets copied next to the decks that import or load from another host."""
    return [
        f"{css.relative_to(out)}: loads from another host"
        for css in sorted((out / "revealjs").rglob("*.css"))
        if CSS_REMOTE.search(css.read_text(encoding="utf-8"))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: _build/html/slides)"
    )
    parser.add_argument(
        "--lectures", nargs="+", metavar="NN", help="build only these lectures (numbers)"
    )
    parser.add_argument(
        "--timeout", type=int, default=300, help="seconds each notebook may run (default: 300)"
    )
    args = parser.parse_args(argv)
    if args.lectures and not all(n.isdigit() for n in args.lectures):
        parser.error(f"--lectures takes lecture numbers such as 01 or 4, not {args.lectures}")
    notebooks = lectures(args.lectures)
    if not notebooks:
        parser.error(f"no lecture notebooks found in {SLIDES} for {args.lectures or 'all'}")

    out = args.out.resolve()
    if out == REVEAL.parent.resolve() or out in ROOT.resolve().parents or out == ROOT.resolve():
        parser.error(f"--out {out}: pick a folder of its own (the script replaces revealjs/ there)")
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out)
    problems = css_problems(out)
    for notebook in notebooks:
        try:
            deck = convert(notebook, out, args.timeout)
        except RuntimeError as error:
            problems.append(str(error))
            continue
        problems += problems_of(deck)
        print(f"{notebook.relative_to(ROOT)} -> {deck}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(notebooks)} decks in {out}: " + ("FAILED" if problems else "offline, ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
