"""The method diagram of mnemo_tutorial.book.viz: a Figure whose labels name every stage of the
method and write the step as the package applies it (mnemo_tutorial.core.step)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mnemo_tutorial.book import viz  # noqa: E402


def _texts(fig: Figure) -> list[str]:
    """Every text artist of the figure: its axes' texts and the figure's own (suptitle)."""
    found = [t.get_text() for ax in fig.axes for t in ax.texts]
    found += [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        found.append(fig._suptitle.get_text())
    return found


def test_method_diagram_returns_a_figure_with_the_method_labelled():
    fig = viz.method_diagram()
    try:
        assert isinstance(fig, Figure)
        texts = _texts(fig)
        joined = "\n".join(texts)
        for stage in (
            "Training with mnemonic codes",
            "Trained model",
            "Fisher of the codes",
            "Sensitivity ratio",
            "Step size per tensor $l$",
            "One step",
            "Forgotten model",
        ):
            assert stage in texts, f"no text artist {stage!r}"
        for formula in (
            r"$t_\mathrm{mix}$",  # codes mixed into the batches
            r"$f_F$",  # Fisher of the forgotten classes' codes
            r"$f_R$",  # ... of the remaining classes' codes
            r"$\eta_i = f_{F,i} \,/\, (f_{R,i} + 10^{-16})$",
            r"$\alpha_l = \min(\lambda_1,\ \lambda_2 / \max_{i \in l}\, \eta_i)$",
            r"$w_i \leftarrow w_i + s\,\alpha_l\,\eta_i$",  # core.step.apply_step
            r"sign $s \in \{+1, -1\}$",
        ):
            assert formula in joined, f"no label contains {formula!r}"
        assert "One-shot unlearning with mnemonic codes" in texts, "the figure has a title"
        assert len(fig.axes) == 1 and not fig.axes[0].axison, "a drawing, not a chart"
        fig.canvas.draw()  # every mathtext label parses and renders
    finally:
        plt.close(fig)


def test_method_diagram_is_exported_and_documented():
    assert "method_diagram" in viz.__all__
    doc = viz.method_diagram.__doc__ or ""
    assert "f_F" in doc and "f_R" in doc and "alpha_l" in doc


def test_method_diagram_takes_a_title():
    fig = viz.method_diagram(title="The method")
    try:
        assert fig._suptitle is not None and fig._suptitle.get_text() == "The method"
    finally:
        plt.close(fig)
