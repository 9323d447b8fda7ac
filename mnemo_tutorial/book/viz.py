"""Plotting helpers used by the chapters.

Every function draws one kind of figure, gives it a title and labelled axes, and returns the
matplotlib ``Figure`` (or ``Axes`` when it draws into an ``ax`` passed in), so a notebook can
show it, save it or test it. Nothing here changes a model or a tensor it is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import FancyBboxPatch

__all__ = [
    "method_diagram",
    "plot_codes",
    "plot_confusion",
    "plot_confusion_pair",
    "plot_decision_data",
    "plot_estimate_quality",
    "plot_lambda_grid",
    "plot_lambda_grids",
    "plot_loss_curves",
    "plot_metric_lines",
    "plot_per_class_accuracy",
    "plot_sweep",
    "plot_times",
    "plot_value_histograms",
    "show_images",
]


def _np(x: np.ndarray | torch.Tensor | Sequence[float]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _image_hwc(img: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) for one channel, (H, W, C) for three."""
    if img.ndim == 3 and img.shape[0] == 1:
        return img[0]
    if img.ndim == 3 and img.shape[0] == 3:
        return np.transpose(img, (1, 2, 0))
    if img.ndim == 2:
        return img
    raise ValueError(
        f"images must have shape (N, 1 or 3, H, W) or (N, H, W); got an image of shape {img.shape}"
    )


def _canvas(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure | SubFigure, Axes, bool]:
    """(figure, axes, whether this call created the figure): a new figure unless ``ax`` is given."""
    if ax is not None:
        return ax.figure, ax, False
    fig, new_ax = plt.subplots(figsize=figsize)
    return fig, new_ax, True


def _finish(
    fig: Figure | SubFigure,
    ax: Axes,
    own: bool,
    title: str,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: dict | None = None,
) -> Figure | Axes:
    """Title, axis labels and (with ``legend`` keyword arguments) a legend; lays out a figure
    this call created and returns it, else returns the ``Axes`` it drew into (the module's
    return contract)."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend is not None:
        ax.legend(**legend)
    if own and isinstance(fig, Figure):  # own: ``fig`` is the Figure that _canvas created
        fig.tight_layout()
        return fig
    return ax


def show_images(
    images: np.ndarray | torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 10,
    title: str = "",
    vrange: tuple[float, float] | None = None,
    cmap: str = "gray",
    size: float = 1.2,
) -> Figure:
    """A grid of images.

    images: (N, C, H, W) with C in {1, 3}, or (N, H, W). ``vrange`` = (vmin, vmax) for grey
    images (default: each image's own range; colour images are clipped to [0, 1] after a
    per-image min-max rescale when they leave that range).
    """
    arr = _np(images)
    if arr.ndim not in (3, 4) or len(arr) == 0:
        raise ValueError(
            f"images must have shape (N, C, H, W) or (N, H, W) with N >= 1; got {arr.shape}"
        )
    if ncols < 1:
        raise ValueError(f"ncols must be a positive integer; got {ncols!r}")
    n = len(arr)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(
            size * ncols,
            (size + (0.3 if titles is not None else 0.05)) * nrows + (0.5 if title else 0),
        ),
        squeeze=False,
    )
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        img = _image_hwc(arr[i])
        if img.ndim == 3:
            lo, hi = float(img.min()), float(img.max())
            if lo < 0 or hi > 1:
                img = (img - lo) / max(hi - lo, 1e-12)
            ax.imshow(np.clip(img, 0, 1))
        else:
            kw = {} if vrange is None else {"vmin": vrange[0], "vmax": vrange[1]}
            ax.imshow(img, cmap=cmap, **kw)
        if titles is not None and i < len(titles):
            ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_codes(
    codes: torch.Tensor,
    title: str = "Mnemonic codes, one per class",
    class_names: Sequence[str] | None = None,
) -> Figure:
    """The codes (C, *input_shape) as images, titled with their class."""
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(codes))]
    return show_images(
        codes, titles=[f"code {n}" for n in names], ncols=min(10, len(codes)), title=title
    )


def plot_value_histograms(
    samples: Mapping[str, np.ndarray | torch.Tensor],
    title: str = "Pixel values",
    bins: int = 60,
    log: bool = True,
) -> Figure:
    """Overlaid histograms (densities, log scale by default) of the values in each named tensor."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, v in samples.items():
        ax.hist(_np(v).ravel(), bins=bins, density=True, alpha=0.5, label=name, log=log)
    _finish(
        fig, ax, True, title, "pixel value", "density" + (" (log scale)" if log else ""), legend={}
    )
    return fig


def plot_loss_curves(
    deltas: np.ndarray | Sequence[float],
    curves: Mapping[str, np.ndarray | Sequence[float]],
    quadratic: Mapping[str, np.ndarray | Sequence[float]] | None = None,
    title: str = "Loss change when one parameter is perturbed",
    xlabel: str = r"perturbation $\delta$",
    ylabel: str = r"$L(w + \delta e_i) - L(w)$",
    marker: tuple[float, float] | None = None,
    ax: Axes | None = None,
) -> Figure | Axes:
    """One line per named curve (same length as ``deltas``); optional dashed quadratic
    approximations with the same names; optional point ``marker`` = (delta, value)."""
    fig, ax, own = _canvas(ax, (6, 3.6))
    d = _np(deltas)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, c) in enumerate(curves.items()):
        ax.plot(d, _np(c), color=colors[i % len(colors)], label=name, lw=2)
        if quadratic is not None and name in quadratic:
            ax.plot(
                d,
                _np(quadratic[name]),
                color=colors[i % len(colors)],
                ls="--",
                lw=1,
                label=f"{name}: quadratic model",
            )
    if marker is not None:
        ax.plot([marker[0]], [marker[1]], "ko", ms=7, zorder=5)
    ax.axhline(0, color="grey", lw=0.5)
    return _finish(fig, ax, own, title, xlabel, ylabel, legend={"fontsize": 8})


def plot_decision_data(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    w: np.ndarray | torch.Tensor | None = None,
    title: str = "Toy data",
    ax: Axes | None = None,
) -> Figure | Axes:
    """Scatter of 2-D points x (N, 2) coloured by label y (N,), with the boundary w . x = 0."""
    fig, ax, own = _canvas(ax, (4.5, 4))
    xa, ya = _np(x), _np(y)
    for label, marker in ((0, "o"), (1, "^")):
        sel = ya == label
        ax.scatter(xa[sel, 0], xa[sel, 1], s=10, marker=marker, alpha=0.6, label=f"y = {label}")
    if w is not None:
        wa = _np(w).ravel()
        xs = np.linspace(xa[:, 0].min(), xa[:, 0].max(), 50)
        if abs(wa[1]) > 1e-12:
            ax.plot(xs, -wa[0] * xs / wa[1], "k-", lw=1, label="decision boundary")
            ax.set_ylim(xa[:, 1].min() - 0.5, xa[:, 1].max() + 0.5)
    return _finish(fig, ax, own, title, "$x_1$", "$x_2$", legend={"fontsize": 8})


def plot_confusion(
    cm: np.ndarray,
    title: str = "Confusion matrix",
    class_names: Sequence[str] | None = None,
    highlight: Sequence[int] = (),
    ax: Axes | None = None,
) -> Figure | Axes:
    """A (C, C) confusion matrix (row = true class, column = predicted) as row percentages,
    with the rows of the classes in ``highlight`` (e.g. forgotten ones) outlined."""
    cm = np.asarray(cm, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (C, C) matrix; got shape {cm.shape}")
    fig, ax, own = _canvas(ax, (4.5, 4))
    rows = cm.sum(1, keepdims=True)
    pct = 100.0 * cm / np.where(rows > 0, rows, 1)
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    c = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    for r in highlight:
        ax.add_patch(plt.Rectangle((-0.5, r - 0.5), c, 1, fill=False, ec="red", lw=1.5))
    if c <= 12:
        for i in range(c):
            for j in range(c):
                if pct[i, j] >= 1:
                    ax.text(
                        j,
                        i,
                        f"{pct[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if pct[i, j] > 60 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of the true class")
    return _finish(fig, ax, own, title, "predicted class", "true class")


def plot_confusion_pair(
    cm_before: np.ndarray,
    cm_after: np.ndarray,
    forget: Sequence[int],
    class_names: Sequence[str] | None = None,
    titles: tuple[str, str] = ("before forgetting", "after forgetting"),
) -> Figure:
    """Two confusion matrices side by side, the forgotten classes' rows outlined."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    plot_confusion(cm_before, titles[0], class_names, forget, ax=axes[0])
    plot_confusion(cm_after, titles[1], class_names, forget, ax=axes[1])
    fig.suptitle(f"Test-set confusion matrices, forgetting class(es) {list(forget)}")
    fig.tight_layout()
    return fig


def plot_per_class_accuracy(
    per_class: Mapping[str, Sequence[float]],
    forget: Sequence[int] = (),
    title: str = "Test accuracy per class",
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure | Axes:
    """Grouped bars: one group per class, one bar per named model; forgotten classes shaded."""
    names = list(per_class)
    if not names:
        raise ValueError("per_class must hold at least one model's accuracies")
    fig, ax, own = _canvas(ax, (8, 3.4))
    c = len(per_class[names[0]])
    width = 0.8 / len(names)
    xs = np.arange(c)
    for f in forget:
        ax.axvspan(f - 0.45, f + 0.45, color="red", alpha=0.08)
    for i, n in enumerate(names):
        ax.bar(
            xs - 0.4 + width * (i + 0.5),
            np.nan_to_num(_np(per_class[n]).astype(float)),
            width,
            label=n,
        )
    ax.set_xticks(xs)
    ax.set_xticklabels(list(class_names) if class_names is not None else [str(i) for i in range(c)])
    ax.set_ylim(0, 105)
    xlabel = "class" + (" (forgotten shaded)" if len(forget) else "")
    return _finish(
        fig,
        ax,
        own,
        title,
        xlabel,
        "test accuracy (%)",
        legend={"fontsize": 8, "loc": "lower right"},
    )


def plot_lambda_grid(
    lambda1s: Sequence[float],
    lambda2s: Sequence[float],
    values: np.ndarray,
    title: str,
    marks: Mapping[str, tuple[float, float]] | None = None,
    cbar_label: str = "%",
    vmin: float = 0.0,
    vmax: float = 100.0,
    cmap: str = "viridis",
    ax: Axes | None = None,
) -> Figure | Axes:
    """Heatmap of ``values`` (len(lambda1s), len(lambda2s)) with lambda2 on the x axis and
    lambda1 on the y axis (both log-spaced), and named points ``marks`` = {label: (l1, l2)}."""
    v = np.asarray(values, dtype=float)
    if v.shape != (len(lambda1s), len(lambda2s)):
        raise ValueError(
            "values must have shape (len(lambda1s), len(lambda2s)) = "
            f"{(len(lambda1s), len(lambda2s))}; got {v.shape}"
        )
    fig, ax, own = _canvas(ax, (5.5, 4.5))
    im = ax.imshow(v, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    l1 = np.log10(np.asarray(lambda1s, dtype=float))
    l2 = np.log10(np.asarray(lambda2s, dtype=float))
    ax.set_xticks(range(len(l2)))
    ax.set_yticks(range(len(l1)))
    ax.set_xticklabels([f"{e:g}" for e in l2], fontsize=7, rotation=90)
    ax.set_yticklabels([f"{e:g}" for e in l1], fontsize=7)
    styles = [("*", "red"), ("o", "white"), ("s", "orange"), ("D", "magenta")]
    for i, (label, (a, b)) in enumerate((marks or {}).items()):
        # position on the (log-spaced, uniform) index axes by interpolation
        xi = np.interp(np.log10(b), l2, np.arange(len(l2)))
        yi = np.interp(np.log10(a), l1, np.arange(len(l1)))
        m, col = styles[i % len(styles)]
        ax.plot([xi], [yi], m, color=col, ms=12 if m == "*" else 8, mec="black", label=label)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=cbar_label)
    legend = {"fontsize": 7, "loc": "upper left", "framealpha": 0.8} if marks else None
    return _finish(
        fig, ax, own, title, r"$\log_{10}\lambda_2$", r"$\log_{10}\lambda_1$", legend=legend
    )


def plot_lambda_grids(
    lambda1s: Sequence[float],
    lambda2s: Sequence[float],
    e_f: np.ndarray,
    a_r: np.ndarray,
    marks: Mapping[str, tuple[float, float]] | None = None,
    title: str = "",
    include_sum: bool = False,
) -> Figure:
    """E_F and A_R heatmaps over the (lambda1, lambda2) grid side by side (and E_F + A_R,
    the paper's grid-search score, with ``include_sum``)."""
    n = 3 if include_sum else 2
    fig, axes = plt.subplots(1, n, figsize=(5.6 * n, 4.6))
    plot_lambda_grid(
        lambda1s,
        lambda2s,
        e_f,
        "$E_F$ (error on the forgotten class)",
        marks,
        "$E_F$ (%)",
        ax=axes[0],
    )
    plot_lambda_grid(
        lambda1s,
        lambda2s,
        a_r,
        "$A_R$ (accuracy on the other classes)",
        marks,
        "$A_R$ (%)",
        ax=axes[1],
    )
    if include_sum:
        plot_lambda_grid(
            lambda1s,
            lambda2s,
            np.asarray(e_f) + np.asarray(a_r),
            "$E_F + A_R$",
            marks,
            "$E_F + A_R$ (%)",
            vmin=0,
            vmax=200,
            cmap="magma",
            ax=axes[2],
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_estimate_quality(
    ks: Sequence[int],
    estimates: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    references: Mapping[str, float] | None = None,
    title: str = "How close is each estimate to the oracle?",
    xlabel: str = "real training samples per class, k",
    ylabel: str = "similarity to the oracle",
    ax: Axes | None = None,
) -> Figure | Axes:
    """Lines of mean +- spread against k (log axis) for each named estimate
    {name: (means, spreads)}, and horizontal lines for reference values {name: value}."""
    fig, ax, own = _canvas(ax, (6, 3.8))
    kk = np.asarray(ks, dtype=float)
    for name, (mean, spread) in estimates.items():
        m, s = _np(mean).astype(float), _np(spread).astype(float)
        ax.plot(kk, m, "o-", label=name)
        ax.fill_between(kk, m - s, m + s, alpha=0.2)
    colors = ["red", "purple", "green", "black"]
    for i, (name, val) in enumerate((references or {}).items()):
        ax.axhline(val, color=colors[i % len(colors)], ls="--", label=name)
    ax.set_xscale("log")
    return _finish(fig, ax, own, title, xlabel, ylabel, legend={"fontsize": 8})


def plot_times(
    seconds: Mapping[str, float],
    title: str = "Wall-clock time",
    log: bool = True,
    ax: Axes | None = None,
) -> Figure | Axes:
    """Horizontal bars of named durations in seconds (log scale by default), each labelled."""
    names = list(seconds)
    vals = [float(seconds[n]) for n in names]
    if any(v <= 0 for v in vals) and log:
        raise ValueError("seconds must be positive for a log scale")
    fig, ax, own = _canvas(ax, (7, 0.6 + 0.5 * len(seconds)))
    bars = ax.barh(names, vals, color="tab:blue")
    for b, v in zip(bars, vals):
        ax.text(
            b.get_width(), b.get_y() + b.get_height() / 2, f" {v:.3g} s", va="center", fontsize=8
        )
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(vals) / 3, max(vals) * 8)
    ax.invert_yaxis()
    return _finish(fig, ax, own, title, "seconds" + (" (log scale)" if log else ""))


def plot_metric_lines(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    ylabel: str = "%",
    ylim: tuple[float, float] | None = (0, 105),
    logx: bool = False,
    ax: Axes | None = None,
) -> Figure | Axes:
    """One marked line per named series against ``x``."""
    fig, ax, own = _canvas(ax, (6, 3.6))
    for name, vals in series.items():
        ax.plot(list(x), _np(vals), "o-", label=name)
    if logx:
        ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    return _finish(fig, ax, own, title, xlabel, ylabel, legend={"fontsize": 8})


def plot_sweep(
    classes: Sequence[int],
    results: Mapping[str, Mapping[str, Sequence[float]]],
    paper: Mapping[str, tuple[float, float]] | None = None,
    title: str = "Forgetting each class in turn",
) -> Figure:
    """Two panels (E_F, A_R) with one marked line per named method
    {method: {"E_F": [...], "A_R": [...]}} over ``classes``; ``paper`` = {"E_F": (lo, hi),
    "A_R": (lo, hi)} draws the range the paper reports as a band."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("E_F", "A_R")):
        for name, res in results.items():
            ax.plot(list(classes), _np(res[metric]), "o-", label=name)
        if paper is not None and metric in paper:
            lo, hi = paper[metric]
            ax.axhspan(
                lo - 0.25 if lo == hi else lo,
                hi + 0.25 if lo == hi else hi,
                color="grey",
                alpha=0.3,
                label="range reported in the paper",
            )
        ax.set_xticks(list(classes))
        ax.set_ylim(-3, 103)
        ax.set_xlabel("forgotten class")
        ax.set_ylabel(f"${metric}$ (%)")
        ax.set_title(
            {
                "E_F": "$E_F$: error on the forgotten class",
                "A_R": "$A_R$: accuracy on the other classes",
            }[metric]
        )
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# (x, y, width, height, title, body lines) of the boxes in method_diagram, in data units
_DIAGRAM_BOXES: dict[str, tuple[float, float, float, float, str, tuple[str, ...]]] = {
    "train": (
        0.2,
        3.3,
        3.6,
        1.7,
        "Training with mnemonic codes",
        (
            r"one random code $\xi_c$ per class",
            r"each sample swapped for its class's",
            r"code with probability $t_\mathrm{mix}$",
        ),
    ),
    "model": (
        4.6,
        3.3,
        3.4,
        1.7,
        "Trained model",
        (
            r"weights $w$, classes $1, \ldots, C$",
            r"the codes $\xi_1, \ldots, \xi_C$",
            "are stored with it",
        ),
    ),
    "forgotten": (
        9.05,
        3.3,
        2.75,
        1.7,
        "Forgotten model",
        (r"forget class(es) $F$", "no training data read", "one step, no training"),
    ),
    "fisher": (
        0.2,
        0.55,
        2.75,
        1.8,
        "Fisher of the codes",
        (
            r"$g_c = (\partial L(\xi_c, c) / \partial w)^2$",
            "normalised to sum 1",
            r"$f_F$: mean over forgotten $c$",
            r"$f_R$: mean over the others",
        ),
    ),
    "ratio": (
        3.15,
        0.55,
        2.75,
        1.8,
        "Sensitivity ratio",
        (
            r"$\eta_i = f_{F,i} \,/\, (f_{R,i} + 10^{-16})$",
            "large: weight matters for",
            "the forgotten class only",
        ),
    ),
    "alpha": (
        6.1,
        0.55,
        2.75,
        1.8,
        "Step size per tensor $l$",
        (
            r"$\alpha_l = \min(\lambda_1,\ \lambda_2 / \max_{i \in l}\, \eta_i)$",
            r"$(\lambda_1, \lambda_2)$: fixed (paper)",
            "or chosen on the codes",
        ),
    ),
    "step": (
        9.05,
        0.55,
        2.75,
        1.8,
        "One step",
        (
            r"$w_i \leftarrow w_i + s\,\alpha_l\,\eta_i$",
            r"sign $s \in \{+1, -1\}$: the one",
            "that does better on the codes",
        ),
    ),
}
# arrows between boxes: (from, to, start side, end side)
_DIAGRAM_ARROWS = (
    ("train", "model", "right", "left"),
    ("model", "fisher", "bottom", "top"),
    ("fisher", "ratio", "right", "left"),
    ("ratio", "alpha", "right", "left"),
    ("alpha", "step", "right", "left"),
    ("step", "forgotten", "top", "bottom"),
)


def _box_anchor(name: str, side: str) -> tuple[float, float]:
    """The middle of one side ("left", "right", "top", "bottom") of a box of the diagram."""
    x, y, w, h, _, _ = _DIAGRAM_BOXES[name]
    return {
        "left": (x, y + h / 2),
        "right": (x + w, y + h / 2),
        "top": (x + w / 2, y + h),
        "bottom": (x + w / 2, y),
    }[side]


def _draw_box(ax: Axes, name: str) -> None:
    """One box of the method diagram: a rounded rectangle, its bold title and its lines."""
    x, y, w, h, head, lines = _DIAGRAM_BOXES[name]
    colours = {"train": "#dbe9f6", "model": "#dbe9f6", "forgotten": "#fde0c5"}
    box = FancyBboxPatch(
        (x, y),
        w,
        h,
        boxstyle="round,pad=0.02,rounding_size=0.12",
        facecolor=colours.get(name, "#e5f5e0"),
        edgecolor="0.3",
    )
    ax.add_patch(box)
    ax.text(x + w / 2, y + h - 0.22, head, ha="center", va="top", fontsize=10.5, weight="bold")
    body = "\n".join(lines)
    ax.text(x + w / 2, y + h - 0.62, body, ha="center", va="top", fontsize=9, linespacing=1.5)


def method_diagram(title: str = "One-shot unlearning with mnemonic codes") -> Figure:
    """The method as boxes and arrows: training with mnemonic codes mixed into the batches, the
    trained model with its stored codes, the Fisher of the codes (forgotten classes f_F,
    remaining classes f_R, each code's squared gradients normalised to sum 1 as ``forget``
    does by default), the sensitivity ratio eta = f_F / (f_R + 1e-16), the per-tensor step
    size alpha_l = min(lambda1, lambda2 / max eta) and the one step
    w <- w + s * alpha_l * eta (Yamashita et al., ACML 2024; the package's
    :mod:`mnemo_tutorial.core.step`).

    The top row is the training phase, which reads the data; the bottom row is the forgetting
    phase, which reads only the model and its codes. Every label is a text artist of the
    figure's single (axis-free) ``Axes``.
    """
    fig, ax = plt.subplots(figsize=(12, 5.6))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 5.6)
    ax.axis("off")
    for name in _DIAGRAM_BOXES:
        _draw_box(ax, name)
    arrow = {"arrowstyle": "-|>", "color": "0.2", "lw": 1.6, "shrinkA": 2, "shrinkB": 2}
    for start, end, side_a, side_b in _DIAGRAM_ARROWS:
        ax.annotate(
            "", xy=_box_anchor(end, side_b), xytext=_box_anchor(start, side_a), arrowprops=arrow
        )
    ax.axhline(2.85, color="0.6", ls="--", lw=0.8)
    ax.text(0.2, 5.3, "training phase: reads the data", fontsize=9, style="italic")
    ax.text(
        0.2,
        0.12,
        "forgetting phase: reads the model and its codes only, no data",
        fontsize=9,
        style="italic",
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig
