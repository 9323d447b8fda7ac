"""Generate the course assignments from their master notebooks and check the result.

    python assignments/build.py                  # all assignments
    python assignments/build.py fisher codes     # some of them
    python assignments/build.py --sync           # also rewrite the committed copies

For each master notebook ``assignments/<name>.ipynb`` this

0. for the assignments that read MNIST (``codes``, ``forgetting``, ``audits``), first puts its
   four ``.gz`` files into ``assignments/mnist/`` (git-ignored), which their masters ship with
   the autograder (``autograder_files``), so that grading never downloads: taken from
   ``$MNEMO_MIRROR/mnist/`` when set, else from the data root's ``MNIST/raw/`` (fetched there
   with ``load_mnist()`` when missing), each checked against its official MD5;
1. runs ``otter assign`` into ``assignments/dist/<name>/`` (git-ignored): the student notebook
   and its public checks in ``student/``, the solution notebook, all checks (public and hidden)
   and the Gradescope autograder zip in ``autograder/``. ``otter assign`` itself grades the
   solution notebook with the autograder zip against every check and fails if one does not
   pass; it runs offline (``MNEMO_OFFLINE=1``, no ``MNEMO_MIRROR``, an empty ``MNEMO_DATA``),
   so the zip must carry the data its checks need;
2. executes the untouched student notebook from top to bottom in a fresh kernel, in a temporary
   copy of ``student/`` (so that the folder handed to students holds no grading log or export),
   and requires that no cell raises and that every ``grader.check`` cell reports failing checks
   that say "not implemented yet", with no error raised inside a check (the student has not
   answered anything yet, so a check that passes cannot be checking);
3. compares the public checks with the copies shipped in the package
   (``mnemo_tutorial/assignment_tests/<name>/``, which Colab installs with the package), and
   the student notebook with the copy committed as ``assignments/student/<name>.ipynb`` (the
   notebook the Colab link of each assignment page opens at the release's tag; cell ids
   numbered, so that the copy does not change from one build to the next); ``--sync``
   (or ``--sync-package-tests``) rewrites those copies instead.

Exit status 0 when everything holds, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DIST = HERE / "dist"
PACKAGE_TESTS = REPO / "mnemo_tutorial" / "assignment_tests"
STUDENT = HERE / "student"
ASSIGNMENTS = ("fisher", "codes", "forgetting", "audits", "removal")
CELL_TIMEOUT_S = 600
# MNIST for the autograders: the four files load_mnist() reads, gzipped, in assignments/mnist/
# (the master notebooks of these assignments name the folder in `autograder_files`).
MNIST_DIR = HERE / "mnist"
MNIST_ASSIGNMENTS = ("codes", "forgetting", "audits", "removal")


def _gunzip_md5(path: Path) -> str:
    h = hashlib.md5()
    with gzip.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _intact(folder: Path) -> bool:
    """Whether ``folder`` holds the four MNIST ``.gz`` files, each with its official MD5
    (of the uncompressed file)."""
    from mnemo_tutorial.training.data import MNIST_MD5

    try:
        return all(_gunzip_md5(folder / f"{n}.gz") == md5 for n, md5 in MNIST_MD5.items())
    except (OSError, EOFError):  # missing or not gzip
        return False


def stage_mnist() -> str:
    """Put the four MNIST ``.gz`` files into ``assignments/mnist/``; return where they came from.

    From ``$MNEMO_MIRROR/mnist/`` when set (and complete), else from the data root's
    ``MNIST/raw/`` (``MNEMO_DATA``, default ``data/`` in the checkout; the ``.gz`` files there,
    or the uncompressed files gzipped), fetched there with ``load_mnist()`` (from the mirror or
    by download, unless ``MNEMO_OFFLINE=1``) when missing. A folder already holding intact
    copies is kept. Raises ``RuntimeError`` when MNIST is nowhere to be had."""
    from mnemo_tutorial import load_mnist
    from mnemo_tutorial.training.data import MNIST_MD5, data_root, mirror_root

    if _intact(MNIST_DIR):
        return f"{MNIST_DIR} (already there)"
    mirror = mirror_root()

    def raw_sources() -> list[Path] | None:
        raw = data_root() / "MNIST" / "raw"
        found = []
        for n in MNIST_MD5:
            for cand in (raw / f"{n}.gz", raw / n):
                if cand.is_file():
                    found.append(cand)
                    break
            else:
                return None
        return found

    sources: list[Path] | None = None
    if mirror is not None and all((mirror / "mnist" / f"{n}.gz").is_file() for n in MNIST_MD5):
        sources = [mirror / "mnist" / f"{n}.gz" for n in MNIST_MD5]
    if sources is None:
        sources = raw_sources()
    if sources is None:
        try:
            load_mnist()  # into the data root: from the mirror, or downloaded
        except Exception as exc:
            raise RuntimeError(
                f"MNIST is needed for the autograders of {', '.join(MNIST_ASSIGNMENTS)} and was "
                f"not found: set MNEMO_MIRROR to a folder with "
                f"mnist/{{{','.join(MNIST_MD5)}}}.gz, or put the files into "
                f"{data_root() / 'MNIST' / 'raw'} (load_mnist() said: {exc})"
            ) from None
        sources = raw_sources()
        if sources is None:
            raise RuntimeError(f"load_mnist() left no MNIST files in {data_root() / 'MNIST/raw'}")

    tmp = Path(tempfile.mkdtemp(prefix=".mnist-", dir=MNIST_DIR.parent))
    try:
        for src in sources:
            dest = tmp / (src.name if src.suffix == ".gz" else f"{src.name}.gz")
            if src.suffix == ".gz":
                shutil.copyfile(src, dest)
            else:  # gzip the uncompressed IDX file (mtime 0: the same bytes on every build)
                with open(src, "rb") as f, gzip.GzipFile(dest, "wb", compresslevel=6, mtime=0) as g:
                    shutil.copyfileobj(f, g, 1 << 20)
        if not _intact(tmp):
            raise RuntimeError(
                f"the MNIST files in {sources[0].parent} do not match their official MD5; "
                f"replace them with intact copies"
            )
        tmp.chmod(0o755)
        shutil.rmtree(MNIST_DIR, ignore_errors=True)
        tmp.rename(MNIST_DIR)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(sources[0].parent)


def grading_env(data_dir: Path) -> dict[str, str]:
    """The environment of ``otter assign``: its grading of the solutions runs offline, with no
    mirror and an empty data root, so it only passes when the autograder zip ships the data."""
    env = dict(os.environ, MNEMO_OFFLINE="1", MNEMO_DATA=str(data_dir))
    env.pop("MNEMO_MIRROR", None)
    return env


def run_assign(name: str) -> Path:
    """``otter assign`` for one master notebook, written atomically to ``dist/<name>``."""
    DIST.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=DIST))
    data_dir = Path(tempfile.mkdtemp(prefix=f"mnemo-data-{name}-"))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "otter", "assign", str(HERE / f"{name}.ipynb"), str(tmp / "out")],
            cwd=HERE,
            capture_output=True,
            text=True,
            env=grading_env(data_dir),
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise RuntimeError(f"otter assign failed for {name} (solutions must pass every check)")
        final = DIST / name
        if final.exists():
            shutil.rmtree(final)
        (tmp / "out").rename(final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


# What an error inside a check looks like: the check crashed on the stub instead of saying the
# question is unanswered.
CRASH_MARKERS = ("TypeError", "AttributeError", "NameError", "IndexError", "KeyError", "ValueError")


def check_outputs(name: str, nb) -> list[str]:
    """Every ``grader.check`` cell of the executed untouched notebook reports a failure that says
    "not implemented yet", and none shows an error raised inside the check."""
    problems = []
    checks = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "grader.check(" not in cell.source or "check_all" in cell.source:
            continue
        checks += 1
        text = ""
        for o in cell.get("outputs", []):
            text += "".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        where = f"{name}: `{cell.source.strip()}`"
        if "failed" not in text or "All test cases passed" in text:
            problems.append(f"{where} did not report a failure for an unanswered question")
        elif "not implemented yet" not in text:
            problems.append(f"{where} does not say 'not implemented yet' for the untouched stub")
        crashed = [m for m in CRASH_MARKERS if m in text]
        if crashed:
            problems.append(f"{where}: an error inside the check ({', '.join(crashed)}) on the stub")
    if checks == 0:
        problems.append(f"{name}: no grader.check cells in the student notebook")
    return problems


def check_student_notebook(name: str, out: Path) -> list[str]:
    """Execute the untouched student notebook in a temporary copy of ``student/`` (the folder
    students get stays free of grading logs and exports); return the problems found."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    with tempfile.TemporaryDirectory(prefix=f"student-{name}-") as tmp:
        work = Path(tmp) / "student"
        shutil.copytree(out / "student", work)
        nb = nbformat.read(work / f"{name}.ipynb", as_version=4)
        client = NotebookClient(
            nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(work)}}
        )
        try:
            client.execute()
        except CellExecutionError as e:
            return [f"{name}: the untouched student notebook raised an error:\n{e}"]
    return check_outputs(name, nb)


def compare_package_tests(name: str, out: Path, sync: bool) -> list[str]:
    """The package's copy of the public checks must equal the generated ones."""
    generated = out / "student" / "tests"
    shipped = PACKAGE_TESTS / name
    if sync:
        tmp = PACKAGE_TESTS / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(generated, tmp)
        shutil.rmtree(shipped, ignore_errors=True)
        tmp.rename(shipped)
        return []
    gen_files = sorted(p.name for p in generated.glob("*.py"))
    ship_files = sorted(p.name for p in shipped.glob("*.py")) if shipped.is_dir() else []
    if gen_files != ship_files or any(not filecmp.cmp(generated / f, shipped / f, shallow=False) for f in gen_files):
        return [
            f"{name}: the public checks shipped in {shipped.relative_to(REPO)} differ from the ones "
            f"otter assign generates; run `python assignments/build.py --sync`"
        ]
    return []


def committed_student_notebook(name: str, out: Path) -> str:
    """The generated student notebook as it is committed: cell ids numbered, Jupyter's layout."""
    nb = json.loads((out / "student" / f"{name}.ipynb").read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"{name}-{i:02d}"
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def compare_student_notebook(name: str, out: Path, sync: bool) -> list[str]:
    """The committed student notebook (what Colab opens) must equal the generated one."""
    text = committed_student_notebook(name, out)
    committed = STUDENT / f"{name}.ipynb"
    if sync:
        STUDENT.mkdir(exist_ok=True)
        tmp = committed.with_name(f".{name}.ipynb.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(committed)
        return []
    if not committed.is_file() or committed.read_text(encoding="utf-8") != text:
        return [
            f"{name}: {committed.relative_to(REPO)} differs from the student notebook otter "
            f"assign generates; run `python assignments/build.py --sync`"
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"assignments to build (default: all of {', '.join(ASSIGNMENTS)})")
    parser.add_argument("--sync", "--sync-package-tests", dest="sync", action="store_true",
                        help="copy the generated public checks into mnemo_tutorial/assignment_tests/ "
                        "and the student notebooks into assignments/student/")
    parser.add_argument("--skip-student-run", action="store_true",
                        help="do not execute the student notebooks (faster; CI does not use this)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in ASSIGNMENTS]
    if unknown:
        parser.error(f"unknown assignment(s) {', '.join(unknown)}; choose from {', '.join(ASSIGNMENTS)}")
    names = args.names or list(ASSIGNMENTS)

    os.environ.setdefault("MPLBACKEND", "Agg")
    problems: list[str] = []
    t_all = time.perf_counter()
    if any(n in MNIST_ASSIGNMENTS for n in names):
        try:
            source = stage_mnist()
        except RuntimeError as exc:
            print(f"PROBLEM: {exc}", file=sys.stderr)
            return 1
        print(f"MNIST for the autograders in {MNIST_DIR.relative_to(REPO)}/ from {source}: "
              f"{time.perf_counter() - t_all:.0f} s", flush=True)
    for name in names:
        t0 = time.perf_counter()
        out = run_assign(name)
        t1 = time.perf_counter()
        print(f"{name}: otter assign (solutions checked) {t1 - t0:.0f} s", flush=True)
        if not args.skip_student_run:
            problems += check_student_notebook(name, out)
            print(f"{name}: untouched student notebook executed {time.perf_counter() - t1:.0f} s", flush=True)
        problems += compare_package_tests(name, out, args.sync)
        problems += compare_student_notebook(name, out, args.sync)
    print(f"all: {time.perf_counter() - t_all:.0f} s; output in {DIST.relative_to(REPO)}/")
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
