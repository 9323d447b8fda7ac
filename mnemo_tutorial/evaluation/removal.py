"""Audits that try to tell *removal* of a class from its *suppression* at the output.

Editing one output bias (the ``suppress`` control) drives E_F to 100 and keeps A_R; so does
a model retrained without the class. An audit can judge removal only if it tells those two
apart. Each audit here is reported for every method beside the original, the retrained
model and the controls; :func:`mnemo_tutorial.evaluation.compare.separation` then says
which audits separate ``retrain`` from ``suppress`` at all.

* :func:`depth_probe`: a linear probe for the forgotten classes on the features after each
  layer (block), trained on training-split features, scored on the test split.
* :func:`entropy_mia`: the membership-inference attack of the SSD repository (Foster et al.,
  AAAI 2024, src/metrics.py, after Chundawat et al., AAAI 2023): a logistic regression on the
  entropy of the output distribution, trained on retained training samples (members) against
  test samples (non-members), applied to the forget set; the share of forget samples it
  calls members. (The loss-threshold AUC is
  :func:`~mnemo_tutorial.evaluation.audits.membership_auc`.)
* :func:`relearn_curve`: the forget-class test accuracy after each of a fixed number of
  fine-tuning steps on retained data plus a few forget samples.
* :func:`divergence_to`: the mean Jensen-Shannon divergence between the model's and a
  reference model's (the retrained one's) output distributions on forget-class test samples.
  JS is symmetric, bounded by ln 2 and finite where one model gives a class probability 0,
  where KL would diverge; Chundawat et al.'s ZRF score is built on it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.evaluation.metrics import (
    SplitLogits,
    batched_eval,
    class_mask,
    predict,
    sample_indices,
)
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.utils import module_device

__all__ = [
    "RELEARN_THRESHOLD",
    "Relearner",
    "depth_probe",
    "divergence_to",
    "entropy_mia",
    "js_divergence",
    "layer_features",
    "probe_layers",
    "relearn_curve",
    "removal_audits",
]

#: Forget-class test accuracy (percent) at which the class counts as relearned.
RELEARN_THRESHOLD = 50.0


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _group_ends(name: str, seq: nn.Module) -> list[str]:
    """In a container, the children that end a group of parameterised modules (the next one
    holds no parameters, e.g. the batch norm before a ReLU, or it is the last); a child that
    is itself a block (has children of its own) is always kept."""
    kids = list(seq.named_children())
    out = []
    for i, (k, g) in enumerate(kids):
        following = kids[i + 1][1] if i + 1 < len(kids) else None
        block = any(True for _ in g.children())
        if _has_params(g) and (block or following is None or not _has_params(following)):
            out.append(f"{name}.{k}")
    return out


def probe_layers(model: nn.Module) -> list[str]:
    """The layers whose outputs :func:`depth_probe` reads, in registration order: the
    model's direct children that hold parameters; a ``nn.Sequential`` / ``nn.ModuleList``
    child is replaced by its blocks, or, where it holds single layers, by the last layer of
    each run of parameterised layers (conv + batch norm -> the batch norm). The last is the
    output layer. MLP: ``fc1`` (the hidden pre-activations), ``fc2`` (the logits); ResNet:
    ``stem.1``, ``layers.0`` ... (one per residual block), ``fc``."""
    names = []
    for name, child in model.named_children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)):
            names += _group_ends(name, child)
        elif _has_params(child):
            names.append(name)
    if not names:
        raise ValueError(f"model must have layers with parameters; {type(model).__name__} has none")
    return names


def _pool(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> mean over space (N, C); (N, T, D) -> mean over tokens; (N, D) as is."""
    if t.dim() == 4:
        return t.mean((2, 3))
    if t.dim() == 3:
        return t.mean(1)
    return t.flatten(1)


def layer_features(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str], batch_size: int | None = None
) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` (module names) on x, pooled by :func:`_pool`: {name: (N, D)}
    float32 on the CPU. The model's mode is restored; hooks are removed."""
    modules = dict(model.named_modules())
    bad = [n for n in layers if n not in modules]
    if bad:
        raise ValueError(f"layers must name modules of the model; got {bad[0]!r}")
    store: dict[str, torch.Tensor] = {}
    hooks = [
        modules[n].register_forward_hook(
            lambda _m, _i, out, n=n: store.__setitem__(n, _pool(out).float())
        )
        for n in layers
    ]

    def run(xb: torch.Tensor) -> torch.Tensor:
        model(xb)
        return torch.cat([store[n] for n in layers], 1)

    try:
        flat = batched_eval(model, run, x, batch_size=batch_size)
    finally:
        for h in hooks:
            h.remove()
    sizes = [store[n].shape[1] for n in layers]
    return dict(zip(layers, torch.split(flat, sizes, 1)))


def _balanced(mask: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Up to n/2 random indices where mask is True and as many where it is False."""
    pos = sample_indices(mask, n // 2, gen)
    return torch.cat([pos, sample_indices(~mask, pos.numel(), gen)])


def _fit_probe(
    f_tr: torch.Tensor, y_tr: np.ndarray, f_te: torch.Tensor, y_te: np.ndarray, C: float
) -> tuple[float, float]:
    """Binary logistic regression on standardised features: (recall on positives, balanced
    accuracy), in percent."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(f_tr.numpy())
    clf = LogisticRegression(C=C, max_iter=500).fit(scaler.transform(f_tr.numpy()), y_tr)
    pred = clf.predict(scaler.transform(f_te.numpy()))
    recall = 100.0 * float((pred[y_te == 1] == 1).mean())
    return recall, 100.0 * float(balanced_accuracy_score(y_te, pred))


def depth_probe(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    layers: Sequence[str] | None = None,
    train_samples: int = 2000,
    test_samples: int = 2000,
    seed: int = 0,
    C: float = 1.0,
) -> dict[str, Any]:
    """A linear probe for the forgotten classes after every layer: for each layer of
    ``layers`` (default :func:`probe_layers`), a binary logistic regression (forgotten
    classes against the rest, standardised features, L2 strength ``C``) is trained on the
    features of ``train_samples`` training samples (half of them from the forgotten classes)
    and scored on up to ``test_samples`` test samples (half from the forgotten classes).

    Returns ``{"layers": [...], "recall": [...], "balanced_accuracy": [...]}`` (percent):
    ``recall`` is the share of forget-class test samples the probe finds. Read it against
    the retrained model's curve: a class that was never learned can still be linearly
    separable in features learned on the other classes (and in the pixels)."""
    classes = check_forget_classes(forget, data.num_classes)
    names = list(layers) if layers is not None else probe_layers(model)
    gen = torch.Generator().manual_seed(int(seed))
    tr = _balanced(class_mask(data.y_train, classes), int(train_samples), gen)
    te = _balanced(class_mask(data.y_test, classes), int(test_samples), gen)
    y_tr = class_mask(data.y_train[tr], classes).numpy().astype(int)
    y_te = class_mask(data.y_test[te], classes).numpy().astype(int)
    f_tr = layer_features(model, data.x_train[tr], names)
    f_te = layer_features(model, data.x_test[te], names)
    recall, balanced = [], []
    for n in names:
        r, b = _fit_probe(f_tr[n], y_tr, f_te[n], y_te, C)
        recall.append(r)
        balanced.append(b)
    return {"layers": names, "recall": recall, "balanced_accuracy": balanced}


def _entropy_of(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats, float64) of the softmax of each row of ``logits``."""
    p = torch.softmax(logits.double(), 1)
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(1)


def _entropy(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return batched_eval(model, lambda xb: _entropy_of(model(xb)), x).numpy()


def _entropies(
    model: nn.Module, data: ImageData, logits: SplitLogits | None, idx: list[torch.Tensor]
) -> list[np.ndarray]:
    """Output entropies of the training samples ``idx[0]``, the test samples ``idx[1]`` and the
    training samples ``idx[2]``: read from ``logits`` when given, else by forward passes."""
    splits = [(data.x_train, "train"), (data.x_test, "test"), (data.x_train, "train")]
    if logits is None:
        return [_entropy(model, x[i]) for (x, _), i in zip(splits, idx)]
    for name, y in (("train", data.y_train), ("test", data.y_test)):
        if getattr(logits, name).shape[0] != len(y):
            raise ValueError(
                f"logits.{name} must have one row per {name} sample of data ({len(y)}); "
                f"got {getattr(logits, name).shape[0]}"
            )
    return [_entropy_of(getattr(logits, n)[i]).numpy() for (_, n), i in zip(splits, idx)]


def entropy_mia(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    retain_samples: int | None = None,
    test_samples: int | None = None,
    seed: int = 0,
    logits: SplitLogits | None = None,
) -> float:
    """The SSD repository's membership-inference attack on the forget set (Foster et al.,
    AAAI 2024, after Chundawat et al., AAAI 2023, https://arxiv.org/abs/2205.08096): the
    feature of a sample is the entropy of the model's output distribution; a logistic
    regression (balanced class weights, lbfgs) is trained to call the retained training
    samples members (1) and the test samples of every class non-members (0), then applied to
    the forgotten classes' training samples. Returns the share called members.

    The reference uses all retained training samples and the whole test set;
    ``retain_samples`` / ``test_samples`` draw random subsets (None: all). Reading it: the
    retrained model, which never saw the forget set, gives the reference value."""
    from sklearn.linear_model import LogisticRegression

    classes = check_forget_classes(forget, data.num_classes)
    gen = torch.Generator().manual_seed(int(seed))
    f_mask = class_mask(data.y_train, classes)
    retain = sample_indices(~f_mask, retain_samples, gen)
    test = sample_indices(torch.ones(len(data.y_test), dtype=torch.bool), test_samples, gen)
    f_idx = torch.nonzero(f_mask).flatten()
    ent_r, ent_t, x_f = _entropies(model, data, logits, [retain, test, f_idx])
    x_r = np.concatenate([ent_r, ent_t])
    y_r = np.concatenate([np.ones(retain.numel()), np.zeros(test.numel())])
    clf = LogisticRegression(class_weight="balanced", solver="lbfgs")
    clf.fit(x_r.reshape(-1, 1), y_r)
    return float(clf.predict(x_f.reshape(-1, 1)).mean())


def _check_curve_args(steps: int, forget_samples: int, retain_samples: int, lr: float) -> None:
    if isinstance(steps, bool) or int(steps) < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    if int(forget_samples) < 1 or int(retain_samples) < 0 or not lr > 0:
        raise ValueError(
            "forget_samples must be >= 1, retain_samples >= 0 and lr > 0; "
            f"got {forget_samples!r}, {retain_samples!r}, {lr!r}"
        )


class Relearner:
    """The relearning set-up of Golatkar et al. (CVPR 2020), shared by
    :func:`relearn_curve` and :func:`~mnemo_tutorial.evaluation.audits.relearn_time`: a copy
    of ``model``, a fixed fine-tuning set of ``forget_samples`` training samples of the
    forgotten classes plus ``retain_samples`` of the others, full-batch SGD (``lr``,
    ``momentum``), and up to ``eval_samples`` held-out test samples of the forgotten and of
    the remaining classes, all drawn from one generator seeded with ``seed`` (in that order).
    The input model is not modified; the copy stays on its device."""

    def __init__(
        self,
        model: nn.Module,
        data: ImageData,
        classes: Sequence[int],
        forget_samples: int,
        retain_samples: int,
        lr: float,
        momentum: float,
        eval_samples: int | None,
        seed: int,
    ):
        gen = torch.Generator().manual_seed(int(seed))
        f_tr, f_te = class_mask(data.y_train, classes), class_mask(data.y_test, classes)
        idx = torch.cat(
            [
                sample_indices(f_tr, int(forget_samples), gen),
                sample_indices(~f_tr, int(retain_samples), gen),
            ]
        )
        self.ev = sample_indices(f_te, eval_samples, gen)
        self.ev_r = sample_indices(~f_te, eval_samples, gen)
        self.data, self.work = data, copy.deepcopy(model)
        dev = module_device(self.work)
        self.x, self.y = data.x_train[idx].to(dev), data.y_train[idx].to(dev)
        self.opt = torch.optim.SGD(self.work.parameters(), lr=lr, momentum=momentum)

    def _accuracy(self, sel: torch.Tensor) -> float:
        right = predict(self.work, self.data.x_test[sel]) == self.data.y_test[sel].cpu()
        return 100.0 * float(right.float().mean())

    def forget_acc(self) -> float:
        """Accuracy (%) on the held-out samples of the forgotten classes."""
        return self._accuracy(self.ev)

    def remain_acc(self) -> float:
        """Accuracy (%) on the held-out samples of the remaining classes."""
        return self._accuracy(self.ev_r)

    def step(self) -> None:
        """One full-batch SGD step on the fine-tuning set."""
        self.work.train()
        loss = nn.functional.cross_entropy(self.work(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def relearn_curve(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    steps: int = 30,
    forget_samples: int = 16,
    retain_samples: int = 128,
    lr: float = 0.01,
    momentum: float = 0.9,
    eval_samples: int | None = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Relearning as a curve: ``steps`` steps of a :class:`Relearner` (the set and the
    schedule of :func:`~mnemo_tutorial.evaluation.audits.relearn_time`), recording the
    accuracy on up to ``eval_samples`` forget-class test samples before the first step and
    after each.

    Returns ``{"forget_acc": [steps + 1 values], "remain_acc": final accuracy on as many
    remaining-class test samples, "steps_to_threshold": first step with forget accuracy >=
    RELEARN_THRESHOLD (None if never)}``. The input model is not modified."""
    classes = check_forget_classes(forget, data.num_classes)
    _check_curve_args(steps, forget_samples, retain_samples, lr)
    run = Relearner(
        model, data, classes, forget_samples, retain_samples, lr, momentum, eval_samples, seed
    )
    curve = [run.forget_acc()]
    for _ in range(int(steps)):
        run.step()
        curve.append(run.forget_acc())
    reached = [i for i, a in enumerate(curve) if a >= RELEARN_THRESHOLD]
    return {
        "forget_acc": curve,
        "remain_acc": run.remain_acc(),
        "steps_to_threshold": reached[0] if reached else None,
    }


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) between the rows of two
    probability tables p, q (N, C) -> (N,)."""
    m = 0.5 * (p + q)

    def kl(a: torch.Tensor) -> torch.Tensor:
        ratio = torch.where(a > 0, a / m.clamp_min(torch.finfo(m.dtype).tiny), torch.ones_like(a))
        return (a * ratio.log()).sum(1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def _probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return batched_eval(model, lambda xb: torch.softmax(model(xb).double(), 1), x)


def divergence_to(
    model: nn.Module,
    reference: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    samples: int | None = 1000,
    seed: int = 0,
) -> float:
    """Mean :func:`js_divergence` between ``model``'s and ``reference``'s output distributions
    on up to ``samples`` test samples of the forgotten classes (0: the two models answer
    alike on the forgotten class; ln 2 = 0.693: they never share a class)."""
    classes = check_forget_classes(forget, data.num_classes)
    gen = torch.Generator().manual_seed(int(seed))
    idx = sample_indices(class_mask(data.y_test, classes), samples, gen)
    x = data.x_test[idx]
    return float(js_divergence(_probs(model, x), _probs(reference, x)).mean())


def removal_audits(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    reference: nn.Module | None = None,
    seed: int = 0,
    layers: Sequence[str] | None = None,
    relearn_steps: int = 30,
    mia_samples: int | None = None,
    logits: SplitLogits | None = None,
) -> dict[str, Any]:
    """Every audit of this module on one model (``logits``: its
    :class:`~mnemo_tutorial.evaluation.metrics.SplitLogits`, if already computed):
    ``probe`` ({layer: recall %}),
    ``probe_first`` / ``probe_last`` (the first layer and the last before the output layer),
    ``probe_output`` (the output layer's logits),
    ``mia_entropy``, ``relearn_curve`` (forget accuracy per step), ``relearn_steps`` (steps to
    :data:`RELEARN_THRESHOLD`; ``relearn_steps`` + 1 capped at the budget when never, with
    ``relearned`` False) and ``js_to_reference`` (None without ``reference``)."""
    probe = depth_probe(model, data, forget, layers=layers, seed=seed)
    curve = relearn_curve(model, data, forget, steps=relearn_steps, seed=seed)
    reached = curve["steps_to_threshold"]
    by_layer = dict(zip(probe["layers"], probe["recall"]))
    hidden = probe["recall"][:-1] or probe["recall"]
    return {
        "probe": by_layer,
        "probe_first": hidden[0],
        "probe_last": hidden[-1],
        "probe_output": probe["recall"][-1],
        "mia_entropy": entropy_mia(
            model, data, forget, mia_samples, mia_samples, seed=seed, logits=logits
        ),
        "relearn_curve": curve["forget_acc"],
        "relearn_steps": reached if reached is not None else int(relearn_steps) + 1,
        "relearned": reached is not None,
        "js_to_reference": None
        if reference is None
        else divergence_to(model, reference, data, forget, seed=seed),
    }
