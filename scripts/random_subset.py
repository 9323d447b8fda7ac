"""Forgetting a random 1 % of the MNIST training samples (not a class): what the one-shot method
can do, against retraining without them, per seed of the MNIST ``quick`` profile.

    MNEMO_MIRROR=/path/to/mirror MNEMO_DATA=$(mktemp -d) OMP_NUM_THREADS=1 \\
        python scripts/random_subset.py --seeds 0,1,2 --fraction 0.01 --report mnemo_tutorial/results/random-subset-mnist.json

For each seed s, the subset is ``round(fraction * N)`` training samples drawn with
``torch.Generator().manual_seed(s)`` (a ``randperm``; the same generator then draws as many
test samples, the non-members of the membership audit). Three models:

* ``original``: ``train_or_load(quick, mnist, seed=s)`` (the data root's cache, the shipped
  model for seed 0, else trained now), trained with the mnemonic codes on all N samples;
* ``retrain``: the same profile, initial weights (``checkpoints.initial_model``) and codes,
  trained from scratch on the N - k samples outside the subset (``training.loop.train_model``
  as ``methods/retrain.py`` does): the exact-unlearning reference;
* ``one-shot``: ``mnemo_tutorial.forget(model, codes, classes, settings)`` takes class indices
  only (the JSON records its signature and the fields of ``UnlearnTask``, to show there is no
  sample-level entry point). The nearest request a user can make is to forget every class
  present in the subset; when the package refuses it (``forget`` must leave one class), the
  refusal is recorded verbatim and there is no one-shot model. Nothing works around it.

Per model: accuracy (%) on the subset, on the remaining training samples and on the test set;
the loss-threshold membership-inference AUC of the subset against the k test samples
(``evaluation.metrics.membership_inference_auc``, 0.5 = members look like unseen data); the
training seconds (recorded, not measured, for a model loaded from the cache or the shipped
models: see ``train_seconds_source``). Per seed, the mean Jensen-Shannon divergence (bits, 0 to
1) between the original's and the retrained model's softmax outputs on the subset, and, for
scale, on k remaining training samples (seen by both) and on the k test samples (seen by
neither). The summary gives the mean and 95 % Student-t interval over seeds of every number.

Reading it: the retrained model never saw the subset, so its subset accuracy and AUC are those
of unseen data. If the original's are the same within the seed-to-seed spread (the 95 %
intervals of the gaps original - retrain contain 0), the original already behaves as if it had
forgotten the subset: on MNIST the random-subset task is then nearly vacuous, and a method that
does nothing would pass it. When only the accuracy gap is measurable and the AUC gap is not, the
difference exists (a few samples of k; the JS divergence on the subset, against that on data
both or neither model saw, shows where) but the loss-threshold audit cannot see it. The
``reading`` field states this from the numbers (its ``flags`` and ``verdict_rule`` say how), not
by hand.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ("original", "retrain", "one-shot")
METRICS = ("subset_accuracy", "remaining_accuracy", "test_accuracy", "mia_auc", "train_seconds")
COMPARISONS = ("js_subset_bits", "js_remaining_bits", "js_test_bits", "subset_accuracy_gap", "mia_auc_gap")
ENV_SHOWN = ("MNEMO_MIRROR", "MNEMO_DATA", "OMP_NUM_THREADS")


# ----------------------------------------------------------------------------- arguments
def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; a ValueError naming ``--seeds`` unless they are distinct
    non-negative integers (at least one)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated non-negative integers; got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"--seeds must be comma-separated non-negative integers; got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct; got {text!r}")
    return seeds


def check_fraction(value) -> float:
    """``value`` as a float in (0, 0.5]; a ValueError naming ``--fraction`` otherwise."""
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"--fraction must be a number in (0, 0.5]; got {value!r}") from None
    if not (math.isfinite(fraction) and 0.0 < fraction <= 0.5):
        raise ValueError(f"--fraction must be a number in (0, 0.5]; got {value!r}")
    return fraction


# ----------------------------------------------------------------------------- the subset
def draw_split(n_train: int, n_test: int, fraction: float, seed: int):
    """(subset, keep, nonmembers): ``round(fraction * n_train)`` training indices drawn with a
    generator seeded by ``seed``, the other training indices, and as many test indices drawn
    next from the same generator (all sorted)."""
    import torch

    k = round(check_fraction(fraction) * n_train)
    if k < 1 or k > n_test:
        raise ValueError(f"--fraction {fraction} gives {k} of {n_train} samples; need 1 to {n_test} (test size)")
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n_train, generator=gen)
    subset, keep = order[:k].sort().values, order[k:].sort().values
    nonmembers = torch.randperm(n_test, generator=gen)[:k].sort().values
    return subset, keep, nonmembers


# ----------------------------------------------------------------------------- measurements
def accuracy(model, x, y) -> float:
    """Accuracy (%) of ``model`` on (x, y)."""
    from mnemo_tutorial.evaluation.metrics import predict

    return 100.0 * float((predict(model, x) == y.cpu()).double().mean())


def mean_js_bits(model_a, model_b, x) -> float:
    """Mean over the samples x of the Jensen-Shannon divergence (base 2, in [0, 1]) between
    the two models' softmax outputs."""
    import torch

    from mnemo_tutorial.evaluation.metrics import batched_eval

    pa = batched_eval(model_a, lambda xb: model_a(xb).float().softmax(1), x)
    pb = batched_eval(model_b, lambda xb: model_b(xb).float().softmax(1), x)
    m = 0.5 * (pa + pb)

    def kl(p: torch.Tensor) -> torch.Tensor:
        return torch.where(p > 0, p * (torch.log2(p.clamp_min(1e-45)) - torch.log2(m.clamp_min(1e-45))), 0.0).sum(1)

    return float((0.5 * kl(pa) + 0.5 * kl(pb)).double().mean())


def model_row(model, data, split, seconds: float | None, seconds_source: str) -> dict:
    """Accuracies (%), membership AUC of the subset against the non-members and training time."""
    from mnemo_tutorial.evaluation.metrics import membership_inference_auc

    subset, keep, non = split
    return {
        "subset_accuracy": accuracy(model, data.x_train[subset], data.y_train[subset]),
        "remaining_accuracy": accuracy(model, data.x_train[keep], data.y_train[keep]),
        "test_accuracy": accuracy(model, data.x_test, data.y_test),
        "mia_auc": membership_inference_auc(model, data.x_train[subset], data.y_train[subset],
                                            data.x_test[non], data.y_test[non]),
        "train_seconds": seconds, "train_seconds_source": seconds_source,
    }


def comparison(original, retrained, data, split, seed: int) -> dict:
    """JS divergence original vs retrain on the subset, on as many remaining training samples
    (drawn with ``seed``) and on the non-member test samples; the gaps original - retrain."""
    import torch

    subset, keep, non = split
    gen = torch.Generator().manual_seed(int(seed) + 1)
    seen = keep[torch.randperm(keep.numel(), generator=gen)[: subset.numel()]]
    return {
        "js_subset_bits": mean_js_bits(original, retrained, data.x_train[subset]),
        "js_remaining_bits": mean_js_bits(original, retrained, data.x_train[seen]),
        "js_test_bits": mean_js_bits(original, retrained, data.x_test[non]),
    }


# ----------------------------------------------------------------------------- the three models
def seconds_source(trained) -> str:
    """Where a TrainResult's ``train_seconds`` comes from."""
    if trained.source == "trained":
        return "measured in this run"
    return f"recorded when the {trained.source} model was trained (on {trained.trained_on or trained.device})"


def retrain_without(profile, data, keep, codes, seed: int):
    """A model with the original's initial weights for ``seed`` and the same codes, trained
    with ``profile`` on the training samples ``keep`` only (``methods/retrain.py``'s
    ``_train_without``)."""
    from mnemo_tutorial.training import checkpoints, loop

    new = checkpoints.initial_model(profile, data.num_classes, seed)
    return loop.train_model(new, data.x_train[keep], data.y_train[keep], codes, profile, seed=seed,
                            device="cpu", augment=checkpoints.profile_augment(profile), progress=False,
                            rehearse=False)


def entry_points() -> dict:
    """What the package offers to forget with: ``forget``'s signature and the fields of
    ``UnlearnTask`` (every method's input), and which of them name samples or indices."""
    from mnemo_tutorial import UnlearnTask, forget

    params = list(inspect.signature(forget).parameters)
    fields = [f.name for f in dataclasses.fields(UnlearnTask)]
    sample_level = [n for n in params + fields if any(w in n.lower() for w in ("sample", "index", "indices"))]
    return {"forget_signature": f"forget{inspect.signature(forget)}", "forget_parameters": params,
            "unlearn_task_fields": fields, "sample_level_parameters": sample_level}


def one_shot(original, codes, classes: list[int], forget_settings) -> tuple[dict, object]:
    """Ask ``forget`` for ``classes`` (default ``on_failure="raise"``): the record and the
    model, or the refusal (exception type and message, verbatim) and None."""
    from mnemo_tutorial import ForgetFailed, forget

    record = {"requested_classes": classes, "call": f"forget(original.model, original.codes, {classes}, settings)"}
    try:
        result = forget(original, codes, classes, forget_settings)
    except (ValueError, ForgetFailed) as exc:
        record.update(status="refused", error_type=type(exc).__name__, message=str(exc))
        return record, None
    record.update(status=result.report.status, forget_seconds=result.report.seconds,
                  lambda1=result.report.lambda1, lambda2=result.report.lambda2)
    return record, result.model


def run_seed(settings, data, seed: int, fraction: float, root: str | None = None) -> dict:
    """Every measurement of one seed (see the module docstring)."""
    import torch

    from mnemo_tutorial.training.checkpoints import train_or_load

    split = draw_split(len(data.y_train), len(data.y_test), fraction, seed)
    subset = split[0]
    original = train_or_load(settings.train, data, seed=seed, root=root, device="cpu", progress=False)
    retrained = retrain_without(settings.train, data, split[1], original.codes, seed)
    classes = sorted(int(c) for c in torch.unique(data.y_train[subset]))
    record, forgotten = one_shot(original.model, original.codes, classes, settings.forget)
    models = {"original": model_row(original.model, data, split, original.train_seconds, seconds_source(original)),
              "retrain": model_row(retrained.model, data, split, retrained.train_seconds, seconds_source(retrained))}
    models["retrain"]["train_samples"] = int(split[1].numel())
    models["original"]["source"] = original.source
    if forgotten is not None:
        models["one-shot"] = model_row(forgotten, data, split, None, "no training (one step)")
        record["js_to_retrain_subset_bits"] = mean_js_bits(forgotten, retrained.model, data.x_train[subset])
    comp = comparison(original.model, retrained.model, data, split, seed)
    comp["subset_accuracy_gap"] = models["original"]["subset_accuracy"] - models["retrain"]["subset_accuracy"]
    comp["mia_auc_gap"] = models["original"]["mia_auc"] - models["retrain"]["mia_auc"]
    counts = torch.bincount(data.y_train[subset], minlength=data.num_classes).tolist()
    return {"seed": seed, "subset_size": int(subset.numel()), "subset_class_counts": counts,
            "nonmember_test_samples": int(split[2].numel()), "models": models, "one_shot": record,
            "comparison": comp}


# ----------------------------------------------------------------------------- summary and reading
def summarize_rows(rows: list[dict]) -> dict:
    """Mean and 95 % Student-t interval over seeds (``bench.summarize``) of every model's
    metrics and of the comparisons, plus the sample standard deviation over seeds."""
    from mnemo_tutorial.evaluation.bench import summarize

    out = summarize([{"methods": r["models"]} for r in rows], keys=METRICS)
    out["comparison"] = summarize([{"methods": {"c": r["comparison"]}} for r in rows], keys=COMPARISONS)["c"]
    for name, entry in out.items():
        source = [r["comparison"] if name == "comparison" else r["models"].get(name) for r in rows]
        for key, stat in entry.items():
            if isinstance(stat, dict):
                values = [s[key] for s in source if s and s.get(key) is not None]
                stat["sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        entry.pop("failed", None)
    return out


def _interval(stat: dict, digits: int) -> str:
    return f"{stat['mean']:.{digits}f} [{stat['low']:.{digits}f}, {stat['high']:.{digits}f}]"


def _contains_zero(stat: dict) -> bool:
    return stat["low"] <= 0.0 <= stat["high"]


def _gap_words(stat: dict) -> str:
    return "its interval contains 0" if _contains_zero(stat) else "its interval excludes 0"


def _verdict(flags: dict, k: int, gap: dict) -> str:
    """The verdict sentence from ``flags`` (see :func:`reading`)."""
    if flags["acc_zero"] and flags["auc_zero"]:
        return ("Verdict: both gaps' intervals contain 0, so at this number of seeds the original already behaves "
                "like the retrained model on the subset: the random-subset task is nearly vacuous on MNIST (a "
                "method that does nothing would pass it).")
    if not flags["auc_zero"]:
        return ("Verdict: the membership-AUC gap excludes 0: the original is measurably different from the "
                "retrained model on the subset, also to the audit; that gap is what a sample-level method would "
                "have to remove.")
    why = [w for w, ok in (("the original fits the subset as well as its other training samples", flags["fits"]),
                           ("the retrained model scores on it as on test data", flags["unseen"]),
                           ("their outputs differ more on the subset than on test data (JS)", flags["js_above"]))
           if ok]
    return (f"Verdict: the original differs measurably from retraining in subset accuracy, by about "
            f"{gap['mean'] * k / 100:.0f} of {k} samples{' (' + '; '.join(why) + ')' if why else ''}, but the "
            "loss-threshold membership audit cannot tell the two apart: by that audit a method that does nothing "
            "would pass, so on MNIST it is nearly vacuous as a test of random-subset forgetting.")


def _seconds_sentence(rows: list[dict]) -> str:
    loaded = [r["seed"] for r in rows if r["models"]["original"]["train_seconds_source"] != "measured in this run"]
    where = (f"the original of seed(s) {', '.join(map(str, loaded))} was loaded, so its seconds are the recorded "
             "ones, not measured here; " if loaded else "")
    return (f"Training seconds: {where}every measured time ran with one thread on a machine shared with another "
            "job, so their spread reflects the load, not the method.")


def _flags(summary: dict, se: float) -> dict:
    """Booleans behind the verdict: which gaps' intervals contain 0; whether the original's subset
    accuracy is within two standard errors of its remaining-sample accuracy (``fits``), the
    retrained model's within two of its test accuracy (``unseen``); whether the JS interval on
    the subset lies above the one on test samples (``js_above``)."""
    o, r, c = summary["original"], summary["retrain"], summary["comparison"]
    return {
        "acc_zero": _contains_zero(c["subset_accuracy_gap"]), "auc_zero": _contains_zero(c["mia_auc_gap"]),
        "fits": abs(o["subset_accuracy"]["mean"] - o["remaining_accuracy"]["mean"]) <= 2 * se,
        "unseen": abs(r["subset_accuracy"]["mean"] - r["test_accuracy"]["mean"]) <= 2 * se,
        "js_above": c["js_subset_bits"]["low"] > c["js_test_bits"]["high"],
    }


def reading(summary: dict, rows: list[dict]) -> dict:
    """What the numbers show, as sentences computed from them, and the rule behind the verdict."""
    o, r, c = summary["original"], summary["retrain"], summary["comparison"]
    k, n = rows[0]["subset_size"], len(rows)
    gap, auc = c["subset_accuracy_gap"], c["mia_auc_gap"]
    p = r["subset_accuracy"]["mean"] / 100.0
    se = 100.0 * math.sqrt(max(p * (1 - p), 1e-12) / k)
    ratio = c["js_subset_bits"]["mean"] / max(c["js_test_bits"]["mean"], 1e-12)
    sentences = [
        f"Subset accuracy over {n} seeds (mean [95 % interval]): original {_interval(o['subset_accuracy'], 2)} % "
        f"(its remaining-sample accuracy {_interval(o['remaining_accuracy'], 2)} %), retrain "
        f"{_interval(r['subset_accuracy'], 2)} % (its test accuracy {_interval(r['test_accuracy'], 2)} %); gap "
        f"original - retrain {_interval(gap, 2)} points, sd over seeds {gap['sd']:.2f}, {_gap_words(gap)}; about "
        f"{gap['mean'] * k / 100:.1f} of the {k} subset samples; the sampling standard error of a {k}-sample "
        f"accuracy near {100 * p:.1f} % is {se:.2f} points.",
        f"Membership AUC of the subset against {k} test samples: original {_interval(o['mia_auc'], 3)}, retrain "
        f"{_interval(r['mia_auc'], 3)}; gap {_interval(auc, 3)}, sd over seeds {auc['sd']:.3f}, {_gap_words(auc)}.",
        f"Mean JS divergence original vs retrain (bits): subset {_interval(c['js_subset_bits'], 4)} ({ratio:.0f} "
        f"times that on test samples), remaining training samples {_interval(c['js_remaining_bits'], 4)}, test "
        f"samples {_interval(c['js_test_bits'], 4)}.",
        _verdict(_flags(summary, se), k, gap),
        one_shot_sentence(rows),
        _seconds_sentence(rows),
    ]
    rule = ("vacuous when the 95 % Student-t intervals over seeds of both the subset-accuracy gap and the "
            "membership-AUC gap (original - retrain) contain 0; audit_blind when only the AUC gap's does; "
            "fits / unseen: within two sampling standard errors of a k-sample accuracy")
    return {"text": " ".join(sentences), "vacuous": _contains_zero(gap) and _contains_zero(auc),
            "audit_blind": _contains_zero(auc) and not _contains_zero(gap), "flags": _flags(summary, se),
            "sampling_standard_error_points": se, "verdict_rule": rule}


def one_shot_sentence(rows: list[dict]) -> str:
    """What the one-shot method did, from the per-seed records."""
    ep = entry_points()
    where = (f"forget takes class indices only (parameters {', '.join(ep['forget_parameters'])}; no parameter of "
             f"forget or UnlearnTask names samples)" if not ep["sample_level_parameters"] else
             f"the package names sample-level parameters: {ep['sample_level_parameters']}")
    refused = [r for r in rows if r["one_shot"]["status"] == "refused"]
    if len(refused) == len(rows):
        messages = sorted({r["one_shot"]["message"] for r in refused})
        classes = sorted({len(r["one_shot"]["requested_classes"]) for r in rows})
        return (f"One-shot: {where}; the subset holds {'/'.join(map(str, classes))} classes in every seed, and "
                f"forgetting them all was refused: {' | '.join(repr(m) for m in messages)}. "
                "There is no one-shot model.")
    statuses = ", ".join(f"seed {r['seed']}: {r['one_shot']['status']}" for r in rows)
    return f"One-shot: {where}; forgetting every class present in the subset gave {statuses}."


# ----------------------------------------------------------------------------- the run
def _command() -> str:
    """This run's command line (the script named from the repository root when it lies in it),
    after the environment variables it reads; the mirror's path is shown as ``<data mirror>``."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else script.as_posix()
    env = [f"{k}={'<data mirror>' if k == 'MNEMO_MIRROR' else os.environ[k]}" for k in ENV_SHOWN if os.environ.get(k)]
    return " ".join([*env, "python", name, *sys.argv[1:]])


def run(data, seeds: list[int], fraction: float, settings=None, root: str | None = None,
        progress: bool = True) -> dict:
    """The whole measurement on ``data`` (default settings: MNIST ``quick``): the JSON dict."""
    import torch
    from tqdm.auto import tqdm

    from mnemo_tutorial import __version__
    from mnemo_tutorial.env import machine_description, package_source_hash
    from mnemo_tutorial.training.profiles import get_settings

    seeds, fraction = parse_seeds(",".join(map(str, seeds))), check_fraction(fraction)
    settings = settings if settings is not None else get_settings("mnist", "quick")
    start = time.perf_counter()
    rows = [run_seed(settings, data, s, fraction, root) for s in tqdm(seeds, desc="seeds", disable=not progress)]
    summary = summarize_rows(rows)
    return {
        "question": "What does the one-shot method do when asked to forget a random subset of the training "
                    "samples (not a class), against retraining without them?",
        "command": _command(), "package_version": __version__, "package_source_hash": package_source_hash(),
        "machine": machine_description(torch.device("cpu")), "torch": torch.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"), "data": data.sizes(), "data_source": data.source,
        "profile": settings.train.key_dict(), "forget_settings": settings.forget.describe(),
        "seeds": seeds, "fraction": fraction, "one_shot_entry_points": entry_points(),
        "rows": rows, "summary": summary, "reading": reading(summary, rows),
        "run_seconds": time.perf_counter() - start,
    }


def write_json(result: dict, path: Path) -> None:
    """``result`` as JSON, through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def _table(summary: dict) -> str:
    lines = [f"{'model':10s}" + "".join(f"{m:>26s}" for m in METRICS)]
    for name in MODELS:
        if name in summary:
            cells = [_interval(summary[name][m], 3) if summary[name].get(m) else "n/a" for m in METRICS]
            lines.append(f"{name:10s}" + "".join(f"{c:>26s}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None, data=None) -> int:
    parser = argparse.ArgumentParser(description="Forget a random subset of MNIST: one-shot method against retraining.")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated distinct non-negative integers")
    parser.add_argument("--fraction", default="0.01", help="share of the training samples to forget, in (0, 0.5]")
    parser.add_argument("--report", default="mnemo_tutorial/results/random-subset-mnist.json", help="the JSON to write")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        seeds, fraction = parse_seeds(args.seeds), check_fraction(args.fraction)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.report.endswith(".json"):
        parser.error(f"--report must name a .json file; got {args.report!r}")
    if data is None:
        from mnemo_tutorial import load_mnist

        data = load_mnist()
    result = run(data, seeds, fraction, progress=not args.no_progress)
    write_json(result, Path(args.report))
    print(_table(result["summary"]))
    print(result["reading"]["text"])
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
