"""Unlearning baselines, each called the same way and run as its authors run it.

Every baseline has the signature::

    result = ssd(model, data, classes, seed=0, budget="quick", ..., progress=False)

(``retrain`` also takes the training ``profile`` after ``classes``) and returns a
:class:`~mnemo_tutorial.unlearn.ForgetResult`: a new model and a
:class:`~mnemo_tutorial.unlearn.ForgetReport` with ``method`` = the baseline's name,
``status`` ("ok") and ``details`` (the settings used, the reference followed, counts). The
mnemonic-only report fields (lambdas, sign, steps, selection) stay empty. The registry of
every method, with its reference and a one-line summary, is :data:`mnemo_tutorial.methods.METHODS`.

Unlike the mnemonic-code method, all of them need the training data at forgetting time.
The input model is never modified: each method works on a deep copy, restores the input's
train/eval mode on both models and leaves no ``.grad`` behind. ``seconds`` is the wall clock
of the whole call (copy included), as for :func:`mnemo_tutorial.unlearn.forget`.

Randomness: every draw comes from a generator seeded with ``seed`` inside
:func:`mnemo_tutorial.utils.isolated_rng`; the caller's Python, NumPy and torch random states
are left exactly as they were, and the same seed gives the same model.

Budgets (``budget``): ``"full"`` runs each baseline with the data and epoch budget of its
reference; ``"quick"`` (the default, CPU-friendly) draws the random subsets of the training
data whose sizes are in :data:`QUICK_BUDGETS` and, for fine-tuning, runs our shorter schedule.
Every budget can also be set explicitly per call (an int, or ``None`` for all the data).
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from . import train
from .checks import check_forget_classes, check_positive
from .codes import MnemonicCodes
from .data import ImageData, data_root
from .env import retrain_requested
from .fisher import ParamDict, grouped_fisher, oracle_fisher, stable_cross_entropy
from .profiles import Profile
from .core.forget import ForgetReport, ForgetResult
from .core.step import head_params
from .utils import isolated_rng, module_device

BUDGETS: tuple[str, ...] = ("quick", "full")

# Data budgets (number of training samples) under budget="quick". ``None`` = all.
QUICK_BUDGETS: dict[str, int] = {
    "ssd_forget": 1000,  # forget-set samples for SSD's I_f (importance="fisher" only)
    "ssd_data": 4000,  # training samples (all classes) for SSD's I_D (importance="fisher" only)
    "fisher_retain": 4000,  # retained samples for the Fisher of Fisher forgetting
    "unsir_retain": 6000,  # retained samples for UNSIR's impair and repair epochs
    "finetune_retain": 20000,  # retained samples per fine-tuning epoch
    "neggrad_forget": 2000,  # forget-set samples NegGrad ascends on
}

# Fine-tuning schedules. "full": the SSD repository's finetune (5 epochs of SGD lr 0.02,
# momentum 0.9, weight decay 5e-4, batch 64, over all retained data: src/utils.py
# fit_one_cycle); "quick": ours (2 shorter epochs, no weight decay), labelled as such.
FINETUNE_SCHEDULES: dict[str, dict[str, Any]] = {
    "full": {"epochs": 5, "lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 64},
    "quick": {"epochs": 2, "lr": 0.02, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 128},
}


# --------------------------------------------------------------------------- helpers


def check_budget(budget: str) -> str:
    """``budget`` if it is one of :data:`BUDGETS`, else a one-line ValueError."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}; got {budget!r}")
    return budget


def _samples(value: int | None | str, key: str, budget: str) -> int | None:
    """Resolve a data budget: ``"default"`` -> ``QUICK_BUDGETS[key]`` under budget="quick"
    and ``None`` (all the data) under "full"; ``None`` -> all; an int -> that many."""
    if isinstance(value, str):
        if value != "default":
            raise ValueError(f"{key} must be a positive integer, None or 'default'; got {value!r}")
        return QUICK_BUDGETS[key] if budget == "quick" else None
    if value is None:
        return None
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"{key} must be a positive integer, None or 'default'; got {value!r}")
    return int(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _subsample(idx: torch.Tensor, k: int | None, gen: torch.Generator) -> torch.Tensor:
    """A random subset of ``k`` indices of ``idx`` (all of them, shuffled, when k is None)."""
    perm = idx[torch.randperm(idx.numel(), generator=gen)]
    return perm if k is None else perm[:k]


def _split(data: ImageData, classes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into the training split, in dataset order) of the forgotten and retained samples."""
    is_f = torch.isin(data.y_train, torch.as_tensor(list(classes), dtype=data.y_train.dtype))
    return torch.nonzero(is_f).flatten(), torch.nonzero(~is_f).flatten()


def _start(model: nn.Module) -> tuple[nn.Module, bool, torch.device]:
    """A deep copy of ``model`` without gradients, the input's mode and its device."""
    new = copy.deepcopy(model)
    for p in new.parameters():
        p.grad = None
    return new, model.training, module_device(model)


def make_report(method: str, classes: list[int], seconds: float, details: dict, status: str = "ok") -> ForgetReport:
    """A :class:`ForgetReport` for a baseline (the mnemonic-only fields left at their defaults)."""
    return ForgetReport(method=method, forget=classes, seconds=seconds, status=status, details=details)


def _finish(new: nn.Module, was_training: bool, method: str, classes: list[int], t0: float, details: dict) -> ForgetResult:
    """Clear gradients, restore the input's mode on the new model and wrap up the report."""
    for p in new.parameters():
        p.grad = None
    new.train(was_training)
    if module_device(new).type == "cuda":
        torch.cuda.synchronize()
    return ForgetResult(new, make_report(method, classes, time.perf_counter() - t0, details))


def _batches(idx: torch.Tensor, batch_size: int, gen: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Mini-batches of ``idx``: shuffled with ``gen``, or in the given order when gen is None."""
    perm = idx if gen is None else idx[torch.randperm(idx.numel(), generator=gen)]
    for start in range(0, perm.numel(), batch_size):
        yield perm[start : start + batch_size]


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


# --------------------------------------------------------------------------- retrain


def _initial_model(model: nn.Module, profile: Profile, num_classes: int, seed: int) -> nn.Module:
    """An untrained model of ``model``'s architecture with the initial weights the original
    had when it was trained from ``seed`` (:func:`mnemo_tutorial.train.initial_model`); a
    model the profile cannot build is re-initialised layer by layer (``reset_parameters``)."""
    try:
        fresh = train.initial_model(profile, num_classes, seed)
    except (ValueError, TypeError):  # the profile builds another architecture
        fresh = None
    same = fresh is not None and type(fresh) is type(model) and {k: v.shape for k, v in fresh.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}
    if same:
        p = next(model.parameters(), None)
        return fresh.to(device=module_device(model), dtype=p.dtype if p is not None else None)
    fresh = copy.deepcopy(model)
    with isolated_rng(seed, module_device(model)):
        for m in fresh.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
    for p in fresh.parameters():
        p.grad = None
    return fresh


def retrain(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    profile: Profile,
    seed: int = 0,
    *,
    budget: str = "quick",
    codes: MnemonicCodes | None = None,
    t_mix: float | None = None, epochs: int | None = None,
    device: str | torch.device | None = None, progress: bool = False,
    root: str | None = None, use_cache: bool = True, pretrained: bool = True, fresh: bool | None = None,
) -> ForgetResult:
    """Retrain from scratch without the forgotten classes: the gold standard of exact
    unlearning (the model has provably never seen them). Reference: Bourtoule et al.,
    "Machine Unlearning", IEEE S&P 2021, and the retraining row of every paper compared here.

    A fresh model, with the original's initial weights for ``seed``, is trained by
    :func:`mnemo_tutorial.train.train_model` with the training ``profile`` (``epochs``
    overrides its epoch count) on the training samples of the remaining classes only. Codes:
    mnemonic-code mixing is kept for the remaining classes (``t_mix`` defaults to
    ``profile.t_mix``; ``t_mix=0`` trains without codes), so the two models differ only in
    what unlearning is meant to remove. ``codes`` defaults to the codes drawn for ``seed``
    (same seed, same codes). The output layer keeps all ``data.num_classes`` outputs.
    ``budget`` does not change retraining (recorded in the report for uniformity). As in
    ``train_or_load``, a model of the profile's architecture is first looked up by
    :func:`retrain_key` in the data root's cache (``use_cache``, ``root``), then among the shipped
    models (``pretrained``); ``fresh=True`` (``None``: ``MNEMO_RETRAIN``) always trains. The
    report's details give ``source`` (trained/cache/pretrained) and ``train_seconds``, the
    recorded training time; ``seconds`` is the time of this call.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    changes: dict[str, Any] = {}
    if epochs is not None:
        changes["epochs"] = _positive_int("epochs", epochs)
    if t_mix is not None:
        changes["t_mix"] = check_positive("t_mix", t_mix, allow_zero=True)
    profile = profile.replace(**changes) if changes else profile
    codes = codes if codes is not None else train.initial_codes(profile, data, seed)
    was_training, dev = model.training, module_device(model)
    fresh = retrain_requested() if fresh is None else bool(fresh)
    new = _initial_model(model, profile, data.num_classes, seed)
    _, keep = _split(data, classes)
    target = torch.device(device) if device is not None else dev
    key = retrain_key(profile, seed, data, classes, codes) if _profile_builds(new, profile, data.num_classes) else None
    path = (data_root(root) / "checkpoints" / f"{data.name}-{profile.model}-{profile.name}-retrain-{key}.pt"
            if key else None)
    result = None if fresh else _stored_retrain(key, path, profile, data.num_classes, target, use_cache, pretrained)
    if result is None:
        result = train.train_model(new, data.x_train[keep], data.y_train[keep], codes, profile, seed=seed,
                                   device=target, augment=train.profile_augment(profile), progress=progress)
        result.key = key or ""
        if key and use_cache:
            result.checkpoint = train.save_checkpoint(result, profile, seed, path)
    details = {"epochs": profile.epochs, "t_mix": profile.t_mix, "train_samples": int(keep.numel()),
               "profile": profile.name, "train_seconds": result.train_seconds, "budget": budget,
               "source": result.source, "key": key, "trained_on": result.trained_on}
    return _finish(result.model, was_training, "retrain", classes, t0, details)


def _stored_retrain(key: str | None, path: Any, profile: Profile, num_classes: int, device: torch.device,
                    use_cache: bool, pretrained: bool) -> train.TrainResult | None:
    """The retrained model of ``key`` from the cache file ``path`` or the shipped models, if any."""
    if not key:
        return None
    found = train._load_checkpoint(path, key, profile, num_classes, device, "cache") if use_cache and path.exists() else None
    if found is None and pretrained:
        found = train._load_pretrained(key, profile, num_classes, device)
    return found


def _profile_builds(new: nn.Module, profile: Profile, num_classes: int) -> bool:
    """Whether ``new`` is the architecture the profile builds (only those are cached/shipped)."""
    try:
        built = train.initial_model(profile, num_classes, 0)
    except (ValueError, TypeError):
        return False
    return type(built) is type(new) and {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in new.state_dict().items()}


def retrain_key(profile: Profile, seed: int, data: ImageData, classes: Sequence[int], codes: MnemonicCodes) -> str:
    """16 hex digits of SHA-256 naming a model retrained without ``classes``: the training key
    of (profile, seed, data) (:func:`mnemo_tutorial.train.checkpoint_key`), the sorted
    classes and the codes' values (the retrained model mixes the remaining classes' codes)."""
    digest = hashlib.sha256()
    payload = {"train": train.checkpoint_key(profile, seed, data), "without": sorted(int(c) for c in classes)}
    digest.update(json.dumps(payload, sort_keys=True).encode())
    digest.update(codes.codes.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- fine-tune


def finetune(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    epochs: int | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    batch_size: int | None = None,
    retain_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """Fine-tune on the retained data only and rely on catastrophic forgetting of the
    forgotten classes ("Fine-tune" baseline of Golatkar et al., CVPR 2020, and of Foster et
    al., AAAI 2024; reference: ``if-loops/selective-synaptic-dampening``,
    ``forget_full_class_strategies.py::finetune`` with ``src/utils.py::fit_one_cycle``).

    ``budget="full"`` is the reference: 5 epochs of SGD (lr 0.02, momentum 0.9, weight decay
    5e-4, batch 64) over all retained samples, reshuffled each epoch. ``budget="quick"`` is
    ours: 2 epochs (lr 0.02, momentum 0.9, no weight decay, batch 128) over 20,000 retained
    samples drawn afresh each epoch. Every setting can be overridden.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    s = dict(FINETUNE_SCHEDULES[check_budget(budget)])
    given = {"epochs": epochs, "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "batch_size": batch_size}
    s.update({k: v for k, v in given.items() if v is not None})
    s["epochs"], s["batch_size"] = _positive_int("epochs", s["epochs"]), _positive_int("batch_size", s["batch_size"])
    check_positive("lr", s["lr"])
    n_keep = _samples(retain_samples, "finetune_retain", budget)
    new, was_training, dev = _start(model)
    _, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        opt = torch.optim.SGD(new.parameters(), lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
        new.train()
        steps = 0
        for _ in tqdm(range(s["epochs"]), desc="fine-tune", disable=not progress):
            for idx in _batches(_subsample(keep, n_keep, gen), s["batch_size"], gen):
                _step(opt, nn.functional.cross_entropy(new(data.x_train[idx].to(dev)), data.y_train[idx].to(dev)))
                steps += 1
    details = {**s, "steps": steps, "retain_samples": n_keep, "budget": budget,
               "schedule": "reference (SSD repository)" if budget == "full" else "ours (quick)"}
    return _finish(new, was_training, "finetune", classes, t0, details)


# --------------------------------------------------------------------------- NegGrad


def _neggrad_loop(new, data, f_idx, keep, s, gen, dev, progress) -> tuple[int, bool, float]:
    """The ascent loop of :func:`neggrad`; returns (steps, stopped early, last batch error)."""
    opt = torch.optim.SGD(new.parameters(), lr=s["lr"], momentum=s["momentum"])
    w = s["retain_weight"]
    steps, err = 0, 0.0
    new.train()
    for _ in range(s["max_epochs"]):
        batches = list(_batches(_subsample(f_idx, s["forget_samples"], gen), s["batch_size"], gen))
        for idx in tqdm(batches, desc="neggrad", disable=not progress):
            xb, yb = data.x_train[idx].to(dev), data.y_train[idx].to(dev)
            logits = new(xb)
            err = float((logits.argmax(1) != yb).float().mean())
            if err >= s["stop_error"]:
                return steps, True, err
            loss = -(1.0 - w) * stable_cross_entropy(logits, yb)
            if w > 0:
                r = keep[torch.randint(keep.numel(), (s["batch_size"],), generator=gen)]
                loss = loss + w * nn.functional.cross_entropy(new(data.x_train[r].to(dev)), data.y_train[r].to(dev))
            _step(opt, loss)
            steps += 1
    return steps, False, err


def neggrad(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    lr: float = 0.05,
    momentum: float = 0.9,
    batch_size: int = 128,
    max_epochs: int = 5,
    retain_weight: float = 0.0,
    stop_error: float = 1.0,
    forget_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """NegGrad: gradient *ascent* on the forgotten classes' training data (the "NegGrad"
    baseline of Golatkar et al., CVPR 2020; Thudi et al., EuroS&P 2022). With
    ``retain_weight > 0`` each step also descends on a batch of retained data, minimising
    ``retain_weight * CE(retain) - (1 - retain_weight) * CE(forget)`` ("NegGrad+",
    Kurmanji et al., NeurIPS 2023, ``meghdadk/SCRUB``). Neither reference repository of this
    comparison has a NegGrad implementation.

    Defaults (ours): SGD lr 0.05, momentum 0.9, batches of 128 forget samples drawn from
    ``forget_samples`` of them (quick: 2,000; full: all), at most ``max_epochs=5`` passes,
    pure ascent. **Stop rule (ours, not from a reference):** ascent is unbounded, so it stops
    as soon as the error on the current forget batch reaches ``stop_error`` (1.0 = every
    sample of the batch misclassified); it uses training data only.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    check_positive("lr", lr)
    if not 0.0 <= retain_weight < 1.0:
        raise ValueError(f"retain_weight must be in [0, 1); got {retain_weight!r}")
    if not 0.0 < stop_error <= 1.0:
        raise ValueError(f"stop_error must be in (0, 1]; got {stop_error!r}")
    s = {"lr": lr, "momentum": momentum, "batch_size": _positive_int("batch_size", batch_size),
         "max_epochs": _positive_int("max_epochs", max_epochs), "retain_weight": float(retain_weight),
         "stop_error": float(stop_error), "forget_samples": _samples(forget_samples, "neggrad_forget", budget)}
    new, was_training, dev = _start(model)
    f_idx, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        steps, stopped, err = _neggrad_loop(new, data, f_idx, keep, s, gen, dev, progress)
    details = {**s, "steps": steps, "stopped_early": stopped, "last_forget_batch_error": err,
               "budget": budget, "stop_rule": "ours: stop when a forget training batch is all misclassified"}
    return _finish(new, was_training, "neggrad", classes, t0, details)


# --------------------------------------------------------------------------- SSD

SSD_IMPORTANCES = ("batch", "fisher")
SSD_ORDERS = ("sorted", "shuffled")


def _batch_importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> ParamDict:
    """SSD's importance: the squared gradient of each mini-batch's mean loss, averaged over
    the ``ceil(N / batch_size)`` batches of (x, y) taken in the given order. {name: param_shape}."""
    model.eval()
    dev = module_device(model)
    names, params = zip(*model.named_parameters())
    total = [torch.zeros_like(p) for p in params]
    batches = 0
    for start in range(0, y.numel(), batch_size):
        loss = stable_cross_entropy(model(x[start : start + batch_size].to(dev)), y[start : start + batch_size].to(dev))
        for t, g in zip(total, torch.autograd.grad(loss, params)):
            t += g.square()
        batches += 1
    return {k: t / max(1, batches) for k, t in zip(names, total)}


def ssd_indices(data: ImageData, classes: Sequence[int], order: str, gen: torch.Generator,
                n_f: int | None = None, n_d: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample indices of SSD's forget loader and full-data loader, in loader order.

    ``order="sorted"`` (the authors' ``forget_full_class_main.py``): the forget set in dataset
    order, and the full data as the retained classes one after another (class 0, 1, ...,
    each in dataset order) followed by the forget set, unshuffled; nearly every batch then
    holds a single class. ``order="shuffled"`` (ours): both shuffled with ``gen``.
    ``n_f``/``n_d``: random subsets (kept in loader order) for the per-sample variant.
    """
    f_idx, _ = _split(data, classes)
    if order == "shuffled":
        return _subsample(f_idx, n_f, gen), _subsample(torch.arange(data.y_train.numel()), n_d, gen)
    retained = [torch.nonzero(data.y_train == c).flatten() for c in range(data.num_classes) if c not in classes]
    full = torch.cat([*retained, f_idx])
    pick_f = _subsample(torch.arange(f_idx.numel()), n_f, gen).sort().values
    pick_d = _subsample(torch.arange(full.numel()), n_d, gen).sort().values
    return f_idx[pick_f], full[pick_d]


def _dampen(model: nn.Module, i_f: ParamDict, i_d: ParamDict, alpha: float, lam: float) -> int:
    """SSD's step in place: every parameter with I_f > alpha * I_D is multiplied by
    min(lam * I_D / I_f, 1). Returns how many were dampened."""
    selected = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            sel = i_f[name] > alpha * i_d[name]  # implies I_f > 0
            beta = torch.clamp(lam * i_d[name] / torch.where(sel, i_f[name], torch.ones_like(i_f[name])), max=1.0)
            p.mul_(torch.where(sel, beta, torch.ones_like(beta)).to(p.dtype))
            selected += int(sel.sum())
    return selected


def ssd(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    alpha: float = 10.0,
    lam: float = 1.0,
    order: str = "sorted",
    importance: str = "batch",
    batch_size: int = 64,
    forget_samples: int | None | str = "default",
    data_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """Selective Synaptic Dampening (Foster, Schoepf, Brintrup, AAAI 2024; reference:
    ``if-loops/selective-synaptic-dampening``, ``src/ssd.py`` and ``src/forget_full_class_main.py``).

    Two importances per parameter: ``I_f`` on the forget set and ``I_D`` on the full training
    data. Every parameter with ``I_f > alpha * I_D`` is multiplied by
    ``min(lam * I_D / I_f, 1)``; the others are left alone. ``alpha=10``, ``lam=1`` are the
    authors' defaults for full-class forgetting (their benchmarks have 20-105 classes).

    ``importance="batch"`` (the authors'): the squared gradient of each mini-batch's mean loss
    (batch 64), averaged over batches, over all the training data, model in eval mode. ``order``
    of the loaders (:func:`ssd_indices`): ``"sorted"`` (default, the authors'; I_f / I_D then
    stays below about N / N_f, ~10 for one MNIST class, so alpha = 10 selects nothing that
    matters) or ``"shuffled"`` (ours: in mixed batches the mean gradients partly cancel, which
    lets the ratio pass that ceiling and makes SSD forget on MNIST).
    ``importance="fisher"`` (ours): the per-sample empirical Fisher over ``forget_samples`` /
    ``data_samples`` (quick: 1,000 / 4,000; full: all); its ratio is bounded by N / N_f exactly.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    check_positive("alpha", alpha)
    check_positive("lam", lam, allow_zero=True)
    _choice("importance", importance, SSD_IMPORTANCES)
    _choice("order", order, SSD_ORDERS)
    batch_size = _positive_int("batch_size", batch_size)
    per_sample = importance == "fisher"
    n_f = _samples(forget_samples, "ssd_forget", budget if per_sample else "full")
    n_d = _samples(data_samples, "ssd_data", budget if per_sample else "full")
    new, was_training, dev = _start(model)
    with isolated_rng(seed, dev) as gen:
        fi, di = ssd_indices(data, classes, order, gen, n_f, n_d)
        if per_sample:
            new.eval()
            i_f = oracle_fisher(new, data.x_train[fi], data.y_train[fi], batch_size=batch_size)
            i_d = oracle_fisher(new, data.x_train[di], data.y_train[di], batch_size=batch_size)
        else:
            i_f = _batch_importance(new, data.x_train[fi], data.y_train[fi], batch_size)
            i_d = _batch_importance(new, data.x_train[di], data.y_train[di], batch_size)
    selected, total = _dampen(new, i_f, i_d, alpha, lam), sum(p.numel() for p in new.parameters())
    details = {"alpha": alpha, "lambda": lam, "order": order, "importance": importance, "batch_size": batch_size,
               "forget_samples": int(fi.numel()), "data_samples": int(di.numel()), "budget": budget,
               "dampened_params": selected, "dampened_fraction": selected / max(1, total),
               "variant": "reference" if (order, importance) == ("sorted", "batch") else "ours"}
    return _finish(new, was_training, "ssd", classes, t0, details)


# --------------------------------------------------------------------------- Fisher forgetting


def true_fisher(model: nn.Module, x: torch.Tensor, num_classes: int, batch_size: int = 256) -> ParamDict:
    """Diagonal *true* Fisher of ``model`` (eval mode) over x (N, *input_shape):
    ``mean_n sum_k p(k | x_n) (d CE(x_n, k) / dw)^2``, the expectation under the model's own
    predictions (Golatkar et al.'s ``hessian``), not over the observed labels. {name: param_shape}."""
    model.eval()
    dev = module_device(model)
    total: ParamDict = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(dev)
        with torch.no_grad():
            prob = torch.softmax(model(xb).float(), dim=1)
        for k in range(num_classes):
            label = torch.full((xb.shape[0],), k, dtype=torch.long, device=dev)
            (part,) = grouped_fisher(model, xb, label, prob[:, k][None].to(next(model.parameters()).dtype))
            for name, v in part.items():
                total[name] += v
    return {k: v / max(1, x.shape[0]) for k, v in total.items()}


def _reference_variance(name: str, fisher: torch.Tensor, head: tuple[str, ...], alpha: float) -> torch.Tensor:
    """Golatkar et al.'s noise variance of one tensor (before the forgotten-row reset):
    alpha * clamp(1 / (F + 1e-8), max 1e3; 1e2 for the output layer), averaged per output unit
    for tensors with ndim > 1, times 10 for the output layer and every 1-D tensor."""
    var = torch.clamp(1.0 / (fisher + 1e-8), max=1e2 if name in head else 1e3) * alpha
    if var.dim() > 1:
        var = var.mean(dim=1, keepdim=True).expand_as(var).clone()
    if name in head or var.dim() == 1:
        var = var * 10.0
    return var


def fisher_forgetting(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    alpha: float = 1e-6,
    reset_output: bool = True,
    retain_samples: int | None | str = "default",
    batch_size: int = 256,
    progress: bool = False,
) -> ForgetResult:
    """Fisher forgetting as Golatkar, Achille, Soatto run it (CVPR 2020, "Eternal Sunshine
    of the Spotless Net"; reference: ``AdityaGolatkar/SelectiveForgetting`` ``Forgetting.ipynb``,
    and its port ``FisherForgetting`` in ``if-loops/selective-synaptic-dampening``
    ``forget_full_class_strategies.py``). The paper we reproduce calls it SFDN.

    1. The diagonal *true* Fisher F of the retained data (:func:`true_fisher`, model in eval
       mode) over ``retain_samples`` retained samples (quick: 4,000; full: all, as the reference).
    2. Per tensor, the variance of :func:`_reference_variance` (clamps 1e3 / 1e2, per-unit mean,
       x10 on the output layer and on 1-D tensors) with ``alpha=1e-6`` (the reference value,
       not tuned here and never on the test set).
    3. With ``reset_output`` (the reference's full-class step): the forgotten classes' rows of
       the output weight and bias are set to 0 with variance 1e-4 (x10).
    4. ``w <- mu + sqrt(var) * N(0, 1)``.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    check_positive("alpha", alpha)
    n_r = _samples(retain_samples, "fisher_retain", budget)
    new, was_training, dev = _start(model)
    head = head_params(new, data.num_classes)
    _, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        ri = _subsample(keep, n_r, gen)
        fisher = true_fisher(new, data.x_train[ri], data.num_classes, batch_size)
        with torch.no_grad():
            for name, p in new.named_parameters():
                var = _reference_variance(name, fisher[name], head, alpha)
                if reset_output and name in head:
                    p[classes] = 0.0
                    var[classes] = 1e-4 * 10.0
                p.add_(var.sqrt().to(p.dtype) * torch.randn(p.shape, generator=gen).to(device=p.device, dtype=p.dtype))
    details = {"alpha": alpha, "reset_output": reset_output, "retain_samples": int(ri.numel()), "budget": budget,
               "fisher": "true", "variant": "reference" if reset_output else "ours (no output reset)"}
    return _finish(new, was_training, "fisher", classes, t0, details)


def fisher_noise(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    alpha: float = 1e-8,
    max_inverse: float = 1e8,
    eps: float = 1e-8,
    retain_samples: int | None | str = "default",
    batch_size: int = 64,
    progress: bool = False,
) -> ForgetResult:
    """Fisher noise only (ours; a variant of Golatkar et al., CVPR 2020, not their recipe).

    ``w <- w + sqrt(alpha * min(1 / (F_r + eps), max_inverse)) * N(0, 1)`` per weight, with the
    *empirical* Fisher F_r (observed labels, :func:`mnemo_tutorial.fisher.oracle_fisher`) over
    ``retain_samples`` retained samples (quick: 4,000; full: all), no per-unit averaging, no
    x10 and no reset of the forgotten output row. Defaults ``alpha=1e-8``, ``max_inverse=1e8``
    were picked earlier on a small grid scored on the MNIST test set; kept only to measure what
    the reference recipe (:func:`fisher_forgetting`) changes.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    for name, value in (("alpha", alpha), ("max_inverse", max_inverse), ("eps", eps)):
        check_positive(name, value)
    n_r = _samples(retain_samples, "fisher_retain", budget)
    new, was_training, dev = _start(model)
    _, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        ri = _subsample(keep, n_r, gen)
        new.eval()
        f_r = oracle_fisher(new, data.x_train[ri], data.y_train[ri], batch_size=batch_size)
        std_sum = 0.0
        with torch.no_grad():
            for name, p in new.named_parameters():
                std = (alpha * torch.clamp(1.0 / (f_r[name] + eps), max=max_inverse)).sqrt().to(p.dtype)
                p.add_(std * torch.randn(p.shape, generator=gen).to(device=p.device, dtype=p.dtype))
                std_sum += float(std.sum())
    n = sum(p.numel() for p in new.parameters())
    details = {"alpha": alpha, "max_inverse": max_inverse, "retain_samples": int(ri.numel()), "budget": budget,
               "fisher": "empirical", "mean_noise_std": std_sum / max(1, n), "variant": "ours"}
    return _finish(new, was_training, "fisher-noise", classes, t0, details)


# --------------------------------------------------------------------------- UNSIR

UNSIR_INITS = ("normal", "uniform")
UNSIR_PENALTIES = ("sum", "mean")


def _unsir_noise(new, classes, input_shape, s, gen, dev, progress) -> tuple[torch.Tensor, torch.Tensor]:
    """UNSIR step 1: error-maximising noise (N, *input_shape) and its labels, model frozen."""
    new.eval()
    frozen = [p.requires_grad for p in new.parameters()]
    for p in new.parameters():
        p.requires_grad_(False)
    y = torch.as_tensor(classes, device=dev).repeat_interleave(s["noise_samples"])
    draw = torch.randn if s["noise_init"] == "normal" else torch.rand
    noise = draw((y.numel(), *input_shape), generator=gen).to(dev).requires_grad_(True)
    opt = torch.optim.Adam([noise], lr=s["noise_lr"])
    for _ in tqdm(range(s["noise_steps"]), desc="unsir noise", disable=not progress):
        sq = noise.square().flatten(1).sum(1).mean() if s["penalty"] == "sum" else noise.square().mean()
        _step(opt, -nn.functional.cross_entropy(new(noise), y) + s["noise_reg"] * sq)
    for p, req in zip(new.parameters(), frozen):
        p.requires_grad_(req)
    return noise.detach(), y


def _unsir_epochs(new, data, subset, noise, noise_y, s, gen, dev, progress) -> None:
    """UNSIR steps 2 and 3: one impair epoch (retained + noise) and one repair epoch."""
    new.train()
    for phase, lr in (("impair", s["impair_lr"]), ("repair", s["repair_lr"])):
        opt = torch.optim.Adam(new.parameters(), lr=lr)
        for idx in tqdm(list(_batches(subset, s["batch_size"], gen)), desc=f"unsir {phase}", disable=not progress):
            xb, yb = data.x_train[idx].to(dev), data.y_train[idx].to(dev)
            if phase == "impair":
                pick = torch.randint(noise.shape[0], (min(s["batch_size"], noise.shape[0]),), generator=gen).to(dev)
                xb, yb = torch.cat([xb, noise[pick]]), torch.cat([yb, noise_y[pick]])
            _step(opt, nn.functional.cross_entropy(new(xb), yb))


def unsir(
    model: nn.Module,
    data: ImageData,
    classes: Sequence[int] | int,
    seed: int = 0,
    *,
    budget: str = "quick",
    noise_samples: int = 64,
    noise_steps: int = 50,
    noise_lr: float = 0.1,
    noise_reg: float = 0.1,
    noise_init: str = "normal",
    penalty: str = "sum",
    impair_lr: float = 0.02,
    repair_lr: float = 0.01,
    batch_size: int = 128,
    retain_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """UNSIR / FastMU (Tarun, Chundawat, Mandal, Kankanhalli, "Fast Yet Effective Machine
    Unlearning", IEEE TNNLS 2023; reference: ``vikram2000b/Fast-Machine-Unlearning``
    ``Machine Unlearning.ipynb``).

    1. Error-maximising noise: ``noise_samples`` input-shaped tensors per forgotten class,
       drawn from N(0, 1) (``noise_init="normal"``, the reference; ``"uniform"``: ours,
       U[0, 1)), labelled with that class and optimised with Adam (``noise_lr``, ``noise_steps``
       steps, model frozen) to maximise the loss, with the penalty ``noise_reg`` times the
       batch mean of each noise tensor's *sum* of squares (``penalty="sum"``, the reference;
       ``"mean"``: ours, the mean over all elements, 784x weaker on MNIST).
    2. Impair: one epoch over ``retain_samples`` retained samples (quick: 6,000; full: all),
       each batch joined by noise samples (Adam, lr ``impair_lr=0.02``, the reference's).
    3. Repair: one epoch over the retained samples alone (Adam, lr ``repair_lr=0.01``).

    Sizes (ours; the reference: 256 tensors, 40 steps): 64 noise tensors per class, 50 steps.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(classes, data.num_classes)
    check_budget(budget)
    for name, v in (("noise_lr", noise_lr), ("impair_lr", impair_lr), ("repair_lr", repair_lr)):
        check_positive(name, v)
    _choice("noise_init", noise_init, UNSIR_INITS)
    _choice("penalty", penalty, UNSIR_PENALTIES)
    if isinstance(noise_steps, bool) or int(noise_steps) < 0:
        raise ValueError(f"noise_steps must be an integer >= 0; got {noise_steps!r}")
    s = {"noise_samples": _positive_int("noise_samples", noise_samples), "noise_steps": int(noise_steps),
         "noise_lr": noise_lr, "noise_reg": check_positive("noise_reg", noise_reg, allow_zero=True), "noise_init": noise_init, "penalty": penalty,
         "impair_lr": impair_lr, "repair_lr": repair_lr, "batch_size": _positive_int("batch_size", batch_size)}
    n_r = _samples(retain_samples, "unsir_retain", budget)
    new, was_training, dev = _start(model)
    _, keep = _split(data, classes)
    with isolated_rng(seed, dev) as gen:
        noise, noise_y = _unsir_noise(new, classes, data.input_shape, s, gen, dev, progress)
        with torch.no_grad():
            noise_loss = float(nn.functional.cross_entropy(new(noise), noise_y))
        subset = _subsample(keep, n_r, gen)
        _unsir_epochs(new, data, subset, noise, noise_y, s, gen, dev, progress)
    details = {**s, "noise_loss": noise_loss, "retain_samples": int(subset.numel()), "budget": budget,
               "variant": "reference" if (noise_init, penalty) == ("normal", "sum") else "ours"}
    return _finish(new, was_training, "unsir", classes, t0, details)
