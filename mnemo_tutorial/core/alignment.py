"""Whether a model keeps its codes where its classes are: measured while the training data is
at hand, stored with the codes, read by :func:`~mnemo_tutorial.core.forget.forget`.

The one-shot step is computed from the codes alone. It forgets a class only if what lowers the
class's logit on its code lowers it on the class's images too, and the output layer sees
both through its input (the "head input", the features the last ``nn.Linear`` reads). A model
can memorise its codes far from its classes: every code is classified right, yet its head
input points elsewhere than its class's images do, and forgetting the code leaves the class
(the group-norm residual network of ``scripts/robustness.py``). No data-free check can see
that; a check made while the data is there can.

:func:`measure_alignment` records, for each class c, the cosine between code c's head input
and the mean head input of class c's images, and which class's mean is nearest
(:class:`CodeAlignment`). A code sits with its class when that cosine is at least
:data:`MIN_COSINE`. (Which mean is nearest is recorded but not used: features that are all
positive, as after a sigmoid, put every mean at a high cosine to every code, so the nearest
mean can be another class's by a hair on a model where forgetting works; and where every
cosine is low, the nearest mean being the class's own says little.) ``forget`` refuses a
class whose code does not sit with it with :class:`CodesNotAligned`, before any step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mnemo_tutorial.core.step import head_params
from mnemo_tutorial.utils import module_device

__all__ = [
    "MIN_COSINE",
    "SAMPLES_PER_CLASS",
    "CodeAlignment",
    "CodesNotAligned",
    "ForgetRefused",
    "measure_alignment",
    "per_class_sample",
]

#: Smallest cosine between a code's head input and its class's mean head input at which the
#: code sits with its class. Chosen on the robustness suite (``scripts/robustness.py``): the
#: codes of the group-norm residual network, on which forgetting missed every class, sat
#: below it; those of the package's own models above it.
MIN_COSINE = 0.5
#: Samples of each class whose mean head input a code is compared with.
SAMPLES_PER_CLASS = 200


@dataclass(frozen=True)
class CodeAlignment:
    """Per class c (tuples of length C): ``cosine[c]`` between code c's head input and the
    mean head input of class c's samples, ``best_other[c]`` the largest cosine to another
    class's mean, ``nearest[c]`` the class whose mean is nearest (largest cosine); ``layer``:
    the output layer whose input is compared; ``samples_per_class``: the most samples of a
    class averaged."""

    layer: str
    cosine: tuple[float, ...]
    best_other: tuple[float, ...]
    nearest: tuple[int, ...]
    samples_per_class: int
    #: forgetting rehearsed on the training data (core.rehearsal.Rehearsal), or None
    rehearsal: Any = None

    def sits_with_class(self, c: int, min_cosine: float = MIN_COSINE) -> bool:
        """Whether code c sits with its class: cosine at least ``min_cosine`` (a class
        without samples when measured, cosine NaN, counts as sitting: nothing says otherwise).
        Being nearest its own class's mean is not enough where every cosine is low, nor
        needed where every cosine is high (all-positive features)."""
        return not self.cosine[int(c)] < min_cosine

    def misaligned(self, classes: Sequence[int], min_cosine: float = MIN_COSINE) -> list[int]:
        """The classes of ``classes`` whose code does not sit with its class."""
        return [int(c) for c in classes if not self.sits_with_class(c, min_cosine)]

    def describe(self) -> str:
        """One line: how many codes sit with their classes, the smallest cosine."""
        measured = [v for v in self.cosine if v == v]
        low = min(measured) if measured else float("nan")
        kept = sum(self.sits_with_class(c) for c, v in enumerate(self.cosine) if v == v)
        line = (
            f"{kept} of {len(measured)} codes sit with their classes (cosine >= {MIN_COSINE} "
            f"between their input to {self.layer!r} and their class's mean; smallest {low:.2f})"
        )
        return line if self.rehearsal is None else f"{line}; {self.rehearsal.describe()}"

    def with_rehearsal(self, rehearsal: Any) -> CodeAlignment:
        """This record with ``rehearsal`` (:func:`~mnemo_tutorial.core.rehearsal.rehearse`)."""
        from mnemo_tutorial.core.rehearsal import Rehearsal

        if not isinstance(rehearsal, Rehearsal) or any(
            len(v) != len(self.cosine) for v in rehearsal.cells.values()
        ):
            raise ValueError(
                f"rehearsal must be a Rehearsal of {len(self.cosine)} classes "
                f"(rehearse(model, codes.codes, x, y)); got {type(rehearsal).__name__}"
            )
        return dataclasses.replace(self, rehearsal=rehearsal)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["rehearsal"] = None if self.rehearsal is None else self.rehearsal.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodeAlignment:
        from mnemo_tutorial.core.rehearsal import Rehearsal

        record = d.get("rehearsal")
        return cls(
            layer=str(d["layer"]),
            cosine=tuple(float(v) for v in d["cosine"]),
            best_other=tuple(float(v) for v in d["best_other"]),
            nearest=tuple(int(v) for v in d["nearest"]),
            samples_per_class=int(d["samples_per_class"]),
            rehearsal=None if record is None else Rehearsal.from_dict(record),
        )


class ForgetRefused(ValueError):
    """``forget`` refused before any step, from what was recorded when the model was trained
    (``.classes`` the classes refused): :class:`CodesNotAligned` or
    :class:`~mnemo_tutorial.core.rehearsal.RehearsalMissed`."""

    def __init__(self, message: str, classes: list[int]):
        super().__init__(message)
        self.classes = classes


class CodesNotAligned(ForgetRefused):
    """``forget`` refused: the codes of some forgotten classes do not sit with their classes
    in this model (``.classes``; ``.alignment`` the record), so forgetting the codes would not
    forget the classes."""

    def __init__(self, message: str, classes: list[int], alignment: CodeAlignment):
        super().__init__(message, classes)
        self.alignment = alignment


def _head_inputs(model: nn.Module, layer: str, x: torch.Tensor, batch: int) -> torch.Tensor:
    """(N, D) float32 CPU: the input of module ``layer`` on x, in eval mode, without grads."""
    store: list[torch.Tensor] = []
    hook = model.get_submodule(layer).register_forward_pre_hook(
        lambda _m, inp: store.append(inp[0].detach().flatten(1).float().cpu())
    )
    was_training, dev = model.training, module_device(model)
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                model(x[i : i + batch].to(dev))
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(store)


def per_class_sample(y: torch.Tensor, num_classes: int, k: int, seed: int) -> list[torch.Tensor]:
    """Per class c < ``num_classes``, the indices of up to ``k`` of its samples in ``y``, drawn
    with a generator seeded by ``seed`` (the sample the alignment record and the rehearsal
    score)."""
    y = y.cpu()
    gen = torch.Generator().manual_seed(int(seed))
    picks = []
    for c in range(num_classes):
        idx = torch.nonzero(y == c).flatten()
        picks.append(idx[torch.randperm(idx.numel(), generator=gen)[: int(k)]])
    return picks


def measure_alignment(
    model: nn.Module,
    codes: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    samples_per_class: int = SAMPLES_PER_CLASS,
    seed: int = 0,
    batch_size: int = 256,
) -> CodeAlignment:
    """Where each code's head input sits among the classes' mean head inputs.

    Args:
        model: the trained classifier (its output layer: the last ``nn.Linear`` with C
            outputs); left as it was (mode restored, no gradients).
        codes: (C, *input_shape), code c of class c.
        x, y: training samples and labels (N,), e.g. the training split.
        samples_per_class: at most this many samples of each class are averaged (drawn with
            a generator seeded by ``seed``).

    Returns:
        :class:`CodeAlignment`; a class without samples in ``y`` gets cosine NaN (e.g. a
        model retrained without it).
    """
    num = int(codes.shape[0])
    if isinstance(samples_per_class, bool) or int(samples_per_class) < 1:
        raise ValueError(f"samples_per_class must be a positive integer; got {samples_per_class}")
    if len(x) != len(y):
        raise ValueError(f"x and y must hold as many samples; got {len(x)} and {len(y)}")
    layer = head_params(model, num)[0].rpartition(".")[0]
    picks = per_class_sample(y, num, samples_per_class, seed)
    feats = _head_inputs(model, layer, x[torch.cat(picks)], batch_size)
    sizes = [p.numel() for p in picks]
    means = torch.stack([f.mean(0) for f in torch.split(feats, sizes)])  # empty class: NaN
    code_feats = _head_inputs(model, layer, codes, batch_size)
    cos = nn.functional.normalize(code_feats, dim=1) @ nn.functional.normalize(means, dim=1).T
    ranked = torch.nan_to_num(cos, nan=float("-inf"))  # a class without samples is nobody's
    others = ranked.clone().fill_diagonal_(float("-inf"))
    return CodeAlignment(
        layer=layer,
        cosine=tuple(float(v) for v in cos.diagonal()),
        best_other=tuple(float(v) for v in others.amax(1)),
        nearest=tuple(int(v) for v in ranked.argmax(1)),
        samples_per_class=int(samples_per_class),
    )


def refusal(alignment: CodeAlignment, classes: Sequence[int]) -> CodesNotAligned | None:
    """The error ``forget`` raises for ``classes`` on a model with this record, or None."""
    bad = alignment.misaligned(classes)
    if not bad:
        return None
    c = bad[0]
    return CodesNotAligned(
        f"refused before any step: the code of class {c} does not sit with its class in this "
        f"model: its input to the output layer {alignment.layer!r} is at cosine "
        f"{alignment.cosine[c]:.2f} to its class's mean input (below {MIN_COSINE}; nearest: "
        f"class {alignment.nearest[c]}'s), measured when the model was trained. Forgetting the "
        "code would not forget the class. Try: a method that uses data (finetune, retrain), or "
        "retraining the model with codes (see 'Your own model'); to step anyway, pass "
        "forget(..., require_alignment=False, verify=(x_held_out, y_held_out)) and read the "
        "verification",
        bad,
        alignment,
    )
