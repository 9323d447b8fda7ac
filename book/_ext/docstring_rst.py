"""Sphinx extension for the API page: lets the package's docstrings stay plain text.

The docstrings write tensor shapes the way the code does, ``(N, *input_shape)`` or
``f(x, **kwargs)``; in reStructuredText a bare ``*`` before a name opens emphasis. This hook
escapes such stars (outside inline literals, and only where no closing star makes them real
emphasis), and inserts the blank line that reStructuredText wants where indentation ends a
list or block. It runs after napoleon, on the reStructuredText that autodoc renders.
"""
from __future__ import annotations

import re

_LITERAL = re.compile(r"(``.+?``|`[^`]+`)")
_STAR_RUN = re.compile(r"(?<![\\*\w])(\*{1,2})(?=[A-Za-z_])")


def _escape_segment(text: str) -> str:
    out, pos = [], 0
    for m in _STAR_RUN.finditer(text):
        run = m.group(1)
        closing = re.compile(re.escape(run) + r"(?=\S)(.*?\S)" + re.escape(run) + r"(?![\w*])")
        if closing.match(text, m.start()):
            continue  # real emphasis or strong text: leave it
        out.append(text[pos:m.start()])
        out.append("\\*" * len(run))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def escape_stars(line: str) -> str:
    """Escape ``*`` / ``**`` that start a name (``*shape``, ``**kwargs``) outside inline literals."""
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else _escape_segment(p) for i, p in enumerate(parts))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def fix_lines(lines: list[str]) -> list[str]:
    """Escaped stars, and a blank line wherever a non-blank line is less indented than the one before."""
    out: list[str] = []
    in_literal_block = False
    block_indent = 0
    for line in lines:
        if in_literal_block and line.strip() and _indent(line) <= block_indent:
            in_literal_block = False
        if out and line.strip() and out[-1].strip() and _indent(line) < _indent(out[-1]):
            out.append("")
        out.append(line if in_literal_block else escape_stars(line))
        if line.rstrip().endswith("::") and not in_literal_block:
            in_literal_block, block_indent = True, _indent(line)
    return out


def _process(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = fix_lines(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
