"""ipywidgets explorers used by the chapters.

Each function returns a widget (an ``ipywidgets.interactive``: controls above an output
area) that a notebook displays as its cell's last expression. The output is drawn once when
the widget is built, so a notebook executed with ``store_widget_state`` shows that first view
in the static book; moving the controls needs a live kernel (Colab, Jupyter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from mnemo_tutorial.book.viz import plot_loss_curves, plot_per_class_accuracy
from mnemo_tutorial.core.forget import forget
from mnemo_tutorial.core.settings import ForgetSettings
from mnemo_tutorial.evaluation.metrics import ForgetMetrics, evaluate

__all__ = [
    "forget_explorer",
    "perturbation_explorer",
]


def _perturbation_grid(
    curvature: Mapping[str, float], deltas: Sequence[float] | np.ndarray
) -> tuple[list[str], np.ndarray]:
    """The directions of ``curvature`` and ``deltas`` as a 1-D float grid, both checked."""
    names = list(curvature)
    if not names:
        raise ValueError("curvature must name at least one direction")
    d = np.asarray(deltas, dtype=float)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"deltas must be a 1-D grid of at least 2 values; got shape {d.shape}")
    return names, d


def _delta_slider(d: np.ndarray, value: float) -> widgets.FloatSlider:
    """A slider over the range of the grid ``d`` in 40 steps, starting at ``value``."""
    return widgets.FloatSlider(
        value=value,
        min=float(d.min()),
        max=float(d.max()),
        step=float((d.max() - d.min()) / 40),
        description="delta",
        continuous_update=False,
    )


def perturbation_explorer(
    loss_along: Callable[[str, float], float],
    curvature: Mapping[str, float],
    deltas: Sequence[float] | np.ndarray,
    base_loss: float,
    start: tuple[str, float] | None = None,
) -> widgets.interactive:
    """Perturb one parameter at a time and watch the loss.

    ``loss_along(direction, delta)`` is the loss after moving the parameter ``direction``
    (a key of ``curvature``) by ``delta``; ``curvature[direction]`` is its diagonal Fisher
    value F, drawn as the quadratic model ``F * delta**2 / 2``; ``base_loss`` is the
    unperturbed loss. The curves over ``deltas`` are computed once, when the widget is built.
    """
    names, d = _perturbation_grid(curvature, deltas)
    curves = {n: np.array([loss_along(n, float(v)) - base_loss for v in d]) for n in names}
    quad = {n: 0.5 * float(curvature[n]) * d**2 for n in names}
    direction0, delta0 = start if start is not None else (names[0], float(d[-1]) / 2)
    if direction0 not in names:
        raise ValueError(f"start direction must be one of {', '.join(names)}; got {direction0!r}")

    def show(direction: str, delta: float) -> None:
        change = loss_along(direction, delta) - base_loss
        fig = plot_loss_curves(
            d,
            {direction: curves[direction]},
            {direction: quad[direction]},
            title=f"Perturbing {direction}: loss change {change:+.4f}",
            marker=(delta, change),
        )
        ax = fig.axes[0] if isinstance(fig, Figure) else fig  # a Figure: no ax was passed
        top = max(float(max(c.max() for c in curves.values())), 1e-6)
        ax.set_ylim(-0.05 * top, 1.05 * top)
        plt.show()
        quad_change = 0.5 * float(curvature[direction]) * delta**2
        print(
            f"delta = {delta:+.2f} along {direction}: "
            f"loss {base_loss:.4f} -> {base_loss + change:.4f} "
            f"(quadratic model: {base_loss + quad_change:.4f})"
        )

    return widgets.interactive(
        show,
        direction=widgets.Dropdown(options=names, value=direction0, description="parameter"),
        delta=_delta_slider(d, delta0),
    )


def _status_line(report: Any) -> str:
    """ "status: ok", or "status: failed" with what failed and the code margins after the step."""
    if report.status == "ok":
        return "status: ok"
    diag = report.details.get("diagnosis")
    if not diag:
        return "status: failed"
    what = "the held-out check failed" if diag["criterion_met"] else f"not met: {diag['criterion']}"
    return (
        f"status: failed ({what}; forget-code margin {diag['forget_code_margin']['after']:.3g}, "
        f"remaining-code margin {diag['remaining_code_margin']['after']:.3g})"
    )


def forget_explorer(
    model: nn.Module,
    codes: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    start: int = 0,
    settings: ForgetSettings | None = None,
    on_failure: str = "return",
) -> widgets.interactive:
    """Pick a class to forget; see the per-class test accuracy before and after.

    ``codes``: the model's :class:`~mnemo_tutorial.core.codes.MnemonicCodes` (or a (C, ...) tensor);
    x (N, *input_shape), y (N,): the evaluation split. Each choice runs
    :func:`~mnemo_tutorial.core.forget.forget` (with ``settings``) on ``model``, which is left
    unchanged; results are cached per class. The tensors may live on any device (evaluation
    and forgetting move them to the model's). A step whose criterion is not met is shown with
    its status "failed" and the code margins (``on_failure="return"`` by default), not
    raised: exploring settings that fail is part of exploring.
    """
    if not 0 <= int(start) < num_classes:
        raise ValueError(f"start must be a class index in 0..{num_classes - 1}; got {start!r}")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    before = evaluate(model, x, y, (), num_classes)["per_class"]
    cache: dict[int, tuple[ForgetMetrics, Any]] = {}

    def show(target: int) -> None:
        if target not in cache:
            res = forget(model, codes, [target], settings, on_failure=on_failure)
            cache[target] = (evaluate(res.model, x, y, [target], num_classes), res.report)
        m, rep = cache[target]
        plot_per_class_accuracy(
            {"before": before, "after": m["per_class"]},
            [target],
            title=f"Forgetting class {names[target]}: E_F {m['E_F']:.1f} %, A_R {m['A_R']:.1f} %",
            class_names=names,
        )
        plt.show()
        print(f"forgot class {names[target]} in {1000 * rep.seconds:.0f} ms")
        print(
            f"lambda1 = {rep.lambda1:.3g}, lambda2 = {rep.lambda2:.3g}, "
            f"sign {rep.sign:+d} ({rep.selection})"
        )
        print(_status_line(rep))

    return widgets.interactive(
        show,
        target=widgets.Dropdown(
            options=[(n, i) for i, n in enumerate(names)], value=int(start), description="forget"
        ),
    )
