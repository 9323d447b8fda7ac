"""Forgetting rehearsed while the training data is at hand: which tensors the step should move
on this model, and which classes it would forget, measured, not assumed.

The one-shot step is data-free when it is used, so nothing checks on data that forgetting a
code forgot its class. Where it works, the output layer's part of the step does the forgetting
(``scripts/robustness.py``, the robustness chapter); whether that part lowers the class's logit
on the class's images, and not only on its code, depends on the model: it is guaranteed only
when the output layer's inputs are non-negative, and on models with signed features it holds
for some classes and not others. A property of the architecture cannot say which.

:func:`rehearse` therefore forgets each class once with each candidate (``"head"``: the
output layer; ``"all"``: every tensor, the paper's; ``"head-bias"``: the output layer's bias
alone), everything else at the defaults, on a sample of the training data
(:data:`~mnemo_tutorial.core.alignment.SAMPLES_PER_CLASS` images a class), and records per
class E_F, the drop of A_R, the step's status and whether the class was forgotten on target:
status "ok" (``forget`` would not raise ``ForgetFailed``) and the target (:data:`TARGET_EF`,
:data:`TARGET_DROP`) met. Of the method's own steps (:data:`DEFAULT_CANDIDATES`), the one that
does so for more classes becomes the model's default (ties: in the order above). The bias
candidate is the one whose effect does not depend on the features' signs: it lowers a class's
logit by the same amount on every input, its code and its images alike, so it transfers where
the others do not; it is also an edit of the output that removes nothing from the features
(the ``suppress`` control in the method's form), so it is rehearsed, and allowed when asked for
by name, but never a default. :func:`~mnemo_tutorial.core.forget.forget` reads
the record from the codes (``codes.alignment.rehearsal``): with ``ForgetSettings(params=
"auto")`` (the default) it moves the recorded tensors, and it refuses a class whose rehearsal
missed with :class:`RehearsalMissed`, before any step. For rehearsed settings the measurement
decides, not the alignment record's cosine, which only predicts it. The data are used once, at
training time; forgetting stays data-free. A rehearsal covers one class at a time: a set of
classes is allowed when each was forgotten on target alone, which does not promise the set will
be.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mnemo_tutorial.core.alignment import SAMPLES_PER_CLASS, ForgetRefused, per_class_sample
from mnemo_tutorial.core.step import resolve_params

__all__ = [
    "CANDIDATES",
    "DEFAULT_CANDIDATES",
    "TARGET_DROP",
    "TARGET_EF",
    "Rehearsal",
    "RehearsalMissed",
    "rehearse",
    "rehearsed_settings",
]

#: The target a rehearsed class must meet: E_F at least this (percent of its samples no longer
#: predicted as the class) ...
TARGET_EF = 99.0
#: ... and A_R (accuracy on the other classes' samples) down by at most this many points.
TARGET_DROP = 2.0
#: What the rehearsal tries, in order of preference on a tie.
CANDIDATES = ("head", "all", "head-bias")
#: The candidates that can become a model's default: the method's own steps. The bias edit is
#: rehearsed (so a caller who asks for it knows what it does on this model) but never chosen
#: for a caller who did not ask: it is the suppress control, not the method.
DEFAULT_CANDIDATES = ("head", "all")


@dataclass(frozen=True)
class Rehearsal:
    """Per candidate (:data:`CANDIDATES`) a tuple over classes of ``{"E_F", "A_R_drop",
    "status", "met"}`` (``cells``); ``params`` the candidate chosen as the model's default;
    ``settings`` the other forget settings rehearsed (``ForgetSettings.describe()`` without
    ``params``); ``samples`` the images scored."""

    params: str
    cells: dict[str, tuple[dict[str, Any], ...]]
    settings: dict[str, Any]
    samples: int

    def met(self, params: str, c: int) -> bool:
        """Whether forgetting class c with ``params`` met the target in the rehearsal."""
        return bool(self.cells[params][int(c)]["met"])

    def count(self, params: str) -> int:
        """Classes forgotten on target with ``params``."""
        return sum(bool(cell["met"]) for cell in self.cells[params])

    def covers(self, params: Any, settings: dict[str, Any]) -> bool:
        """Whether a forget call with ``params`` and ``settings`` (describe() without params)
        is one the rehearsal ran."""
        return isinstance(params, str) and params in self.cells and settings == self.settings

    def describe(self) -> str:
        """One line: the chosen tensors and how many classes each candidate forgot on target."""
        n = len(self.cells[self.params])
        counts = ", ".join(f"{k} {self.count(k)}/{n}" for k in self.cells)
        note = " (an edit of the outputs alone: the features keep the class)"
        return (
            f"rehearsed on {self.samples} training images: on target (E_F >= {TARGET_EF:g}, "
            f"A_R drop <= {TARGET_DROP:g}) {counts}; default params={self.params!r}"
            + (note if self.params == "head-bias" else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rehearsal:
        return cls(
            params=str(d["params"]),
            cells={k: tuple(dict(c) for c in v) for k, v in d["cells"].items()},
            settings=dict(d["settings"]),
            samples=int(d["samples"]),
        )


class RehearsalMissed(ForgetRefused):
    """``forget`` refused: when the model was trained, forgetting these classes (``.classes``)
    with these settings missed the target on training data (``.rehearsal`` the record)."""

    def __init__(self, message: str, classes: list[int], rehearsal: Rehearsal):
        super().__init__(message, classes)
        self.rehearsal = rehearsal


def rehearsed_settings(settings: Any) -> dict[str, Any]:
    """What a rehearsal compares to decide whether it ran a forget call's settings: the
    settings' description without ``params``."""
    return {k: v for k, v in settings.describe().items() if k != "params"}


def _rehearse_one(
    model: nn.Module,
    codes: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    params: str,
    progress: bool,
) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """Forget each class alone with ``params`` (defaults otherwise) and score it on (x, y)."""
    from tqdm.auto import tqdm

    from mnemo_tutorial.core.forget import CodesUnchecked, forget
    from mnemo_tutorial.core.settings import ForgetSettings

    # metrics loads scikit-learn, needed only when a rehearsal runs
    from mnemo_tutorial.evaluation.metrics import forget_metrics, predict

    settings = ForgetSettings(params=params)
    num = int(codes.shape[0])
    before = predict(model, x)
    cells = []
    for c in tqdm(range(num), desc=f"rehearse params={params}", disable=not progress, leave=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CodesUnchecked)
            res = forget(model, codes, [c], settings, on_failure="return", require_alignment=False)
        after = forget_metrics(predict(res.model, x), y, [c], num)
        e_f = after["E_F"]
        drop = forget_metrics(before, y, [c], num)["A_R"] - after["A_R"]
        # on target as forget would return it: a step that fails its own criterion raises
        met = res.report.status == "ok" and not (e_f < TARGET_EF) and drop <= TARGET_DROP
        cells.append({"E_F": e_f, "A_R_drop": drop, "status": res.report.status, "met": met})
    return tuple(cells), rehearsed_settings(settings)


def rehearse(
    model: nn.Module,
    codes: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    candidates: Sequence[str] | None = None,
    samples_per_class: int = SAMPLES_PER_CLASS,
    seed: int = 0,
    progress: bool = False,
) -> Rehearsal:
    """Forget each class of ``model`` once per candidate on a sample of (x, y) and record it.

    Args:
        model: a classifier trained with ``codes`` (left as it was).
        codes: (C, *input_shape), code c of class c.
        x, y: training samples and labels; at most ``samples_per_class`` of each class are
            scored (drawn with a generator seeded by ``seed``).
        candidates: ``params`` values to try (each one of :data:`CANDIDATES`), in order of
            preference on a tie (the default is one of :data:`DEFAULT_CANDIDATES` when any is
            tried); None: :data:`CANDIDATES` less those the model lacks (an output
            layer without a bias has no ``"head-bias"``).
        progress: show a progress bar per candidate (one step per class).

    Returns:
        :class:`Rehearsal`. Costs one one-shot step per class and candidate, and as many
        passes over the sample plus one per candidate. A
        class without samples in ``y`` scores E_F NaN and counts as met (nothing says
        otherwise), as in the alignment record.
    """
    if isinstance(samples_per_class, bool) or int(samples_per_class) < 1:
        raise ValueError(f"samples_per_class must be a positive integer; got {samples_per_class}")
    if len(x) != len(y):
        raise ValueError(f"x and y must hold as many samples; got {len(x)} and {len(y)}")
    if candidates is None:
        candidates = [p for p in CANDIDATES if _applies(model, p)]
    bad = [p for p in candidates if p not in CANDIDATES]
    if bad or not candidates:
        raise ValueError(
            f"candidates must be a non-empty subset of {CANDIDATES}; got {candidates!r}"
        )
    for p in candidates:
        resolve_params(model, p)  # a candidate the model lacks: a clear error, before any step
    idx = torch.cat(per_class_sample(y, int(codes.shape[0]), samples_per_class, seed))
    xs, ys = x[idx], y.cpu()[idx]
    was_training = model.training
    model.eval()
    try:
        runs = {p: _rehearse_one(model, codes, xs, ys, p, progress) for p in candidates}
    finally:
        model.train(was_training)
    cells = {p: run[0] for p, run in runs.items()}
    pool = [p for p in candidates if p in DEFAULT_CANDIDATES] or list(candidates)
    best = max(pool, key=lambda p: (sum(c["met"] for c in cells[p]), -pool.index(p)))
    return Rehearsal(params=best, cells=cells, settings=runs[best][1], samples=len(ys))


def _applies(model: nn.Module, params: str) -> bool:
    try:
        resolve_params(model, params)
    except ValueError:
        return False
    return True


def rehearsal_refusal(
    record: Rehearsal, params: Any, settings: dict[str, Any], classes: Sequence[int]
) -> RehearsalMissed | None:
    """The error ``forget`` raises for ``classes`` with ``params``/``settings``, or None (also
    when the rehearsal did not run these settings)."""
    if not record.covers(params, settings):
        return None
    missed = [int(c) for c in classes if not record.met(params, c)]
    if not missed:
        return None
    c, cell = missed[0], record.cells[params][missed[0]]
    return RehearsalMissed(
        f"refused before any step: when this model was trained, forgetting class {c} with "
        f"params={params!r} missed the target on training data (E_F {cell['E_F']:.1f} %, A_R "
        f"{'down' if cell['A_R_drop'] >= 0 else 'up'} {abs(cell['A_R_drop']):.2f} points; "
        f"target E_F >= {TARGET_EF:g}, A_R down at most "
        f"{TARGET_DROP:g}), so the step would not remove it. Try: the other params "
        f"({record.describe()}), a method that uses data (finetune, retrain), or "
        "forget(..., require_alignment=False, verify=(x_held_out, y_held_out))"
        + _bias_note(record, params, missed),
        missed,
        record,
    )


def _bias_note(record: Rehearsal, params: Any, classes: Sequence[int]) -> str:
    """What to know before choosing the bias edit, when it met the target for ``classes``."""
    if params == "head-bias" or "head-bias" not in record.cells:
        return ""
    if not all(record.met("head-bias", c) for c in classes):
        return ""
    return (
        ". params='head-bias' met the target for these classes: it moves the output layer's "
        "bias alone, which hides a class in the outputs while the features keep it (the "
        "suppress control, not a removal); it is never chosen by default"
    )
