"""Checks on the book's sources: table of contents, committed notebooks, configuration, API page,
bibliography, and the plotting and widget helpers the chapters use. Fast: no notebook is executed
here (``pytest --nbval-lax book/`` does that)."""
from __future__ import annotations

import json
import pkgutil
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

import mnemo_tutorial  # noqa: E402
from mnemo_tutorial import Fixed, ForgetSettings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries: list) -> None:
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))
            for part in e.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def _source(entry: str) -> Path | None:
    for ext in ("", ".ipynb", ".md"):
        p = ROOT / f"{entry}{ext}"
        if p.is_file():
            return p
    return None


def _notebooks() -> list[Path]:
    return [p for p in (_source(f) for f in _toc_files()) if p is not None and p.suffix == ".ipynb"]


def _load(nb: Path) -> dict:
    return json.loads(nb.read_text(encoding="utf-8"))


def _text(src: str | list[str]) -> str:
    return "".join(src) if isinstance(src, list) else src


# --- table of contents and notebooks -------------------------------------------------------

def test_every_toc_entry_exists():
    missing = [f for f in _toc_files() if _source(f) is None]
    assert not missing, f"listed in _toc.yml but missing: {missing}"


def test_toc_lists_the_chapters_as_notebooks():
    chapters = [f for f in _toc_files() if re.match(r"book/\d\d_", f)]
    assert len(chapters) >= 4
    for f in chapters:
        src = _source(f)
        assert src is not None and src.suffix == ".ipynb", f"{f} should be a notebook"


@pytest.mark.parametrize("nb", _notebooks(), ids=lambda p: p.name)
def test_notebook_is_committed_executed_without_errors(nb: Path):
    cells = [c for c in _load(nb)["cells"] if c["cell_type"] == "code"]
    assert cells, "a chapter has code"
    errors = [i for i, c in enumerate(cells) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"error outputs in code cells {errors}"
    stderr = [i for i, c in enumerate(cells) for o in c.get("outputs", [])
              if o.get("output_type") == "stream" and o.get("name") == "stderr" and "Traceback" in _text(o.get("text", ""))]
    assert not stderr, f"tracebacks printed in code cells {stderr}"
    unexecuted = [i for i, c in enumerate(cells) if _text(c["source"]).strip() and c.get("execution_count") is None]
    assert not unexecuted, f"code cells never executed: {unexecuted}"


@pytest.mark.parametrize("nb", _notebooks(), ids=lambda p: p.name)
def test_first_code_cell_installs_the_released_package(nb: Path):
    first = next(c for c in _load(nb)["cells"] if c["cell_type"] == "code")
    src = _text(first["source"])
    assert "import mnemo_tutorial" in src and 'pip install -q "mnemo-tutorial==' in src


@pytest.mark.parametrize("nb", _notebooks(), ids=lambda p: p.name)
def test_widget_outputs_have_saved_state(nb: Path):
    data = _load(nb)
    views = [o["data"][WIDGET_VIEW]["model_id"] for c in data["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
    if not views:
        pytest.skip("no widgets in this chapter")
    state = data.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = [m for m in views if m not in state]
    assert not missing, "widget views without saved state (execute with store_widget_state)"


# --- configuration, bibliography, API page --------------------------------------------------

DEMO_API = '''"""A module documented the way the package is."""


def double(x: int) -> int:
    """Twice a number.

    Args:
        x: the number.

    Returns:
        2 x.
    """
    return 2 * x
'''


def _demo_notebook(marker: Path) -> dict:
    """A chapter whose one code cell, if it ever ran, would write ``marker`` and print a
    line (``fresh-run output``, not in its source) other than its committed output."""
    code = f"open({str(marker)!r}, 'w').write('ran')\nprint('fresh' + '-run output')"
    output = {"output_type": "stream", "name": "stdout", "text": "committed output 7\n"}
    cell = {"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {}, "source": code,
            "outputs": [output]}
    title = {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "# Demo chapter"}
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {"nbformat": 4, "nbformat_minor": 5, "cells": [title, cell],
            "metadata": {"kernelspec": kernel, "language_info": {"name": "python"}}}


def _first_bib_entry() -> tuple[str, str]:
    """(key, title) of the first entry of the book's bibliography."""
    bib = (ROOT / _config()["bibtex_bibfiles"][0]).read_text()
    key = re.search(r"@\w+\{([^,\s]+),", bib).group(1)
    title = re.search(r"\btitle\s*=\s*\{([^}]*)\}", bib).group(1)
    return key, title


@pytest.fixture(scope="module")
def mini_book(tmp_path_factory) -> dict:
    """A three-page book built by ``jupyter-book build -W`` with the repository's own
    ``_config.yml`` (its local extensions and bibliography beside it): an intro citing the
    bibliography, a committed notebook and an API page. -> {"html": its pages, "marker"}."""
    pytest.importorskip("jupyter_book")
    import os
    import shutil
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("mini_book")
    src, py, marker = tmp / "src", tmp / "py", tmp / "executed.txt"
    (src / "book").mkdir(parents=True)
    py.mkdir()
    cfg = _config()
    shutil.copy(ROOT / "_config.yml", src / "_config.yml")
    for folder in set(cfg["sphinx"]["local_extensions"].values()):
        shutil.copytree(ROOT / folder, src / folder, dirs_exist_ok=True)
    (src / "book" / "_vendor").symlink_to(ROOT / "book" / "_vendor")  # offline_assets copies it
    for bib in cfg["bibtex_bibfiles"]:
        shutil.copy(ROOT / bib, src / bib)
    key, _ = _first_bib_entry()
    (src / "book" / "intro.md").write_text(
        f"# Mini intro\n\nThe method of {{cite}}`{key}`.\n\n```{{bibliography}}\n```\n")
    (src / "book" / "demo.ipynb").write_text(json.dumps(_demo_notebook(marker)))
    (src / "book" / "demo_api.md").write_text(
        "# Demo API\n\n```{eval-rst}\n.. automodule:: demo_api\n   :members:\n```\n")
    (py / "demo_api.py").write_text(DEMO_API)
    (src / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: Demo\n"
                                  "    numbered: true\n    chapters:\n      - file: book/demo\n"
                                  "      - file: book/demo_api\n")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(src), "--path-output", str(tmp / "out"), "-W"]
    env = {**os.environ, "PYTHONPATH": str(py)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"html": tmp / "out" / "_build" / "html" / "book", "marker": marker}


def _github_repository() -> str:
    """The repository the project names as its code (CITATION.cff), not read from _config.yml."""
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())["repository-code"].rstrip("/")


def test_the_book_shows_committed_outputs_and_never_executes(mini_book):
    page = (mini_book["html"] / "demo.html").read_text()
    assert "committed output 7" in page and "fresh-run output" not in page
    assert not mini_book["marker"].exists(), "the build ran a notebook cell"


def test_launch_and_repository_buttons_open_the_projects_repository(mini_book):
    page = (mini_book["html"] / "demo.html").read_text()
    repo = _github_repository()
    owner_name = repo.removeprefix("https://github.com/")
    colab = set(re.findall(r'href="(https://colab\.research\.google\.com/[^"]*)"', page))
    branch = _config()["repository"]["branch"]
    in_repo = f"{owner_name}/blob/{branch}/book/demo.ipynb"
    assert colab == {f"https://colab.research.google.com/github/{in_repo}"}, colab
    assert f'href="{repo}"' in page, "the repository button links to the repository"
    intro_title = (ROOT / "book" / "intro.md").read_text().splitlines()[0].removeprefix("# ")
    assert re.search(r"<title>[^<]*&#8212; " + re.escape(intro_title) + r"\s*</title>", page)


def test_the_launch_buttons_branch_is_a_branch_of_the_repository():
    import subprocess

    cmd = ["git", "-C", str(ROOT), "for-each-ref", "--format=%(refname:short)", "refs/heads",
           "refs/remotes"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    names = {n.split("/", 1)[-1] for n in done.stdout.split()} | set(done.stdout.split())
    if done.returncode != 0 or not names:
        pytest.skip("no git branches in this checkout (e.g. a detached CI checkout)")
    assert _config()["repository"]["branch"] in names, sorted(names)


def test_api_pages_render_google_docstrings_and_citations_resolve(mini_book):
    api = (mini_book["html"] / "demo_api.html").read_text()
    assert 'id="demo_api.double"' in api, "autodoc documents the module's functions"
    fields = re.sub(r"<[^>]+>", " ", api)
    assert re.search(r"Parameters\s*:?\s*x\s*[^A-Za-z]*the number", fields), "napoleon: Args"
    assert re.search(r"Returns\s*:?\s*2 x", fields), "napoleon: Returns"
    _, title = _first_bib_entry()
    assert title in (mini_book["html"] / "intro.html").read_text(), "the cited entry is listed"


def test_every_cited_key_is_in_the_bibliography():
    bib = "\n".join((ROOT / b).read_text() for b in _config()["bibtex_bibfiles"])
    keys = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    cited: set[str] = set()
    for f in _toc_files():
        src = _source(f)
        if src is None:
            continue
        texts = ([_text(c["source"]) for c in _load(src)["cells"] if c["cell_type"] == "markdown"]
                 if src.suffix == ".ipynb" else [src.read_text()])
        for t in texts:
            for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", t):
                cited.update(k.strip() for k in group.split(","))
    unknown = sorted(cited - keys)
    assert not unknown, f"cited but not in references.bib: {unknown}"


def _package_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(mnemo_tutorial.__path__) if not m.name.startswith("_"))


# --- plotting and widget helpers ------------------------------------------------------------

def test_viz_figures_have_titles_and_labels():
    from mnemo_tutorial.book import viz

    pictures = [  # image grids: titles, no axes
        viz.show_images(torch.rand(5, 1, 8, 8), titles=list("abcde"), ncols=3, title="grid"),
        viz.plot_codes(torch.rand(3, 1, 8, 8)),
    ]
    charts = [  # plots: titles and labelled axes
        viz.plot_loss_curves(np.linspace(-1, 1, 5), {"w": np.linspace(0, 1, 5)}, {"w": np.zeros(5)}),
        viz.plot_per_class_accuracy({"a": [90.0, 50.0, 10.0]}, [2]),
        viz.plot_times({"train": 10.0, "forget": 0.01}),
        viz.plot_sweep(range(3), {"m": {"E_F": [100, 99, 100], "A_R": [95, 96, 97]}}, paper={"A_R": (95, 96)}),
        viz.plot_metric_lines([0.0, 0.1], {"acc": [96, 95]}, title="t", xlabel="t_mix"),
        viz.plot_estimate_quality([1, 10], {"k": ([0.1, 0.2], [0.0, 0.0])}, {"code": 0.15}),
        viz.plot_lambda_grids([1e-3, 1e-2], [1.0, 10.0, 100.0], np.full((2, 3), 50.0), np.full((2, 3), 90.0),
                              {"paper": (1e-3, 10.0)}, title="grid"),
        viz.plot_confusion_pair(np.eye(3) * 10, np.eye(3) * 10, [1]),
        viz.plot_value_histograms({"a": torch.rand(100)}),
        viz.plot_decision_data(torch.randn(20, 2), torch.arange(20) % 2, torch.tensor([1.0, 1.0])),
    ]
    for fig in pictures + charts:
        suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
        assert suptitle or any(ax.get_title() for ax in fig.axes), "every figure has a title"
    for fig in charts:
        main_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        fig.canvas.draw()  # so that categorical tick labels exist
        for ax in main_axes:
            named_y = ax.get_ylabel() or any(t.get_text() for t in ax.get_yticklabels())
            assert ax.get_xlabel() and named_y, "every chart has labelled axes (or named categories)"
    plt.close("all")


def test_viz_rejects_bad_shapes():
    from mnemo_tutorial.book import viz

    with pytest.raises(ValueError, match="images"):
        viz.show_images(torch.rand(4))
    with pytest.raises(ValueError, match="values"):
        viz.plot_lambda_grid([1.0], [1.0, 2.0], np.zeros((2, 2)), "t")
    with pytest.raises(ValueError, match="cm"):
        viz.plot_confusion(np.zeros((2, 3)))


def test_widgets_build_and_draw():
    import ipywidgets

    from mnemo_tutorial import MnemonicCodes
    from mnemo_tutorial.book import widgets
    from mnemo_tutorial.training.models import MLP

    w = widgets.perturbation_explorer(lambda name, d: d * d, {"a": 2.0, "b": 0.5}, np.linspace(-1, 1, 11), 0.0)
    assert isinstance(w, ipywidgets.interactive)
    w.children[0].value = "b"  # redraws without error
    with pytest.raises(ValueError, match="start"):
        widgets.perturbation_explorer(lambda n, d: 0.0, {"a": 1.0}, np.linspace(-1, 1, 3), 0.0, start=("z", 0.0))

    torch.manual_seed(0)
    model = MLP(in_features=16, hidden=8, num_classes=3)
    codes = MnemonicCodes.random(3, (1, 4, 4), seed=0)
    x, y = torch.rand(30, 1, 4, 4), torch.arange(30) % 3
    before = [p.detach().clone() for p in model.parameters()]
    f = widgets.forget_explorer(model, codes, x, y, num_classes=3, start=1, settings=ForgetSettings(selection=Fixed(1e-3, 10.0)))
    assert isinstance(f, ipywidgets.interactive)
    f.children[0].value = 2
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the explorer leaves the model unchanged"
    with pytest.raises(ValueError, match="start"):
        widgets.forget_explorer(model, codes, x, y, num_classes=3, start=5)
    plt.close("all")


def test_docstring_extension_escapes_shapes_only():
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from docstring_rst import escape_stars, fix_lines
    finally:
        sys.path.pop(0)
    assert escape_stars("x: (N, *input_shape)") == "x: (N, \\*input_shape)"
    assert escape_stars("f(x, **kwargs)") == "f(x, \\*\\*kwargs)"
    assert escape_stars("the *retrained* model and **bold** text") == "the *retrained* model and **bold** text"
    assert escape_stars("``(N, *shape)`` stays literal") == "``(N, *shape)`` stays literal"
    assert escape_stars("w <- w + s * a * eta") == "w <- w + s * a * eta"
    assert fix_lines(["Items:", "  * a", "    more", "After."]) == ["Items:", "  * a", "    more", "", "After."]
    assert fix_lines(["Example::", "", "    f(*args)"]) == ["Example::", "", "    f(*args)"]


def test_forget_explorer_shows_a_failed_step_instead_of_raising(capsys):
    from mnemo_tutorial import MnemonicCodes
    from mnemo_tutorial.book import widgets
    from mnemo_tutorial.training.models import MLP

    torch.manual_seed(0)
    model = MLP(in_features=16, hidden=8, num_classes=3)
    codes = MnemonicCodes.random(3, (1, 4, 4), seed=0)
    x, y = torch.rand(30, 1, 4, 4), torch.arange(30) % 3
    # lambdas far too small to move anything: the fixed selection's criterion cannot be met
    tiny_step = ForgetSettings(selection=Fixed(1e-12, 1e-12))
    widgets.forget_explorer(model, codes, x, y, num_classes=3, start=1, settings=tiny_step)
    out = capsys.readouterr().out
    assert "status: failed (not met:" in out and "forget-code margin" in out, out
    widgets.forget_explorer(model, codes, x, y, num_classes=3, settings=tiny_step,
                            on_failure="raise")
    assert "status:" not in capsys.readouterr().out  # the caller's on_failure wins: the step raised
    plt.close("all")
