"""The reader's path: every chapter run as a reader runs it, from the installed wheel, outside
any checkout, with the data arriving through the package's own download code.

    python scripts/readers_path.py                      # build the wheel, run all chapters
    python scripts/readers_path.py --wheel dist/mnemo_tutorial-0.3.0-py3-none-any.whl \\
        --chapters 01 08 --report readers-path.json
    python scripts/readers_path.py --retrain            # every model trained on the spot
    python scripts/readers_path.py --retrain --seed 1   # other models: MNEMO_SEED=1
    python scripts/readers_path.py --official-hosts     # real downloads (needs the internet)
    python scripts/readers_path.py --find-links wheels/ # no package index: a wheelhouse

What it does:

1. builds the wheel (``python -m build --wheel``) unless ``--wheel`` names one;
2. creates a fresh virtual environment and installs the wheel with its declared
   dependencies from the package index, plus the notebook runner (nbconvert, ipykernel).
   torch and torchvision (with their own dependencies) are taken from the environment that
   runs this script, as a read-only layer, the way Colab provides them: the chapters leave
   torch to the runtime;
3. starts a local HTTP server standing in for the download hosts, over files made from the
   offline mirror (``MNEMO_MIRROR``), and points the package at it with
   ``MNEMO_DOWNLOAD_URL`` (the documented option for proxies and institutional mirrors):

   * MNIST: the mirror's ``.gz`` files: torchvision downloads and unpacks them, and the
     package checks the four IDX files inside against the official MD5s, exactly as from the
     official hosts. The mirror's gzip wrappers are not the official ones byte for byte, so
     torchvision's MD5s of the ``.gz`` files are replaced, in this environment only;
   * CIFAR-10: ``cifar-10-python.tar.gz`` in the official format (pickled batches), rebuilt
     from the mirror's JPEG copy. The official archive cannot be rebuilt byte for byte, so
     its MD5s (torchvision's and the package's) are replaced, in this environment only, by
     those of the rebuilt files: the checksum values are what is not covered;
   * faces: ``olivettifaces.mat`` in scikit-learn's format, rebuilt from the ORL images in
     the mirror; its SHA-256 likewise replaces scikit-learn's in this environment only;

4. copies each chapter notebook alone into an empty folder, with an empty home folder (the
   package's data root is then ``~/mnemo_data``, as for a reader), no ``MNEMO_MIRROR`` and no
   ``MNEMO_DATA``, and executes it top to bottom (``jupyter nbconvert --execute``);
   With ``--official-hosts`` there is no local server and no replaced checksum: the data
   come from the official hosts, as on Colab (the release workflow runs it this way);
5. prints each chapter's wall time and status and writes them to ``--report`` (JSON).

The exit status is 1 when a chapter fails. Times are the chapters' own wall clock, measured
here, from the first cell to the last (the install cell finds the package installed).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.server
import importlib.metadata as md
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
RUNNER = ["nbconvert>=7", "ipykernel>=6"]
# the part of the environment Colab provides: torch and torchvision with their dependencies
LAYER_ROOTS = ("torch", "torchvision")
SITE_HOOK = "readers_path_checksums"
CHECKSUMS_ENV = "READERS_PATH_CHECKSUMS"


def chapters(selected: list[str] | None) -> list[Path]:
    """The chapter notebooks (book/NN_*.ipynb), all or those whose number is in ``selected``."""
    found = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
    if not selected:
        return found
    numbers = {p.name[:2] for p in found}
    unknown = sorted(set(selected) - numbers)
    if unknown:
        raise SystemExit(
            f"--chapters: no chapter {', '.join(unknown)}; choose from {', '.join(sorted(numbers))}"
        )
    return [p for p in found if p.name[:2] in selected]


def run(cmd: list[str], **kw) -> None:
    """Run ``cmd``, raising with its output when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


# ---------------------------------------------------------------------------------------
# The environment: a wheel, a fresh venv, torch as a read-only layer
# ---------------------------------------------------------------------------------------
def build_wheel(out: Path) -> Path:
    """``python -m build --wheel`` of this repository into ``out``; the wheel's path."""
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)])
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {out}; found {[w.name for w in wheels]}")
    return wheels[0]


def _requirements(name: str) -> list[str]:
    names = []
    for req in md.requires(name) or []:
        if "extra ==" not in req:
            names.append(re.split(r"[ ;<>=!~\[(]", req.strip())[0])
    return names


def torch_layer(layer: Path) -> list[str]:
    """Symbolic links to torch, torchvision and their dependencies (code and metadata) of the
    running environment, in ``layer``; the distributions linked."""
    seen: dict[str, md.Distribution] = {}
    todo = list(LAYER_ROOTS)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            seen[key] = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional dependency this platform does not install
        todo += _requirements(name)
    layer.mkdir(parents=True)
    for dist in seen.values():
        base = Path(str(dist.locate_file("")))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top in ("..", "__pycache__") or (layer / top).exists():
                continue
            if (base / top).exists():
                (layer / top).symlink_to(base / top)
    return sorted(seen)


def make_venv(venv: Path, wheel: Path, layer: Path, find_links: Path | None = None) -> Path:
    """A fresh venv with ``layer`` on its path, the wheel and the notebook runner installed
    (from the package index, or only from the wheelhouse ``find_links``); its python."""
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    (site / "colab_runtime_torch.pth").write_text(f"{layer}\n")
    (site / f"{SITE_HOOK}.py").write_text(SITE_HOOK_SOURCE)
    (site / f"{SITE_HOOK}.pth").write_text(f"import {SITE_HOOK}\n")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if find_links is not None:
        pip += ["--no-index", "--find-links", str(find_links)]
    run([*pip, str(wheel), *RUNNER])
    return python


# Loaded at the start of every python of the reader's venv; acts only when the variable names
# a JSON file of checksums, i.e. in the kernels this script starts.
SITE_HOOK_SOURCE = f'''"""The reader's-path check only: the checksums of the MNIST gzip files, the rebuilt CIFAR-10
archive and faces file in place of the official ones (which the mirror does not hold byte for
byte)."""
import json
import os

_path = os.environ.get("{CHECKSUMS_ENV}")
if _path:
    _sums = json.load(open(_path))
    import torchvision.datasets as _tvd
    from sklearn.datasets import _olivetti_faces as _oli

    import mnemo_tutorial.training.data as _data

    _tvd.MNIST.resources = [(n, _sums["mnist"][n]) for n, _ in _tvd.MNIST.resources]
    _tvd.CIFAR10.tgz_md5 = _sums["cifar10_archive"]
    _tvd.CIFAR10.train_list = [[n, _sums["cifar10"][n]] for n, _ in _tvd.CIFAR10.train_list]
    _tvd.CIFAR10.test_list = [[n, _sums["cifar10"][n]] for n, _ in _tvd.CIFAR10.test_list]
    _tvd.CIFAR10.meta = dict(_tvd.CIFAR10.meta, md5=_sums["cifar10"]["batches.meta"])
    _data.CIFAR10_ORIGINAL_MD5.update(
        {{n: v for n, v in _sums["cifar10"].items() if n != "batches.meta"}}
    )
    _oli.FACES = type(_oli.FACES)(
        filename=_oli.FACES.filename, url=_oli.FACES.url, checksum=_sums["faces"]
    )
'''


# ---------------------------------------------------------------------------------------
# The download hosts: files made from the offline mirror, served over HTTP
# ---------------------------------------------------------------------------------------
def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _cifar10_archive(hosts: Path) -> dict:
    """``cifar10/cifar-10-python.tar.gz`` in the official layout (five training batches of
    10,000 images, a test batch, batches.meta), from the mirror's JPEG copy; its MD5s."""
    from mnemo_tutorial.training.data import CIFAR10_CLASSES, load_cifar10

    data = load_cifar10(download=False)
    staging = hosts / "staging" / "cifar-10-batches-py"
    staging.mkdir(parents=True)
    x = {s: (getattr(data, f"x_{s}") * 255).round().byte().reshape(-1, 3072).numpy()
         for s in ("train", "test")}
    y = {s: getattr(data, f"y_{s}").tolist() for s in ("train", "test")}
    batches = {f"data_batch_{b + 1}": ("train", slice(b * 10000, (b + 1) * 10000)) for b in range(5)}
    batches["test_batch"] = ("test", slice(0, 10000))
    for name, (split, part) in batches.items():
        with open(staging / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": y[split][part], "data": x[split][part]}, f)
    with open(staging / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR10_CLASSES, "num_cases_per_batch": 10000, "num_vis": 3072}, f)
    archive = hosts / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(staging, arcname="cifar-10-batches-py")
    sums = {p.name: _md5(p) for p in staging.iterdir()}
    shutil.rmtree(staging.parent)
    return {"cifar10": sums, "cifar10_archive": _md5(archive)}


def _faces_mat(hosts: Path) -> dict:
    """``faces/olivettifaces.mat`` in scikit-learn's format (``faces``: 4096 x 400 uint8, one
    transposed 64x64 image per column, person by person), from the ORL images; its SHA-256."""
    import numpy as np
    from scipy.io import savemat

    from mnemo_tutorial.training.data import load_faces

    data = load_faces(download=False)
    k = data.x_train.shape[0] // 40
    train = data.x_train.reshape(40, k, 64, 64)
    test = data.x_test.reshape(40, -1, 64, 64)
    images = (np.concatenate([train.numpy(), test.numpy()], axis=1).reshape(400, 64, 64) * 255)
    rows = images.round().astype(np.uint8).transpose(0, 2, 1).reshape(400, 4096)
    path = hosts / "faces" / "olivettifaces.mat"
    path.parent.mkdir(parents=True)
    savemat(path, {"faces": rows.T})
    return {"faces": hashlib.sha256(path.read_bytes()).hexdigest()}


def make_hosts(hosts: Path, mirror: Path) -> dict:
    """The download hosts' files under ``hosts`` (layout of ``DOWNLOAD_LAYOUT``); the
    checksums of the rebuilt ones."""
    (hosts / "mnist").mkdir(parents=True)
    for gz in sorted((mirror / "mnist").glob("*.gz")):
        shutil.copyfile(gz, hosts / "mnist" / gz.name)
    mnist = {p.name: _md5(p) for p in (hosts / "mnist").iterdir()}
    return {"mnist": mnist, **_cifar10_archive(hosts), **_faces_mat(hosts)}


@contextlib.contextmanager
def serve(directory: Path):
    """An HTTP server over ``directory`` on a free local port, in a thread; its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: D102 - requests are not worth a line
            pass

        def handle(self) -> None:  # a client that closes early (a probe) is not an error
            try:
                super().handle()
            except (ConnectionResetError, BrokenPipeError):
                pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------
# The chapters
# ---------------------------------------------------------------------------------------
def _reader_path_variable() -> str:
    """``PATH`` without the folders of the environment running this script (its jupyter and
    python must not be found in place of the reader's venv's)."""
    ours = {str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    if os.environ.get("VIRTUAL_ENV"):
        ours.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p not in ours)


def check_isolated(python: Path, env: dict) -> str:
    """Where the reader's venv imports the package from and which jupyter it runs, checked to
    be the venv's own (never this checkout or the environment running this script)."""
    probe = ("import shutil, sys, mnemo_tutorial, mnemo_tutorial.training.data as d; "
             "print(mnemo_tutorial.__file__); print(shutil.which('jupyter')); print(d.data_root())")
    out = subprocess.run([str(python), "-c", probe], env=env, capture_output=True, text=True,
                         cwd=env["HOME"])
    if out.returncode != 0:
        raise SystemExit(f"the reader's venv cannot import the package:\n{out.stderr[-2000:]}")
    package, jupyter, root = out.stdout.split("\n")[:3]
    venv = python.parent.parent
    if not Path(package).is_relative_to(venv) or not Path(jupyter).is_relative_to(venv):
        raise SystemExit(f"not isolated: the package {package} or jupyter {jupyter} is not the venv's")
    if Path(root).is_relative_to(REPO):
        raise SystemExit(f"not isolated: the data root {root} is inside the checkout")
    return f"package {package}, jupyter {jupyter}, data root {root}"


def reader_env(home: Path, url: str | None, checksums: Path | None, retrain: bool,
               seed: int = 0) -> dict[str, str]:
    """A reader's environment: a fresh home, the download hosts (None: the official ones),
    nothing of this checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MNEMO_", "PYTHON", "JUPYTER", "VIRTUAL_ENV", "CONDA"))}
    env.update(HOME=str(home), MPLBACKEND="Agg", PATH=_reader_path_variable())
    if url is not None and checksums is not None:
        env.update({"MNEMO_DOWNLOAD_URL": url, CHECKSUMS_ENV: str(checksums)})
    if retrain:
        env["MNEMO_RETRAIN"] = "1"
    if seed:
        env["MNEMO_SEED"] = str(seed)
    return env


def run_chapter(python: Path, notebook: Path, work: Path, env: dict, timeout: int) -> dict:
    """Copy ``notebook`` alone into an empty folder and execute it there; its record."""
    folder = work / notebook.stem
    home = work / f"{notebook.stem}-home"
    folder.mkdir()
    home.mkdir()
    shutil.copyfile(notebook, folder / notebook.name)
    jupyter = python.parent / "jupyter"  # the venv's own, whose python3 kernel is the venv's
    cmd = [str(jupyter), "nbconvert", "--to", "notebook", "--execute", "--inplace",
           f"--ExecutePreprocessor.timeout={timeout}", notebook.name]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, env={**env, "HOME": str(home)},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    record = {"chapter": notebook.name, "seconds": round(seconds, 1), "ok": done.returncode == 0}
    if not record["ok"]:
        record["error"] = (done.stderr or done.stdout)[-4000:]
    return record


def run_chapters(python: Path, selected: list[Path], work: Path, env: dict, timeout: int) -> list:
    """Each chapter in turn (:func:`run_chapter`), printed as it ends; their records."""
    records = []
    for notebook in selected:
        record = run_chapter(python, notebook, work, env, timeout)
        records.append(record)
        print(f"{record['chapter']:34s} {record['seconds']:7.1f} s  "
              f"{'ok' if record['ok'] else 'FAILED'}", flush=True)
        if not record["ok"]:
            print(record["error"], flush=True)
    return records


def write_report(path: Path, argv, wheel: Path, args, setup: float, records: list) -> None:
    """The per-chapter records with what produced them, as JSON (temporary file, rename)."""
    import mnemo_tutorial
    from mnemo_tutorial.env import cpu_model, package_source_hash

    report = {
        "command": "python scripts/readers_path.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "package_version": mnemo_tutorial.__version__,
        "package_source_hash": package_source_hash(),
        "wheel": wheel.name,
        "retrain": args.retrain,
        "seed": args.seed,
        "hosts": "official" if args.official_hosts else "local server over files made from the mirror",
        "machine": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup_seconds": round(setup, 1),
        "chapters": records,
        "total_seconds": round(sum(r["seconds"] for r in records), 1),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="the wheel to install (default: build one)")
    parser.add_argument("--chapters", nargs="+", help="chapter numbers (default: all), e.g. 01 08")
    parser.add_argument("--retrain", action="store_true", help="MNEMO_RETRAIN=1: train every model")
    parser.add_argument("--find-links", type=Path,
                        help="install from this wheelhouse only (a machine without the package index)")
    parser.add_argument("--seed", type=int, default=0,
                        help="MNEMO_SEED: the chapters' training seed (default 0, the shipped models)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    parser.add_argument("--official-hosts", action="store_true",
                        help="download from the official hosts (no local server; needs the internet)")
    parser.add_argument("--report", type=Path, help="write the per-chapter records (JSON) here")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer; got {args.seed}")
    selected = chapters(args.chapters)
    mirror = os.environ.get("MNEMO_MIRROR")
    if not args.official_hosts and (not mirror or not (Path(mirror) / "mnist").is_dir()):
        raise SystemExit("MNEMO_MIRROR must name the offline data mirror (the local hosts' files "
                         "are made from it); or pass --official-hosts to download from the internet")
    if args.wheel is not None and not args.wheel.is_file():
        raise SystemExit(f"--wheel: {args.wheel} is not a file")
    if args.find_links is not None and not args.find_links.is_dir():
        raise SystemExit(f"--find-links: {args.find_links} is not a folder")
    with tempfile.TemporaryDirectory(prefix="readers-path-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        wheel = args.wheel.resolve() if args.wheel else build_wheel(work / "dist")
        linked = torch_layer(work / "layer")
        python = make_venv(work / "venv", wheel, work / "layer", args.find_links)
        checksums = None
        if not args.official_hosts:
            checksums = work / "checksums.json"
            checksums.write_text(json.dumps(make_hosts(work / "hosts", Path(mirror))))
        setup = time.perf_counter() - t0
        print(f"wheel {wheel.name}; venv ready (torch layer: {', '.join(linked)}); "
              f"hosts ready; {setup:.0f} s", flush=True)
        with contextlib.ExitStack() as stack:
            url = None if checksums is None else stack.enter_context(serve(work / "hosts"))
            env = reader_env(work / "home", url, checksums, args.retrain, args.seed)
            env["PATH"] = os.pathsep.join([str(python.parent), env["PATH"]])
            (work / "home").mkdir()
            print(f"reader's venv: {check_isolated(python, env)}", flush=True)
            records = run_chapters(python, selected, work, env, args.timeout)
    total = sum(r["seconds"] for r in records)
    print(f"{sum(r['ok'] for r in records)}/{len(records)} chapters passed; {total:.0f} s in all")
    if args.report:
        write_report(args.report, argv, wheel, args, setup, records)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
