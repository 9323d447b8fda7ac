"""Unlearning baselines with the same call shape as the one-shot method.

Every method takes a trained model, the data it was trained on and the classes to forget,
and returns a :class:`~mnemo_tutorial.unlearn.ForgetResult` (a new model and a
:class:`~mnemo_tutorial.unlearn.ForgetReport`)::

    result = BASELINES["ssd"](model, data, forget=[0], profile=profile, seed=0)
    result.model, result.report.seconds

Unlike the mnemonic-code method, all of them need the training data at forgetting time.
The input model is never modified: each method works on a deep copy, restores the input's
train/eval mode on both models and leaves no ``.grad`` behind. ``seconds`` is the wall clock
of the whole call (copy included), as for :func:`mnemo_tutorial.unlearn.forget`.

Data budgets: with the ``quick`` profile (or ``profile=None``) Fisher forgetting, UNSIR,
fine-tuning and NegGrad work on random subsets of the training data whose sizes are in
:data:`QUICK_BUDGETS`, which keeps each of them to seconds on a laptop CPU; with the
``standard`` and ``paper`` profiles they use all the data, as in the original papers. SSD
needs one backward pass per mini-batch and uses all the training data in every profile.
Every budget can be set explicitly (an int, or ``None`` for all).
"""
from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .codes import MnemonicCodes
from .data import ImageData
from .fisher import ParamDict, oracle_fisher, stable_cross_entropy
from .models import make_model
from .profiles import Profile, get_profile
from .train import train_model
from .unlearn import ForgetReport, ForgetResult, check_forget_classes
from .utils import module_device, seed_everything

# Default data budgets (number of training samples) of the quick profile. ``None`` = all.
QUICK_BUDGETS: dict[str, int] = {
    "ssd_forget": 1000,  # forget-set samples for SSD's I_f (importance="fisher" only)
    "ssd_data": 4000,  # training samples (all classes) for SSD's I_D (importance="fisher" only)
    "fisher_retain": 4000,  # retained samples for the Fisher-forgetting noise
    "unsir_retain": 6000,  # retained samples for UNSIR's impair and repair epochs
    "finetune_retain": 20000,  # retained samples per fine-tuning epoch
    "neggrad_forget": 2000,  # forget-set samples NegGrad ascends on
}


# --------------------------------------------------------------------------- helpers


def _is_quick(profile: Profile | None) -> bool:
    return profile is None or profile.name == "quick"


def _budget(value: int | None | str, key: str, quick: bool) -> int | None:
    """Resolve a data budget: ``"default"`` -> ``QUICK_BUDGETS[key]`` when ``quick`` and
    ``None`` (all the data) otherwise; ``None`` -> all; an int -> that many."""
    if isinstance(value, str):
        if value != "default":
            raise ValueError(f"{key} must be a positive integer, None or 'default'; got {value!r}")
        return QUICK_BUDGETS[key] if quick else None
    if value is None:
        return None
    if int(value) < 1:
        raise ValueError(f"{key} must be a positive integer, None or 'default'; got {value!r}")
    return int(value)


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}; got {value!r}")


def _subsample(idx: torch.Tensor, k: int | None, gen: torch.Generator) -> torch.Tensor:
    """A random subset of ``k`` indices of ``idx`` (all of them, shuffled, when k is None)."""
    perm = idx[torch.randperm(idx.numel(), generator=gen)]
    return perm if k is None else perm[:k]


def _split(data: ImageData, classes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into the training split) of the forgotten and of the retained samples."""
    is_f = torch.isin(data.y_train, torch.as_tensor(list(classes), dtype=data.y_train.dtype))
    return torch.nonzero(is_f).flatten(), torch.nonzero(~is_f).flatten()


def _start(model: nn.Module) -> tuple[nn.Module, bool, torch.device]:
    """A deep copy of ``model`` without gradients, the input's mode and its device."""
    new = copy.deepcopy(model)
    for p in new.parameters():
        p.grad = None
    return new, model.training, module_device(model)


def _finish(
    new: nn.Module, was_training: bool, method: str, classes: list[int], t0: float, details: dict
) -> ForgetResult:
    """Clear gradients, restore the input's mode on the new model and wrap up the report."""
    for p in new.parameters():
        p.grad = None
    new.train(was_training)
    if module_device(new).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return ForgetResult(new, ForgetReport(method=method, forget=classes, seconds=seconds, details=details))


def _sgd(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def _batches(idx: torch.Tensor, batch_size: int, gen: torch.Generator):
    perm = idx[torch.randperm(idx.numel(), generator=gen)]
    for start in range(0, perm.numel(), batch_size):
        yield perm[start : start + batch_size]


def _fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> ParamDict:
    """Diagonal empirical Fisher {name: param_shape} of ``model`` (eval mode) over (x, y)."""
    model.eval()
    return oracle_fisher(model, x, y, batch_size=batch_size)


def _fresh_copy(model: nn.Module, profile: Profile, num_classes: int, seed: int) -> nn.Module:
    """An untrained model of ``model``'s architecture, initialised from ``seed``.

    When ``profile.model`` builds the same architecture, it is built exactly as
    :func:`~mnemo_tutorial.train.train_or_load` builds it (``seed_everything(seed)`` then
    ``make_model``), so the retrained model starts from the original's initial weights;
    otherwise every layer of a copy is re-initialised (``reset_parameters``)."""
    seed_everything(seed)
    try:
        fresh = make_model(profile.model, num_classes=num_classes, **profile.extra.get("model_kwargs", {}))
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        same = type(fresh) is type(model) and {k: v.shape for k, v in fresh.state_dict().items()} == shapes
    except (ValueError, TypeError):
        same = False
    if same:
        p = next(model.parameters(), None)
        return fresh.to(device=module_device(model), dtype=p.dtype if p is not None else None)
    fresh = copy.deepcopy(model)
    seed_everything(seed)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()
    for p in fresh.parameters():
        p.grad = None
    return fresh


# --------------------------------------------------------------------------- retrain


def retrain(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    profile: Profile | None = None,
    seed: int = 0,
    *,
    codes: MnemonicCodes | None = None,
    t_mix: float | None = None,
    epochs: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> ForgetResult:
    """Retrain from scratch without the forgotten classes: the gold standard of exact
    unlearning (the model has provably never seen them). See e.g. Bourtoule et al.,
    "Machine Unlearning", IEEE S&P 2021, and the retraining reference of every paper compared
    here (Golatkar et al., CVPR 2020; Foster et al., AAAI 2024; Yamashita et al., ACML 2024).

    A fresh, untrained model of ``model``'s architecture is trained with
    :func:`mnemo_tutorial.train.train_model` and the same ``profile`` (default:
    ``get_profile(data.name)``; ``epochs`` overrides its epoch count) on the training samples
    of the remaining classes. It is built as :func:`~mnemo_tutorial.train.train_or_load`
    builds the original (``seed_everything(seed)``, then ``make_model(profile.model)``), so
    with the original's seed both start from the same initial weights; a model the profile
    cannot build is re-initialised layer by layer (``reset_parameters``) instead.

    Codes: mnemonic-code mixing is kept for the remaining classes (``t_mix`` defaults to
    ``profile.t_mix``; pass ``t_mix=0`` to train without codes). The forgotten classes' codes
    are never shown since their samples are gone. Keeping the codes makes the retrained
    model the same recipe as the original minus the forgotten data, so the two differ only
    in what unlearning is meant to remove, and the retrained model can itself be forgotten
    later with the one-shot method. ``codes`` defaults to the codes
    :func:`~mnemo_tutorial.train.train_or_load` draws for ``seed`` (same seed, same codes).
    The output layer keeps all ``data.num_classes`` outputs.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(forget, data.num_classes)
    profile = profile if profile is not None else get_profile(data.name)
    if epochs is not None:
        if int(epochs) < 1:
            raise ValueError(f"epochs must be a positive integer; got {epochs!r}")
        profile = profile.replace(epochs=int(epochs))
    t_mix = profile.t_mix if t_mix is None else float(t_mix)
    profile = profile.replace(t_mix=t_mix)
    if codes is None:
        codes = MnemonicCodes.random(data.num_classes, data.input_shape, seed=seed, distribution=profile.code_dist)
    was_training, dev = model.training, module_device(model)
    new = _fresh_copy(model, profile, data.num_classes, seed)
    _, keep = _split(data, classes)
    augment = None
    if profile.augment:
        from .augment import random_crop_flip

        augment = random_crop_flip
    result = train_model(
        new, data.x_train[keep], data.y_train[keep], codes, profile, seed=seed,
        device=device if device is not None else dev, augment=augment, progress=progress,
    )
    details = {
        "epochs": profile.epochs, "t_mix": t_mix, "train_samples": int(keep.numel()),
        "profile": profile.name, "train_seconds": result.train_seconds,
    }
    return _finish(result.model, was_training, "retrain", classes, t0, details)


# --------------------------------------------------------------------------- fine-tune


def finetune(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    profile: Profile | None = None,
    seed: int = 0,
    *,
    epochs: int = 2,
    lr: float = 0.02,
    momentum: float = 0.9,
    batch_size: int = 128,
    retain_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """Fine-tune on the remaining data only and rely on catastrophic forgetting of the
    forgotten classes ("Fine-tune" baseline of Golatkar et al., CVPR 2020, and of Foster et
    al., AAAI 2024).

    Defaults: ``epochs=2`` of SGD (lr 0.02, momentum 0.9, batch 128) over
    ``retain_samples`` retained training samples (quick profile: 20,000 drawn afresh each
    epoch; other profiles: all retained samples).
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(forget, data.num_classes)
    if int(epochs) < 1:
        raise ValueError(f"epochs must be a positive integer; got {epochs!r}")
    _positive("lr", lr)
    n_keep = _budget(retain_samples, "finetune_retain", _is_quick(profile))
    new, was_training, dev = _start(model)
    gen = seed_everything(seed)
    _, keep = _split(data, classes)
    opt = _sgd(new, lr, momentum)
    new.train()
    steps = 0
    for _ in tqdm(range(int(epochs)), desc="fine-tune", disable=not progress):
        for idx in _batches(_subsample(keep, n_keep, gen), batch_size, gen):
            loss = nn.functional.cross_entropy(new(data.x_train[idx].to(dev)), data.y_train[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    details = {"epochs": int(epochs), "lr": lr, "steps": steps, "retain_samples": n_keep}
    return _finish(new, was_training, "finetune", classes, t0, details)


# --------------------------------------------------------------------------- NegGrad


def neggrad(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    profile: Profile | None = None,
    seed: int = 0,
    *,
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
    Kurmanji et al., NeurIPS 2023).

    Defaults: SGD lr 0.05, momentum 0.9, batches of 128 forget samples drawn from
    ``forget_samples`` of them (quick profile: 2,000; else all), at most ``max_epochs=5``
    passes, pure ascent (``retain_weight=0``). Ascent is unbounded (the loss grows without
    limit), so it stops as soon as the error on the current forget batch reaches
    ``stop_error`` (1.0 = every sample of the batch misclassified): early stopping that uses
    training data only. Without it NegGrad destroys the whole model.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(forget, data.num_classes)
    _positive("lr", lr)
    if not 0.0 <= retain_weight < 1.0:
        raise ValueError(f"retain_weight must be in [0, 1); got {retain_weight!r}")
    if not 0.0 < stop_error <= 1.0:
        raise ValueError(f"stop_error must be in (0, 1]; got {stop_error!r}")
    n_f = _budget(forget_samples, "neggrad_forget", _is_quick(profile))
    new, was_training, dev = _start(model)
    gen = seed_everything(seed)
    f_idx, keep = _split(data, classes)
    opt = _sgd(new, lr, momentum)
    new.train()
    steps, stopped, err = 0, False, 0.0
    for _ in range(int(max_epochs)):
        for idx in tqdm(list(_batches(_subsample(f_idx, n_f, gen), batch_size, gen)), desc="neggrad", disable=not progress):
            xb, yb = data.x_train[idx].to(dev), data.y_train[idx].to(dev)
            logits = new(xb)
            err = float((logits.argmax(1) != yb).float().mean())
            if err >= stop_error:
                stopped = True
                break
            loss = -(1.0 - retain_weight) * stable_cross_entropy(logits, yb)
            if retain_weight > 0:
                r = keep[torch.randint(keep.numel(), (batch_size,), generator=gen)]
                loss = loss + retain_weight * nn.functional.cross_entropy(new(data.x_train[r].to(dev)), data.y_train[r].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        if stopped:
            break
    details = {"lr": lr, "steps": steps, "retain_weight": retain_weight, "stopped_early": stopped,
               "last_forget_batch_error": err, "forget_samples": n_f}
    return _finish(new, was_training, "neggrad", classes, t0, details)


# --------------------------------------------------------------------------- SSD

SSD_IMPORTANCES = ("batch", "fisher")


def _batch_importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> ParamDict:
    """SSD's importance: the squared gradient of each mini-batch's mean loss, averaged over
    the ``ceil(N / batch_size)`` batches of (x, y) (in the given order). {name: param_shape}."""
    model.eval()
    dev = module_device(model)
    params = [p for _, p in model.named_parameters()]
    total = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    batches = 0
    for start in range(0, y.numel(), batch_size):
        loss = stable_cross_entropy(model(x[start : start + batch_size].to(dev)), y[start : start + batch_size].to(dev))
        grads = torch.autograd.grad(loss, params)
        for k, g in zip(total, grads):
            total[k] += g.square()
        batches += 1
    return {k: v / max(1, batches) for k, v in total.items()}


def ssd(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    profile: Profile | None = None,
    seed: int = 0,
    *,
    alpha: float = 10.0,
    lam: float = 1.0,
    importance: str = "batch",
    batch_size: int = 64,
    forget_samples: int | None | str = "default",
    data_samples: int | None | str = "default",
) -> ForgetResult:
    """Selective Synaptic Dampening (Foster, Schoepf, Brintrup, AAAI 2024).

    Two importances per parameter: ``I_f`` on the forget set and ``I_D`` on the full training
    data (all classes, forget set included). Every parameter with ``I_f > alpha * I_D`` is
    multiplied by ``beta = min(lam * I_D / I_f, 1)``; the others are left alone. Defaults
    are the paper's: ``alpha=10``, ``lam=1``.

    ``importance``:
      * ``"batch"`` (default, as in the authors' implementation): the squared gradient of the
        mean loss of each mini-batch of ``batch_size=64`` samples (their default batch size),
        averaged over the batches. Here the training data is shuffled with ``seed`` (their
        loader concatenates the retained and the forget data in order); the result depends on
        the batch size and on that order. One backward pass per batch, so the default budget
        is all the training data in every profile.
      * ``"fisher"``: the diagonal empirical Fisher (mean *per-sample* squared gradient,
        vectorised :func:`mnemo_tutorial.fisher.oracle_fisher`). Caveat: since the forget set
        is part of D, ``I_D >= (N_f / N) * I_f`` and the ratio ``I_f / I_D`` cannot exceed
        ``N / N_f`` (about 10 for one MNIST class): with ``alpha=10`` almost nothing is
        selected, so use a smaller ``alpha`` with this mode. Default budgets: 1,000 forget
        samples and 4,000 training samples in the quick profile, all of them otherwise.

    ``forget_samples`` / ``data_samples``: random subsets for I_f / I_D (``None`` = all).
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(forget, data.num_classes)
    _positive("alpha", alpha)
    _positive("lam", lam)
    if importance not in SSD_IMPORTANCES:
        raise ValueError(f"importance must be one of {', '.join(SSD_IMPORTANCES)}; got {importance!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    quick = importance == "fisher" and _is_quick(profile)
    n_f = _budget(forget_samples, "ssd_forget", quick)
    n_d = _budget(data_samples, "ssd_data", quick)
    new, was_training, dev = _start(model)
    gen = seed_everything(seed)
    f_idx, _ = _split(data, classes)
    fi = _subsample(f_idx, n_f, gen)
    di = _subsample(torch.arange(data.y_train.numel()), n_d, gen)
    if importance == "batch":
        i_f = _batch_importance(new, data.x_train[fi], data.y_train[fi], int(batch_size))
        i_d = _batch_importance(new, data.x_train[di], data.y_train[di], int(batch_size))
    else:
        i_f = _fisher(new, data.x_train[fi], data.y_train[fi], int(batch_size))
        i_d = _fisher(new, data.x_train[di], data.y_train[di], int(batch_size))
    selected, total = 0, 0
    with torch.no_grad():
        for name, p in new.named_parameters():
            sel = i_f[name] > alpha * i_d[name]  # implies I_f > 0
            beta = torch.clamp(lam * i_d[name] / torch.where(sel, i_f[name], torch.ones_like(i_f[name])), max=1.0)
            p.mul_(torch.where(sel, beta, torch.ones_like(beta)).to(p.dtype))
            selected += int(sel.sum())
            total += p.numel()
    details = {"alpha": alpha, "lambda": lam, "importance": importance, "batch_size": int(batch_size),
               "forget_samples": int(fi.numel()), "data_samples": int(di.numel()),
               "dampened_params": selected, "dampened_fraction": selected / max(1, total)}
    return _finish(new, was_training, "ssd", classes, t0, details)


# --------------------------------------------------------------------------- Fisher forgetting


def fisher_forgetting(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    profile: Profile | None = None,
    seed: int = 0,
    *,
    alpha: float = 1e-8,
    max_inverse: float = 1e8,
    eps: float = 1e-8,
    retain_samples: int | None | str = "default",
    batch_size: int = 64,
) -> ForgetResult:
    """Fisher forgetting (Golatkar, Achille, Soatto, CVPR 2020, "Eternal Sunshine of the
    Spotless Net"; the paper we reproduce calls it SFDN).

    Adds Gaussian noise whose variance is proportional to the inverse diagonal Fisher of the
    *retained* data: ``w <- w + sqrt(alpha * min(1 / (F_r + eps), max_inverse)) * N(0, 1)``.
    Parameters the remaining classes do not rely on (small ``F_r``) get the most noise,
    which destroys what only the forgotten classes used. ``max_inverse`` clips the inverse
    Fisher so that unused parameters get bounded noise. ``F_r`` is the empirical Fisher
    (mean squared per-sample gradient, :func:`mnemo_tutorial.fisher.oracle_fisher`) over
    ``retain_samples`` random retained samples (quick profile: 4,000; else all).

    Defaults ``alpha=1e-8``, ``max_inverse=1e8`` (noise standard deviation at most 1.0)
    maximised E_F + A_R on a small grid (alpha 3e-9..1e-7, clip 3e6..1e8) for a quick-profile
    MNIST MLP forgetting class 0, scored on the test set, a choice that favours this
    baseline. The best values move with the model (retune them for each one), and the
    result varies with the noise draw (``seed``). As in the paper's description, only noise is added; the authors' code also
    resets the forgotten class's output weights, a class-specific shortcut left out here.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(forget, data.num_classes)
    _positive("alpha", alpha)
    _positive("max_inverse", max_inverse)
    _positive("eps", eps)
    n_r = _budget(retain_samples, "fisher_retain", _is_quick(profile))
    new, was_training, dev = _start(model)
    gen = seed_everything(seed)
    _, keep = _split(data, classes)
    ri = _subsample(keep, n_r, gen)
    f_r = _fisher(new, data.x_train[ri], data.y_train[ri], batch_size)
    std_sum, n = 0.0, 0
    with torch.no_grad():
        for name, p in new.named_parameters():
            var = alpha * torch.clamp(1.0 / (f_r[name] + eps), max=max_inverse)
            noise = torch.randn(p.shape, generator=gen).to(device=p.device, dtype=p.dtype)
            std = var.sqrt().to(p.dtype)
            p.add_(std * noise)
            std_sum += float(std.sum())
            n += p.numel()
    details = {"alpha": alpha, "max_inverse": max_inverse, "retain_samples": int(ri.numel()),
               "mean_noise_std": std_sum / max(1, n)}
    return _finish(new, was_training, "fisher", classes, t0, details)


# --------------------------------------------------------------------------- UNSIR


def unsir(
    model: nn.Module,
    data: ImageData,
    forget: Sequence[int] | int,
    profile: Profile | None = None,
    seed: int = 0,
    *,
    noise_samples: int = 64,
    noise_steps: int = 50,
    noise_lr: float = 0.1,
    noise_reg: float = 0.1,
    impair_lr: float = 0.02,
    repair_lr: float = 0.01,
    batch_size: int = 128,
    retain_samples: int | None | str = "default",
    progress: bool = False,
) -> ForgetResult:
    """UNSIR / FastMU (Tarun, Chundawat, Mandal, Kankanhalli, "Fast Yet Effective Machine
    Unlearning", IEEE TNNLS 2023).

    1. Error-maximising noise: ``noise_samples`` input-shaped tensors per forgotten class,
       labelled with that class, optimised with Adam (lr ``noise_lr``, ``noise_steps`` steps,
       model frozen) to *maximise* the model's loss on that label, with an L2 penalty
       ``noise_reg * mean(N^2)`` that keeps the noise bounded.
    2. Impair: one epoch over ``retain_samples`` retained samples, each batch joined by a
       batch of the noise (Adam, lr ``impair_lr``).
    3. Repair: one epoch over the retained samples alone (Adam, lr ``repair_lr``).

    Defaults: 64 noise tensors, 50 steps, lr 0.1, penalty 0.1; impair lr 0.02, repair lr
    0.01 (the paper's rates), batch 128, ``retain_samples`` = 6,000 in the quick profile
    (the paper also uses a subset of the retained data), all retained samples otherwise.
    """
    t0 = time.perf_counter()
    classes = check_forget_classes(forget, data.num_classes)
    for name, v in (("noise_lr", noise_lr), ("impair_lr", impair_lr), ("repair_lr", repair_lr)):
        _positive(name, v)
    _positive("noise_reg", noise_reg, allow_zero=True)
    if int(noise_samples) < 1 or int(noise_steps) < 0:
        raise ValueError(f"noise_samples must be >= 1 and noise_steps >= 0; got {noise_samples!r}, {noise_steps!r}")
    n_r = _budget(retain_samples, "unsir_retain", _is_quick(profile))
    new, was_training, dev = _start(model)
    gen = seed_everything(seed)
    _, keep = _split(data, classes)

    # 1. error-maximising noise, model frozen
    new.eval()
    for p in new.parameters():
        p.requires_grad_(False)
    noise_y = torch.as_tensor(classes, device=dev).repeat_interleave(int(noise_samples))
    noise = torch.rand((noise_y.numel(), *data.input_shape), generator=gen).to(dev).requires_grad_(True)
    nopt = torch.optim.Adam([noise], lr=noise_lr)
    for _ in tqdm(range(int(noise_steps)), desc="unsir noise", disable=not progress):
        loss = -nn.functional.cross_entropy(new(noise), noise_y) + noise_reg * noise.square().mean()
        nopt.zero_grad(set_to_none=True)
        loss.backward()
        nopt.step()
    noise = noise.detach()
    for p in new.parameters():
        p.requires_grad_(True)
    noise_loss = float(nn.functional.cross_entropy(new(noise), noise_y).detach())

    # 2. impair (retained + noise), 3. repair (retained only)
    subset = _subsample(keep, n_r, gen)
    new.train()
    for phase, lr in (("impair", impair_lr), ("repair", repair_lr)):
        opt = torch.optim.Adam(new.parameters(), lr=lr)
        for idx in tqdm(list(_batches(subset, batch_size, gen)), desc=f"unsir {phase}", disable=not progress):
            xb, yb = data.x_train[idx].to(dev), data.y_train[idx].to(dev)
            if phase == "impair":
                pick = torch.randint(noise.shape[0], (min(batch_size, noise.shape[0]),), generator=gen).to(dev)
                xb, yb = torch.cat([xb, noise[pick]]), torch.cat([yb, noise_y[pick]])
            loss = nn.functional.cross_entropy(new(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    details = {"noise_samples": int(noise_samples), "noise_steps": int(noise_steps), "noise_loss": noise_loss,
               "impair_lr": impair_lr, "repair_lr": repair_lr, "retain_samples": int(subset.numel())}
    return _finish(new, was_training, "unsir", classes, t0, details)


Baseline = Callable[..., ForgetResult]

#: name -> method(model, data, forget, profile=None, seed=0, **kwargs) -> ForgetResult
BASELINES: dict[str, Baseline] = {
    "retrain": retrain,
    "finetune": finetune,
    "neggrad": neggrad,
    "ssd": ssd,
    "fisher": fisher_forgetting,
    "unsir": unsir,
}


def get_baseline(name: str) -> Baseline:
    """The baseline ``name`` (one of :data:`BASELINES`)."""
    if name not in BASELINES:
        raise ValueError(f"method must be one of {', '.join(BASELINES)}; got {name!r}")
    return BASELINES[name]
