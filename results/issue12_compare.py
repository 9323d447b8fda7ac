"""Reduced honest comparison for issue 12: every registered method on the MNIST quick model
(seed 0), forgetting one class at a time, repeated over method seeds; writes one JSON with
the command, package version and machine, the per-run rows and the mean / 95 % interval per
method (bench.summarize).

    python results/issue12_compare.py --classes 0,5 --seeds 0,1,2 --budget quick --out results/issue12-mnist-quick.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch

import mnemo_tutorial
from mnemo_tutorial.evaluation import bench
from mnemo_tutorial import env
from mnemo_tutorial.training.data import load_dataset
from mnemo_tutorial.training.profiles import get_settings
from mnemo_tutorial.training.checkpoints import train_or_load


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--classes", default="0,5")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--budget", default="quick", choices=("quick", "full"))
    p.add_argument("--methods", default="all")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    classes = [int(c) for c in a.classes.split(",")]
    seeds = [int(s) for s in a.seeds.split(",")]
    settings = get_settings("mnist", "quick")
    data = load_dataset("mnist")
    trained = train_or_load(settings.train, data, seed=0, progress=False)
    t0 = time.perf_counter()
    runs = []
    for c in classes:
        for s in seeds:
            r = bench.benchmark(trained, data, [c], settings.train, settings.forget, seed=s, methods=a.methods,
                                repeats=3, repeat_below=5.0, budget=a.budget)
            runs.append(r)
            print(f"class {c} seed {s}: {time.perf_counter() - t0:.0f} s", flush=True)
    out = {
        "command": "python " + " ".join(sys.argv), "package_version": mnemo_tutorial.__version__,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads", "device": env.device_description(torch.device("cpu")),
        "model": trained.describe(), "classes": classes, "seeds": seeds, "budget": a.budget,
        "seconds": time.perf_counter() - t0, "summary": bench.summarize(runs), "runs": runs,
    }
    with open(a.out, "w") as f:
        json.dump(bench.jsonable(out), f, indent=1)
    for name, e in out["summary"].items():
        print(f"{name:16s} " + "  ".join(f"{k} {e[k]['mean']:.2f} [{e[k]['low']:.2f}, {e[k]['high']:.2f}]"
                                          for k in ("E_F", "A_R", "tow") if e.get(k)) + f"  failed {e['failed']}")


if __name__ == "__main__":
    main()
