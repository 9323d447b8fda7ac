"""Copy the vendored widget JavaScript (``book/_vendor``) into the built site.

The files are copied after a successful HTML build, into ``_static/``, rather than listed in
``html_static_path``: Jupyter Book 1 adds every ``.js`` file of the static paths to every page
once the book has a ``_static/`` folder, and these scripts belong only on the widget pages
(myst-nb adds them there through ``nb_ipywidgets_js``).
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset

VENDOR = Path(__file__).resolve().parent.parent / "_vendor"


def _copy_vendor(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None or app.builder.format != "html":
        return
    source = VENDOR / "ipywidgets"
    if not source.is_dir():
        raise FileNotFoundError(f"vendored widget JavaScript missing: {source}")
    copy_asset(str(source), str(Path(app.outdir) / "_static" / "ipywidgets"))


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", _copy_vendor)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
