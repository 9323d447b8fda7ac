"""The assignments' checks catch wrong answers and pass the solutions.

`otter assign` turns each master notebook in ``assignments/`` into a solution notebook and one
otter test file per question (public and hidden test cases). For every question this module

* executes the solution notebook and runs the question's test file on its namespace with
  otter's own test runner: every test case must pass;
* swaps in plausible wrong implementations (listed in ``WRONG``), one at a time, and runs the
  test file again: every wrong implementation must fail at least one test case, and every test
  case (public and hidden) must reject at least two of them.

A check that cannot fail, or a question with fewer than two wrong implementations, fails here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import otter.test_files as otter_test_files
import pytest
import yaml

ASSIGNMENTS_DIR = Path(__file__).resolve().parents[1] / "assignments"
NAMES = ("fisher", "codes", "forgetting", "audits", "removal")


def load_build():
    """``assignments/build.py`` as a module."""
    spec = importlib.util.spec_from_file_location("assignments_build", ASSIGNMENTS_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def load_wrong(name: str) -> dict[str, dict[str, str]]:
    """``tests/wrong_answers/<name>.py``'s WRONG: {question: {description: code}}."""
    path = Path(__file__).resolve().parent / "wrong_answers" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"wrong_answers_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG


# {assignment: {question: {description: code that rebinds the answer in the solution namespace}}}
WRONG: dict[str, dict[str, dict[str, str]]] = {name: load_wrong(name) for name in NAMES}

CASES = [(name, q) for name in NAMES for q in WRONG[name]]


class Generated(dict):
    """`otter assign` of a master notebook (without re-running the solutions: done below), run
    the first time an assignment is asked for, so that ``-k <name>`` generates only that one."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, name: str) -> Path:
        dest = self.root / name
        proc = subprocess.run(
            [sys.executable, "-m", "otter", "assign", "--no-run-tests", str(ASSIGNMENTS_DIR / f"{name}.ipynb"), str(dest)],
            cwd=ASSIGNMENTS_DIR, capture_output=True, text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        self[name] = dest
        return dest


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> dict[str, Path]:
    load_build().stage_mnist()  # assignments/mnist/, which the MNIST assignments ship with the autograder
    return Generated(tmp_path_factory.mktemp("assign"))


_ENVS: dict[str, dict] = {}


def solution_env(name: str, generated: dict[str, Path]) -> dict:
    """Namespace of the solution notebook executed top to bottom (the grader calls skipped).

    The setup cell is skipped too: it only installs the package when it is missing and creates
    the otter grader, which would write its log file into the working directory."""
    if name not in _ENVS:
        from IPython.core.inputtransformer2 import TransformerManager

        nb = nbformat.read(generated[name] / "autograder" / f"{name}.ipynb", as_version=4)
        tm = TransformerManager()
        env: dict = {"__name__": "__main__"}
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or "grader." in cell.source or "otter.Notebook(" in cell.source:
                continue
            exec(compile(tm.transform_cell(cell.source), f"<{name} cell {i}>", "exec"), env)
        _ENVS[name] = env
    return _ENVS[name]


def run_checks(name: str, question: str, generated: dict[str, Path], env: dict):
    """Run the question's otter test file on ``env``: [(test case name, hidden, passed)]."""
    path = generated[name] / "autograder" / "tests" / f"{question}.py"
    test_file = otter_test_files.ExceptionTestFile.from_file(str(path))
    test_file.run(env)
    return [(r.test_case.name, r.test_case.hidden, r.passed) for r in test_file.test_case_results]


def test_one_list_of_assignments():
    """The build, the version sync and these tests know the same assignments: the masters."""
    import importlib

    masters = {p.stem for p in ASSIGNMENTS_DIR.glob("*.ipynb")}
    assert set(NAMES) == masters == set(load_build().ASSIGNMENTS)
    sys.path.insert(0, str(ASSIGNMENTS_DIR.parent / "scripts"))
    try:
        assert set(importlib.import_module("sync_version").ASSIGNMENTS) == masters
    finally:
        sys.path.pop(0)


def test_every_question_has_public_and_hidden_checks(generated):
    total = 0
    for name in NAMES:
        tests = sorted((generated[name] / "autograder" / "tests").glob("q*.py"))
        public = {p.name for p in (generated[name] / "student" / "tests").glob("q*.py")}
        for path in tests:
            cases = otter_test_files.ExceptionTestFile.from_file(str(path)).test_cases
            assert any(c.hidden for c in cases) and any(not c.hidden for c in cases), f"{name} {path.stem}"
            assert path.name in public, f"{name} {path.stem}: no public checks in the student version"
            assert path.stem in WRONG[name], f"{name} {path.stem}: no wrong implementations listed in WRONG"
            total += 1
    assert total >= 20, f"{total} auto-graded questions"


@pytest.mark.parametrize("name,question", CASES, ids=[f"{n}-{q}" for n, q in CASES])
def test_checks_pass_solution_and_reject_wrong_answers(name, question, generated):
    env = solution_env(name, generated)
    results = run_checks(name, question, generated, env)
    failed = [case for case, _, ok in results if not ok]
    assert results and not failed, f"the solution fails {failed}"

    wrong = WRONG[name][question]
    assert len(wrong) >= 2, "list at least two wrong implementations"
    rejected_by = {case: [] for case, _, _ in results}
    for label, code in wrong.items():
        env2 = dict(env)
        exec(textwrap.dedent(code), env2)
        outcome = run_checks(name, question, generated, env2)
        assert not all(ok for _, _, ok in outcome), f"{name} {question}: the wrong implementation '{label}' passes every check"
        for case, _, ok in outcome:
            if not ok:
                rejected_by[case].append(label)
    weak = {case: labels for case, labels in rejected_by.items() if len(labels) < 2}
    assert not weak, f"{name} {question}: test cases rejecting fewer than two wrong implementations: {weak}"


def test_q5_public_check_grades_the_test_split_not_forgets_own_criterion():
    """The shipped public check of forgetting q5 grades E_F and A_R on x_test, y_test: a step
    whose criterion on the codes is not met is graded, not raised as ForgetFailed."""
    import torch

    from mnemo_tutorial import Fixed, ForgetSettings, MnemonicCodes, forget
    from mnemo_tutorial.training.models import MLP

    path = Path(__file__).resolve().parents[1] / "mnemo_tutorial" / "assignment_tests" / "forgetting" / "q5.py"
    torch.manual_seed(0)
    model = MLP(in_features=16, hidden=8, num_classes=10)
    codes = MnemonicCodes.random(10, (1, 4, 4), seed=0)
    x_test = torch.rand(200, 1, 4, 4)
    with torch.no_grad():
        y_test = model(x_test).argmax(1)  # A_R 100 %
    y_test[torch.nonzero(y_test != 3).flatten()[:20]] = 3  # digit 3 never predicted as 3: E_F 100 %

    def choose_lambdas(model, codes, forget):
        return 1e-12, 1e-12, 1  # moves (almost) nothing

    tiny_step = ForgetSettings(selection=Fixed(1e-12, 1e-12), sign=1)
    rep = forget(model, codes, [3], tiny_step, on_failure="return").report
    assert rep.status == "failed"  # the untrained model's codes fail forget's criterion
    test_file = otter_test_files.ExceptionTestFile.from_file(str(path))
    test_file.run(dict(choose_lambdas=choose_lambdas, model=model, codes=codes, x_test=x_test, y_test=y_test))
    results = test_file.test_case_results
    assert results and all(r.passed for r in results), [r.message for r in results]


def _master(name: str) -> tuple[dict, list[dict]]:
    """The ASSIGNMENT CONFIG of a master notebook and its code cells."""
    nb = json.loads((ASSIGNMENTS_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
    config = yaml.safe_load("".join(nb["cells"][0]["source"]).replace("# ASSIGNMENT CONFIG", "", 1))
    return config, [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("name", NAMES)
def test_mnist_assignments_ship_mnist_with_the_autograder(name):
    """Grading runs the whole notebook: the assignments that read MNIST ship it in the
    autograder zip (``autograder_files``, staged by build.py), only there, and their setup cell
    points the package's mirror at it before loading, so that grading downloads nothing."""
    build = load_build()
    config, code = _master(name)
    uses_mnist = any("load_mnist(" in "".join(c["source"]) for c in code)
    assert uses_mnist == (name in build.MNIST_ASSIGNMENTS), f"{name}: MNIST_ASSIGNMENTS in build.py"
    assert build.MNIST_DIR == ASSIGNMENTS_DIR / "mnist"
    shipped = config.get("autograder_files", [])
    assert ("mnist" in shipped) == uses_mnist, f"{name}: autograder_files {shipped}"
    for_students = config.get("files", []) + config.get("student_files", [])
    assert "mnist" not in for_students, "MNIST goes to the autograder only"
    if uses_mnist:
        setup = "".join(next(c for c in code if "load_mnist(" in "".join(c["source"]))["source"])
        points = setup.index('os.environ["MNEMO_MIRROR"] = os.getcwd()')
        assert points < setup.index("data = load_mnist()")
        assert 'if not os.environ.get("MNEMO_MIRROR")' in setup
        assert 'glob.glob("mnist/*-ubyte.gz")' in setup


def test_stage_mnist_fails_clearly_without_data(tmp_path, monkeypatch):
    build = load_build()
    monkeypatch.setattr(build, "MNIST_DIR", tmp_path / "mnist")
    monkeypatch.delenv("MNEMO_MIRROR", raising=False)
    monkeypatch.setenv("MNEMO_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("MNEMO_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="MNIST is needed for the autograders.*MNEMO_MIRROR"):
        build.stage_mnist()
    assert not (tmp_path / "mnist").exists()


def _questions(name: str) -> list[dict]:
    """The BEGIN QUESTION blocks of a master notebook, parsed (name, points, manual, ...)."""
    nb = json.loads((ASSIGNMENTS_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "raw" and src.startswith("# BEGIN QUESTION"):
            out.append(yaml.safe_load(src.replace("# BEGIN QUESTION", "", 1)))
    return out


def test_enough_graded_questions_and_every_written_part_is_graded():
    """>= 25 graded questions over five assignments; each assignment grades at least one
    written answer by hand (``manual: true``) and gives it points."""
    total = 0
    for name in NAMES:
        questions = _questions(name)
        manual = [q for q in questions if q.get("manual")]
        assert manual, f"{name}: no written answer is graded (otter manual: true)"
        assert all(q.get("points") for q in questions), f"{name}: a question without points"
        total += len(questions)
    assert total >= 25, f"{total} graded questions"


@pytest.mark.parametrize("name", NAMES)
def test_manual_questions_carry_a_rubric_the_students_do_not_see(name, generated):
    """Every hand-graded question has a rubric in the solution notebook (the autograder's copy)
    and none in the student notebook."""
    manual = [q["name"] for q in _questions(name) if q.get("manual")]
    solution = (generated[name] / "autograder" / f"{name}.ipynb").read_text(encoding="utf-8")
    student = (generated[name] / "student" / f"{name}.ipynb").read_text(encoding="utf-8")
    assert solution.lower().count("rubric") >= len(manual), f"{name}: a manual question without a rubric"
    assert "rubric" not in student.lower(), f"{name}: the rubric is visible to students"


@pytest.mark.parametrize("name", NAMES)
def test_hidden_assertions_explain_themselves_to_the_instructor(name, generated):
    """Every ``assert`` in a hidden test case has a message (read in otter's results)."""
    import ast

    bare = []
    for path in sorted((generated[name] / "autograder" / "tests").glob("q*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            hidden = any(
                isinstance(d, ast.Call) and any(k.arg == "hidden" and getattr(k.value, "value", False) for k in d.keywords)
                for d in fn.decorator_list
            )
            if hidden:
                bare += [f"{path.stem}:{fn.name}:{a.lineno}" for a in ast.walk(fn) if isinstance(a, ast.Assert) and a.msg is None]
    assert not bare, f"{name}: hidden assertions without a message: {bare}"


@pytest.mark.parametrize("name", NAMES)
def test_wrong_answers_include_two_of_our_own_per_question(name):
    """The wrong answers a trial with students found (labelled 'trial: ') plus at least two more per
    question."""
    for question, answers in WRONG[name].items():
        own = [label for label in answers if not label.startswith("trial:")]
        assert len(own) >= 2, f"{name} {question}: {len(own)} wrong answers beyond the trial's"
