"""How long forgetting one class takes on the shipped MNIST ``quick`` model, against a forward
pass of the same model over its codes, measured in one process.

    python scripts/bench_forget.py                 # every digit, 20 repeats each
    python scripts/bench_forget.py --repeats 50 --threads 1

For each digit: the median wall time of ``forget(model, codes, [digit])`` with the profile's
forgetting settings (Fisher of the codes, the data-free scan, the step, the copy), after one
warm-up call; and E_F / A_R on the test split (the sweep's numbers). The baseline, timed the
same way in the same process: one forward pass of the model over the 10 codes. The ratio
forget / forward is what to compare across machines; the milliseconds are this machine's.
Prints one table and a JSON line (``--out`` writes it as a file).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: allocations and first-call costs are not the work's time
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1; got {args.repeats}")

    import torch

    import mnemo_tutorial
    from mnemo_tutorial import evaluate, forget, get_settings, load_mnist, train_or_load
    from mnemo_tutorial.env import cpu_model, package_source_hash

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = get_settings("mnist", "quick")
    data = load_mnist()
    trained = train_or_load(settings.train, data, progress=False)
    model, codes = trained.model.eval(), trained.codes
    x_codes = codes.codes.to(next(model.parameters()).device)

    def forward() -> None:
        with torch.no_grad():
            model(x_codes)

    base = median_seconds(forward, args.repeats)
    rows = []
    for c in settings.sweep.class_list(data.num_classes):
        seconds = median_seconds(lambda c=c: forget(model, codes, [c], settings.forget), args.repeats)
        res = forget(model, codes, [c], settings.forget)
        m = evaluate(res.model, data.x_test, data.y_test, [c], data.num_classes)
        rows.append({"class": c, "forget_ms": 1000 * seconds, "ratio_to_forward": seconds / base,
                     "E_F": m["E_F"], "A_R": m["A_R"], "status": res.report.status})
    out = {
        "command": "python scripts/bench_forget.py " + " ".join(argv or []),
        "package_version": mnemo_tutorial.__version__, "package_source_hash": package_source_hash(),
        "machine": f"{cpu_model()}, {torch.get_num_threads()} torch threads",
        "python": platform.python_version(), "torch": torch.__version__,
        "model_source": trained.source, "forward_over_codes_ms": 1000 * base,
        "median_forget_ms": statistics.median(r["forget_ms"] for r in rows),
        "median_ratio_to_forward": statistics.median(r["ratio_to_forward"] for r in rows),
        "classes": rows,
    }
    print(f"forward pass over the {len(x_codes)} codes: {1000 * base:.3f} ms (median)")
    print(f"{'digit':>5s}{'forget ms':>11s}{'x forward':>11s}{'E_F %':>8s}{'A_R %':>8s}  status")
    for r in rows:
        print(f"{r['class']:>5d}{r['forget_ms']:>11.2f}{r['ratio_to_forward']:>11.0f}"
              f"{r['E_F']:>8.2f}{r['A_R']:>8.2f}  {r['status']}")
    print(f"median forget {out['median_forget_ms']:.2f} ms = "
          f"{out['median_ratio_to_forward']:.0f}x a forward pass over the codes ({out['machine']})")
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("median_forget_ms", "median_ratio_to_forward")}))
    return out


if __name__ == "__main__":
    main()
