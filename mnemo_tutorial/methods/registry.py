"""One interface for every unlearning method: a task, a registry, one way to run them.

A method is a function ``run(model, task) -> ForgetResult`` registered under a name with the
reference it follows and a one-line summary::

    task = UnlearnTask(classes=[0], codes=trained.codes, data=data, profile=profile,
                       forget_settings=get_settings("mnist", "quick").forget, seed=0)
    result = run_method("ssd", trained.model, task)   # ForgetResult(model, report)

The benchmark (:func:`mnemo_tutorial.evaluation.bench.benchmark`), the command line and the chapters
find methods here and call them the same way; nothing else special-cases a method by name.
A method's failure to meet its own criterion is reported, not raised: the one-shot method
returns its result with ``report.status == "failed"`` (and its diagnosis) instead of
stopping a benchmark.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mnemo_tutorial.checks import check_forget_classes
from mnemo_tutorial.core.codes import MnemonicCodes
from mnemo_tutorial.core.forget import (
    ForgetFailed,
    ForgetRefused,
    ForgetReport,
    ForgetResult,
    forget,
    refused_result,
    resolve_settings,
)
from mnemo_tutorial.core.settings import Fixed, ForgetSettings
from mnemo_tutorial.core.step import (
    apply_step,
    class_fisher_ratio,
    layer_steps,
    resolve_params,
)
from mnemo_tutorial.methods.common import check_budget
from mnemo_tutorial.methods.controls import head_only, margin_of, suppress
from mnemo_tutorial.methods.finetune import finetune
from mnemo_tutorial.methods.fisher_forgetting import fisher_forgetting, fisher_noise
from mnemo_tutorial.methods.neggrad import neggrad
from mnemo_tutorial.methods.retrain import retrain
from mnemo_tutorial.methods.ssd import ssd
from mnemo_tutorial.methods.unsir import unsir
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.profiles import Profile

__all__ = [
    "METHODS",
    "NEEDS",
    "SSD_REPO",
    "get_method",
    "Method",
    "parse_methods",
    "register_method",
    "Run",
    "run_method",
    "UnlearnTask",
]

#: What a task may have to provide for a method (``Method.needs``).
NEEDS = ("codes", "data", "profile")


@dataclass(frozen=True)
class UnlearnTask:
    """Everything a method may need besides the model.

    classes: the classes to forget; codes: the model's mnemonic codes (None if it has none);
    data: the training/test data; profile: the training settings of the model;
    forget_settings: the one-shot method's settings (None: ``ForgetSettings()``); seed: for
    every random draw of the method; budget: ``"quick"`` or ``"full"``
    (:data:`mnemo_tutorial.methods.common.BUDGETS`); progress: show progress bars.
    """

    classes: Sequence[int]
    codes: MnemonicCodes | None
    data: ImageData
    profile: Profile | None
    forget_settings: ForgetSettings | None = None
    seed: int = 0
    budget: str = "quick"
    progress: bool = False

    def __post_init__(self) -> None:
        num = self.data.num_classes if self.data is not None else None
        if num is not None:
            object.__setattr__(self, "classes", tuple(check_forget_classes(self.classes, num)))
        check_budget(self.budget)
        if isinstance(self.seed, bool) or int(self.seed) != self.seed:
            raise ValueError(f"seed must be an integer; got {self.seed!r}")


Run = Callable[[nn.Module, UnlearnTask], ForgetResult]


@dataclass(frozen=True)
class Method:
    """A registered method: ``run(model, task) -> ForgetResult``; ``needs``: the task fields it
    uses (subset of :data:`NEEDS`); ``reference``: the paper and repository (file) it follows;
    ``summary``: one line; ``ours``: True for a variant of ours rather than a reference form;
    ``control``: True for a control (:mod:`~mnemo_tutorial.methods.controls`), the simplest
    edit that could produce a method's result, run beside the methods, proposed by no one."""

    name: str
    run: Run
    needs: tuple[str, ...]
    reference: str
    summary: str
    ours: bool = False
    control: bool = False

    @property
    def role(self) -> str:
        """``"control"``, ``"ours"`` (a variant of ours) or ``"reference"`` (a method as its
        authors run it)."""
        return "control" if self.control else "ours" if self.ours else "reference"

    def __post_init__(self) -> None:
        if self.ours and self.control:
            raise ValueError("a method is either a variant of ours or a control, not both")
        bad = [n for n in self.needs if n not in NEEDS]
        if bad:
            raise ValueError(f"needs must be a subset of {', '.join(NEEDS)}; got {bad[0]!r}")
        if not self.name or not self.reference.strip() or not self.summary.strip():
            raise ValueError("name, reference and summary must be non-empty")


METHODS: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to :data:`METHODS` (an existing name only with ``replace=True``)."""
    if method.name in METHODS and not replace:
        raise ValueError(
            f"method {method.name!r} is already registered; pass replace=True to replace it"
        )
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name is a one-line ValueError listing them."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {name!r}")
    return METHODS[name]


def run_method(name: str, model: nn.Module, task: UnlearnTask) -> ForgetResult:
    """Run method ``name`` on ``model`` for ``task`` (checks first that the task has what it
    needs)."""
    method = get_method(name)
    missing = [n for n in method.needs if getattr(task, n) is None]
    if missing:
        raise ValueError(f"task.{missing[0]} must be given for method {name!r}; got None")
    return method.run(model, task)


def parse_methods(text: str | Sequence[str] | None) -> list[str]:
    """``"all"`` / None -> every registered method; ``"mnemonic,ssd"`` -> that list (validated,
    in order)."""
    if text is None:
        return list(METHODS)
    parts = (
        [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p) for p in text]
    )
    if parts == ["all"]:
        return list(METHODS)
    bad = [p for p in parts if p not in METHODS]
    if bad or not parts or not all(parts):
        shown = bad[0] if bad else text
        raise ValueError(
            f"methods must be 'all' or a comma list of {', '.join(METHODS)}; got {shown!r}"
        )
    if len(set(parts)) != len(parts):
        raise ValueError(f"methods must not repeat a method; got {text!r}")
    return parts


# --------------------------------------------------------------------------- adapters


def _mnemonic(model: nn.Module, task: UnlearnTask) -> ForgetResult:
    """The one-shot step with the task's forgetting settings; a failed selection is returned,
    a refusal (codes that do not sit with their classes) too, with the model unchanged."""
    settings = task.forget_settings if task.forget_settings is not None else ForgetSettings()
    if task.codes is None:
        raise ValueError("mnemonic needs the model's mnemonic codes (task.codes)")
    t0 = time.perf_counter()
    try:
        return forget(model, task.codes, list(task.classes), settings)
    except ForgetFailed as exc:
        return exc.result
    except ForgetRefused as exc:  # no step: the row reports the refusal
        return refused_result(model, list(task.classes), exc, t0)


def _suppress(model: nn.Module, task: UnlearnTask) -> ForgetResult:
    """The output-suppression control with the margin of the task's data-free selection."""
    if task.codes is None:
        raise ValueError("suppress needs the model's mnemonic codes (task.codes)")
    return suppress(model, task.codes, list(task.classes), margin_of(task.forget_settings))


def _head_only(model: nn.Module, task: UnlearnTask) -> ForgetResult:
    """The one-shot step of the task's settings on the output layer only."""
    if task.codes is None:
        raise ValueError("head-only needs the model's mnemonic codes (task.codes)")
    return head_only(model, task.codes, list(task.classes), task.forget_settings)


def _code_score(
    model: nn.Module, codes: MnemonicCodes | torch.Tensor, classes: Sequence[int]
) -> float:
    """The authors' score of a model on its codes (code c has label c): error on the forgotten
    classes' codes + accuracy on the remaining classes' codes, model in eval mode."""
    x = codes.codes if isinstance(codes, MnemonicCodes) else codes
    p = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            pred = model(x.to(device=p.device, dtype=p.dtype)).argmax(1).cpu()
    finally:
        model.train(was_training)
    y = torch.arange(pred.numel())
    is_f = torch.isin(y, torch.as_tensor(list(classes), dtype=y.dtype))
    correct = (pred == y).float()
    forget_error = 1.0 - float(correct[is_f].mean()) if is_f.any() else 0.0
    return forget_error + (float(correct[~is_f].mean()) if (~is_f).any() else 0.0)


def _mnemonic_paper(model: nn.Module, task: UnlearnTask) -> ForgetResult:
    """The authors' procedure: the paper's fixed lambdas, no per-code Fisher normalisation, and
    their sign rule: both steps are built from one Fisher computation and the + step is kept
    only if its code score (:func:`_code_score`) is strictly higher, otherwise the - step.
    The criterion (no forget code keeps its class, every remaining code does) is reported,
    not raised; ``seconds`` covers the whole procedure."""
    t0 = time.perf_counter()
    settings = task.forget_settings if task.forget_settings is not None else ForgetSettings()
    if task.codes is None:
        raise ValueError("mnemonic-paper needs the model's mnemonic codes (task.codes)")
    classes = list(task.classes)
    settings, _ = resolve_settings(task.codes, settings)
    codes = task.codes.codes.to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        eta = class_fisher_ratio(
            model, codes, classes, normalize=False, params=resolve_params(model, settings.params)
        )
        lambdas = Fixed().lambdas(settings.paper_lambdas)
        steps = layer_steps(eta, *lambdas)
        candidates = {}
        for s in (1, -1):
            new = copy.deepcopy(model)
            apply_step(new, eta, steps, s)
            candidates[s] = new
    finally:
        model.train(was_training)
    scores = {s: _code_score(m, codes, classes) for s, m in candidates.items()}
    sign = 1 if scores[1] > scores[-1] else -1
    new = candidates[sign]
    new.train(was_training)
    clean = _codes_clean(new, codes, classes)
    report = ForgetReport(
        method="mnemonic-paper",
        forget=classes,
        seconds=time.perf_counter() - t0,
        status="ok" if clean else "failed",
        selection="fixed",
        lambda1=lambdas[0],
        lambda2=lambdas[1],
        sign=sign,
        steps=steps,
        details={
            "code_scores": scores,
            "criterion_met": clean,
            "normalize_fisher": False,
            "criterion": "no forget code keeps its class, every remaining code kept",
            "sign_rule": "authors': + only if its code score is strictly higher, else -",
        },
    )
    return ForgetResult(new, report)


def _codes_clean(model: nn.Module, codes: torch.Tensor, classes: Sequence[int]) -> bool:
    """No forget code predicted as its class and every remaining code kept (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            p = next(model.parameters())
            pred = model(codes.to(device=p.device, dtype=p.dtype)).argmax(1)
    finally:
        model.train(was_training)
    y = torch.arange(pred.numel(), device=pred.device)
    is_f = torch.isin(y, torch.as_tensor(list(classes), device=y.device))
    return bool((pred[is_f] != y[is_f]).all() and (pred[~is_f] == y[~is_f]).all())


def _baseline(fn: Callable[..., ForgetResult], **settings) -> Run:
    """An adapter that calls baseline ``fn`` with the task's data, classes, seed, budget and
    progress, plus fixed ``settings`` (for named variants)."""

    def run(model: nn.Module, task: UnlearnTask) -> ForgetResult:
        return fn(
            model,
            task.data,
            list(task.classes),
            task.seed,
            budget=task.budget,
            progress=task.progress,
            **settings,
        )

    return run


def _retrain(model: nn.Module, task: UnlearnTask) -> ForgetResult:
    if task.profile is None:
        raise ValueError("retrain needs the model's training profile (task.profile)")
    return retrain(
        model,
        task.data,
        list(task.classes),
        task.profile,
        task.seed,
        codes=task.codes,
        budget=task.budget,
        progress=task.progress,
    )


def _renamed(run: Run, name: str) -> Run:
    """``run`` with ``report.method`` set to ``name`` (for a variant registered under its own
    name)."""

    def wrapped(model: nn.Module, task: UnlearnTask) -> ForgetResult:
        result = run(model, task)
        result.report.method = name
        return result

    return wrapped


SSD_REPO = "https://github.com/if-loops/selective-synaptic-dampening"
_BUILTIN = (
    Method(
        "mnemonic",
        _mnemonic,
        ("codes",),
        "Yamashita et al., One-Shot Machine Unlearning with Mnemonic Code, ACML 2024, "
        "https://arxiv.org/abs/2306.05670; "
        "https://github.com/tomyamkum/OneShotMU-with-MNCode (main.py, utils.py)",
        "one step along the Fisher ratio of the class codes, data-free "
        "(our lambda selection and normalisation)",
    ),
    Method(
        "mnemonic-paper",
        _mnemonic_paper,
        ("codes",),
        "Yamashita et al., ACML 2024, https://arxiv.org/abs/2306.05670; "
        "https://github.com/tomyamkum/OneShotMU-with-MNCode (main.py forget, utils.py get_fishers)",
        "the authors' step: paper lambdas, unnormalised code Fisher, their sign rule "
        "(our epsilon placement)",
    ),
    Method(
        "retrain",
        _retrain,
        ("data", "profile"),
        "Bourtoule et al., Machine Unlearning, IEEE S&P 2021, https://arxiv.org/abs/1912.03817",
        "train from scratch on the retained data with the original recipe (exact unlearning)",
    ),
    Method(
        "finetune",
        _baseline(finetune),
        ("data",),
        f"Golatkar et al., CVPR 2020, https://arxiv.org/abs/1911.04933; {SSD_REPO} "
        "(forget_full_class_strategies.py finetune, src/utils.py fit_one_cycle)",
        "SGD on the retained data only; budget='full' is the reference's 5 epochs, 'quick' ours",
    ),
    Method(
        "neggrad",
        _baseline(neggrad),
        ("data",),
        "Golatkar et al., CVPR 2020, https://arxiv.org/abs/1911.04933; NegGrad+: Kurmanji et al., "
        "NeurIPS 2023, https://github.com/meghdadk/SCRUB",
        "gradient ascent on the forget set; the stop-at-100%-batch-error rule is ours",
    ),
    Method(
        "ssd",
        _baseline(ssd),
        ("data",),
        f"Foster, Schoepf, Brintrup, AAAI 2024, https://arxiv.org/abs/2308.07707; {SSD_REPO} "
        "(src/ssd.py, src/forget_full_class_main.py)",
        "dampen weights far more important to the forget set; authors' class-sorted loaders, "
        "alpha 10, lambda 1",
    ),
    Method(
        "fisher",
        _baseline(fisher_forgetting),
        ("data",),
        "Golatkar, Achille, Soatto, CVPR 2020, https://arxiv.org/abs/1911.04933; "
        "https://github.com/AdityaGolatkar/SelectiveForgetting (Forgetting.ipynb)",
        "true-Fisher noise with the reference clamps and scaling and the forgotten output "
        "row reset",
    ),
    Method(
        "unsir",
        _baseline(unsir),
        ("data",),
        "Tarun et al., Fast Yet Effective Machine Unlearning, IEEE TNNLS 2023, "
        "https://arxiv.org/abs/2111.08947; "
        "https://github.com/vikram2000b/Fast-Machine-Unlearning (Machine Unlearning.ipynb)",
        "error-maximising noise for the class, one impair and one repair epoch",
    ),
    Method(
        "ssd-shuffled",
        _renamed(_baseline(ssd, order="shuffled"), "ssd-shuffled"),
        ("data",),
        f"ours, a variant of SSD (Foster et al., AAAI 2024, {SSD_REPO})",
        "SSD with shuffled (mixed-class) loaders instead of the authors' class-sorted ones",
        ours=True,
    ),
    Method(
        "fisher-noise",
        _baseline(fisher_noise),
        ("data",),
        "ours, a variant of Fisher forgetting (Golatkar et al., CVPR 2020, https://arxiv.org/abs/1911.04933)",
        "empirical-Fisher noise per weight with our scale and clip, no output reset",
        ours=True,
    ),
)
_CONTROLS = (
    Method(
        "suppress",
        _suppress,
        ("codes",),
        "control: output suppression, lowering one output bias (the foil of "
        "Yamashita et al.'s evaluation, ACML 2024, https://arxiv.org/abs/2306.05670)",
        "lower the class's output bias until its code is the default margin below the "
        "best other class (data-free)",
        control=True,
    ),
    Method(
        "head-only",
        _head_only,
        ("codes",),
        "control: the one-shot step of Yamashita et al., ACML 2024, "
        "https://arxiv.org/abs/2306.05670, restricted to the output layer",
        "the book's one-shot step with every tensor but the output layer's left in place",
        control=True,
    ),
)
for _m in _BUILTIN + _CONTROLS:
    register_method(_m)
