"""Train the ``quick`` models shipped with the package and record them in the manifest.

    MNEMO_MIRROR=/path/to/mirror MNEMO_DATA=$(mktemp -d) OMP_NUM_THREADS=1 \
        python scripts/make_pretrained.py --datasets mnist cifar10 faces --seed 0

With ``--without C [C ...]`` the model retrained without classes C (``retrain``,
looked up by ``retrain_key``) is shipped instead, for chapters that compare with
retraining; those are stored in float16 (half the bytes; their recorded accuracies are
measured on the rounded weights). Each model is trained from scratch on the CPU through ``train_or_load(retrain=True)`` and
written to ``mnemo_tutorial/pretrained/<dataset>-<profile>-seed<seed>.pt`` (the checkpoint
format of the cache: state dict, codes, training record). ``manifest.json`` gets one entry
per file: dataset, profile, seed, checkpoint key, sha256, size, test accuracy, training
seconds, the command that reproduces it, package and torch versions, machine and date.
Files are written through a temporary file and a rename. ``train_or_load`` uses a shipped
model only when its key equals the key of the request and its sha256 matches.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LIMIT_BYTES = 10 * 2**20  # all shipped models together (issue 9)


def _command(dataset: str, profile: str, seed: int) -> str:
    return (
        f"MNEMO_MIRROR=<data mirror> MNEMO_DATA=$(mktemp -d) OMP_NUM_THREADS=1 "
        f"python scripts/make_pretrained.py --datasets {dataset} --profile {profile} --seed {seed}"
    )


def build(dataset: str, profile_name: str, seed: int, out: Path) -> dict:
    """Train one model, write its file to ``out``, return its manifest entry."""
    import torch

    import mnemo_tutorial
    from mnemo_tutorial.env import cpu_model
    from mnemo_tutorial.evaluation.metrics import evaluate
    from mnemo_tutorial.training.checkpoints import (
        file_sha256,
        save_checkpoint,
        train_or_load,
    )
    from mnemo_tutorial.training.data import load_dataset
    from mnemo_tutorial.training.profiles import get_profile

    data = load_dataset(dataset)
    profile = get_profile(dataset, profile_name)
    result = train_or_load(
        profile, data, seed=seed, device="cpu", retrain=True, use_cache=False, progress=True
    )
    accuracy = evaluate(result.model, data.x_test, data.y_test, num_classes=data.num_classes)[
        "accuracy"
    ]
    path = save_checkpoint(result, profile, seed, out / f"{dataset}-{profile_name}-seed{seed}.pt")
    return {
        "file": path.name,
        "dataset": dataset,
        "profile": profile_name,
        "seed": seed,
        "key": result.key,
        "sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "test_accuracy": round(float(accuracy), 4),
        "n_test": int(data.y_test.shape[0]),
        "train_seconds": round(result.train_seconds, 1),
        "device": result.device,
        "precision": result.precision,
        "torch_threads": torch.get_num_threads(),
        "data_source": data.source,
        "data_notes": data.notes,
        "command": _command(dataset, profile_name, seed),
        "package_version": mnemo_tutorial.__version__,
        "torch_version": torch.__version__,
        "machine": cpu_model(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _retrain_command(
    dataset: str,
    profile: str,
    seed: int,
    without: list[int],
    t_mix: float | None,
    epochs: int | None,
) -> str:
    extra = "".join(
        [f" --t-mix {t_mix}" if t_mix is not None else "", f" --epochs {epochs}" if epochs else ""]
    )
    return (
        _command(dataset, profile, seed) + " --without " + " ".join(str(c) for c in without) + extra
    )


def build_retrained(
    dataset: str,
    profile_name: str,
    seed: int,
    without: list[int],
    out: Path,
    t_mix: float | None = None,
    epochs: int | None = None,
) -> dict:
    """Retrain the model of (dataset, profile, seed) without the classes ``without`` through
    ``retrain`` (the codes of the shipped original), write it to ``out``, return its
    manifest entry (``without``, ``t_mix``, ``epochs`` say which retraining it is)."""
    import tempfile

    import torch

    import mnemo_tutorial
    from mnemo_tutorial.env import cpu_model
    from mnemo_tutorial.evaluation.metrics import evaluate
    from mnemo_tutorial.methods.retrain import retrain
    from mnemo_tutorial.training.checkpoints import file_sha256, train_or_load
    from mnemo_tutorial.training.data import load_dataset
    from mnemo_tutorial.training.profiles import get_profile

    data = load_dataset(dataset)
    profile = get_profile(dataset, profile_name)
    original = train_or_load(
        profile, data, seed=seed, device="cpu", use_cache=False, progress=False
    )
    with tempfile.TemporaryDirectory() as root:
        res = retrain(
            original.model,
            data,
            without,
            profile,
            seed,
            codes=original.codes,
            t_mix=t_mix,
            epochs=epochs,
            device="cpu",
            root=root,
            fresh=True,
            progress=True,
        )
        d = res.report.details
        name = f"{dataset}-{profile_name}-seed{seed}-without{'-'.join(str(c) for c in without)}"
        name += (
            (f"-tmix{t_mix:g}" if t_mix is not None else "")
            + (f"-ep{epochs}" if epochs else "")
            + ".pt"
        )
        src = next((Path(root) / "checkpoints").glob(f"*-retrain-{d['key']}.pt"))
        state = torch.load(src, map_location="cpu", weights_only=True)
    # stored in float16 (half the bytes; loading converts back to float32): the accuracies
    # below are measured on the rounded weights
    state["model"] = {
        k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()
    }
    res.model.load_state_dict(state["model"])
    tmp = out / (name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(out / name)
    path = out / name
    metrics = evaluate(res.model, data.x_test, data.y_test, without, num_classes=data.num_classes)
    accuracy = evaluate(res.model, data.x_test, data.y_test, num_classes=data.num_classes)[
        "accuracy"
    ]
    return {
        "file": name,
        "dataset": dataset,
        "profile": profile_name,
        "seed": seed,
        "key": d["key"],
        "retrained_without": list(without),
        "t_mix": d["t_mix"],
        "epochs": d["epochs"],
        "sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "test_accuracy": round(float(accuracy), 4),
        "E_F": round(float(metrics["E_F"]), 4),
        "A_R": round(float(metrics["A_R"]), 4),
        "n_test": int(data.y_test.shape[0]),
        "train_seconds": round(d["train_seconds"], 1),
        "device": "cpu",
        "precision": "float32",
        "stored_as": "float16",
        "torch_threads": torch.get_num_threads(),
        "data_source": data.source,
        "data_notes": data.notes,
        "command": _retrain_command(dataset, profile_name, seed, without, t_mix, epochs),
        "package_version": mnemo_tutorial.__version__,
        "torch_version": torch.__version__,
        "machine": cpu_model(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _current_key(entry: dict, data, original_codes) -> str:
    """The key this package gives the model of manifest ``entry`` (``data``: its data set)."""
    from mnemo_tutorial.methods.retrain import _retrain_profile, retrain_key
    from mnemo_tutorial.training.checkpoints import checkpoint_key
    from mnemo_tutorial.training.profiles import get_profile

    profile = get_profile(entry["dataset"], entry["profile"])
    if "retrained_without" not in entry:
        return checkpoint_key(profile, entry["seed"], data)
    profile = _retrain_profile(profile, entry.get("epochs"), entry.get("t_mix"))
    return retrain_key(profile, entry["seed"], data, entry["retrained_without"], original_codes)


def rekey(out: Path) -> list[dict]:
    """Give every shipped model the key this package computes for it (after a change of what
    keys hash): the weights are untouched; the file's stored key, its sha256 and size, and
    the manifest entry change, which records the old key under ``rekeyed_from``."""
    import torch

    from mnemo_tutorial.core.codes import MnemonicCodes
    from mnemo_tutorial.training.checkpoints import file_sha256, shipped_models
    from mnemo_tutorial.training.data import load_dataset

    entries, changed = shipped_models(out), []
    for entry in entries:
        data = load_dataset(entry["dataset"])
        original = next(
            e
            for e in entries
            if e["dataset"] == entry["dataset"]
            and e["seed"] == entry["seed"]
            and e["profile"] == entry["profile"]
            and "retrained_without" not in e
        )
        codes = MnemonicCodes.from_state_dict(
            torch.load(out / original["file"], map_location="cpu", weights_only=True)["codes"]
        )
        key = _current_key(entry, data, codes)
        if key == entry["key"]:
            continue
        path = out / entry["file"]
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["key"] != entry["key"] or file_sha256(path) != entry["sha256"]:
            raise SystemExit(f"{path} does not match its manifest entry; rebuild it instead")
        state["key"] = key
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        entry.update(
            rekeyed_from=entry["key"],
            key=key,
            sha256=file_sha256(path),
            size_bytes=path.stat().st_size,
        )
        changed.append(entry)
    return changed


def update_manifest(out: Path, entry: dict) -> None:
    """Replace the entry of ``entry["file"]`` in ``out/manifest.json`` (written atomically)."""
    from mnemo_tutorial.training.checkpoints import MANIFEST_NAME, shipped_models
    from mnemo_tutorial.utils import atomic_write_text

    entries = [e for e in shipped_models(out) if e["file"] != entry["file"]] + [entry]
    entries.sort(key=lambda e: e["file"])
    total = sum(e["size_bytes"] for e in entries)
    if total > LIMIT_BYTES:
        raise SystemExit(
            f"the shipped models would take {total / 2**20:.1f} MB; the limit is {LIMIT_BYTES / 2**20:.0f} MB"
        )
    manifest = {"format": 1, "total_bytes": total, "models": entries}
    atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10", "faces"])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "mnemo_tutorial" / "pretrained")
    parser.add_argument(
        "--without",
        type=int,
        nargs="+",
        default=None,
        help="ship the model retrained without these classes (retrain) instead",
    )
    parser.add_argument("--t-mix", type=float, default=None, help="with --without: retrain's t_mix")
    parser.add_argument("--epochs", type=int, default=None, help="with --without: retrain's epochs")
    parser.add_argument(
        "--rekey",
        action="store_true",
        help="only give the shipped models the keys this package computes (no training)",
    )
    args = parser.parse_args(argv)
    if args.rekey:
        for entry in rekey(args.out):
            update_manifest(args.out, entry)
            print(f"{entry['file']}: key {entry['rekeyed_from']} -> {entry['key']}", flush=True)
        return 0
    if (args.t_mix is not None or args.epochs is not None) and args.without is None:
        parser.error("--t-mix and --epochs apply to --without only")
    for dataset in args.datasets:
        if args.without is not None:
            entry = build_retrained(
                dataset,
                args.profile,
                args.seed,
                sorted(set(args.without)),
                args.out,
                args.t_mix,
                args.epochs,
            )
        else:
            entry = build(dataset, args.profile, args.seed, args.out)
        update_manifest(args.out, entry)
        print(json.dumps(entry, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
