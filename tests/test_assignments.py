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
NAMES = ("fisher", "codes", "forgetting", "audits")


def load_build():
    """``assignments/build.py`` as a module."""
    spec = importlib.util.spec_from_file_location("assignments_build", ASSIGNMENTS_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

# {assignment: {question: {description: code that rebinds the answer in the solution namespace}}}
WRONG: dict[str, dict[str, dict[str, str]]] = {
    "fisher": {
        "q1": {
            "square of the batch-mean gradient, repeated for every sample": """
                def sq_grads_loop(model, x, y):
                    params = dict(model.named_parameters())
                    g = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
                    return {n: (gi ** 2).expand(len(y), *gi.shape).clone() for n, gi in zip(params, g)}
            """,
            "gradient not squared": """
                def sq_grads_loop(model, x, y):
                    params = dict(model.named_parameters())
                    rows = {n: [] for n in params}
                    for i in range(len(y)):
                        g = torch.autograd.grad(F.cross_entropy(model(x[i:i+1]), y[i:i+1]), list(params.values()))
                        for n, gi in zip(params, g):
                            rows[n].append(gi)
                    return {n: torch.stack(v) for n, v in rows.items()}
            """,
            "absolute value instead of the square": """
                _right = sq_grads_loop
                def sq_grads_loop(model, x, y):
                    return {n: v.sqrt() for n, v in _right(model, x, y).items()}
            """,
        },
        "q2": {
            "gradient not squared": """
                def sq_grads_vmap(model, x, y):
                    params = {n: p.detach() for n, p in model.named_parameters()}
                    def loss_one(p, xi, yi):
                        return F.cross_entropy(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))
                    return dict(vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y))
            """,
            "summed over the samples (no per-sample axis)": """
                _right = sq_grads_vmap
                def sq_grads_vmap(model, x, y):
                    return {n: v.sum(0) for n, v in _right(model, x, y).items()}
            """,
            "the model's predicted label instead of the true one": """
                _right = sq_grads_vmap
                def sq_grads_vmap(model, x, y):
                    with torch.no_grad():
                        y_hat = model(x).argmax(1)
                    return _right(model, x, y_hat)
            """,
        },
        "q3": {
            "sum over the samples instead of the mean": """
                def diag_fisher(model, x, y):
                    return {n: v.sum(0) for n, v in per_sample_sq_grads(model, x, y).items()}
            """,
            "square of the mean gradient": """
                def diag_fisher(model, x, y):
                    params = dict(model.named_parameters())
                    g = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
                    return {n: gi.detach() ** 2 for n, gi in zip(params, g)}
            """,
            "mean of the absolute gradient (square missing)": """
                def diag_fisher(model, x, y):
                    return {n: v.sqrt().mean(0) for n, v in per_sample_sq_grads(model, x, y).items()}
            """,
        },
        "q4": {
            "sum over the samples instead of the mean": """
                def logistic_fisher(X, w):
                    q = torch.sigmoid(X @ w)
                    return (X * (q * (1 - q))[:, None]).T @ X
            """,
            "missing the sigma(1 - sigma) weight": """
                def logistic_fisher(X, w):
                    return X.T @ X / X.shape[0]
            """,
            "sigma squared instead of sigma(1 - sigma)": """
                def logistic_fisher(X, w):
                    q = torch.sigmoid(X @ w)
                    return (X * (q ** 2)[:, None]).T @ X / X.shape[0]
            """,
        },
        "q5": {
            "the true Fisher's weight sigma(1 - sigma)": """
                def logistic_emp_fisher(X, y, w):
                    q = torch.sigmoid(X @ w)
                    return (X * (q * (1 - q))[:, None]).T @ X / X.shape[0]
            """,
            "residual not squared": """
                def logistic_emp_fisher(X, y, w):
                    q = torch.sigmoid(X @ w)
                    return (X * (q - y)[:, None]).T @ X / X.shape[0]
            """,
            "sum over the samples instead of the mean": """
                def logistic_emp_fisher(X, y, w):
                    q = torch.sigmoid(X @ w)
                    return (X * ((q - y) ** 2)[:, None]).T @ X
            """,
        },
    },
    "codes": {
        "q1": {
            "ignores the distribution (always uniform)": """
                def draw_codes(num_classes, shape, seed, distribution="uniform"):
                    return torch.rand((num_classes, *shape), generator=torch.Generator().manual_seed(seed))
            """,
            "one generator per class seeded with seed + c": """
                def draw_codes(num_classes, shape, seed, distribution="uniform"):
                    if distribution not in ("uniform", "normal"):
                        raise ValueError(f"distribution must be 'uniform' or 'normal'; got {distribution!r}")
                    f = torch.rand if distribution == "uniform" else torch.randn
                    return torch.stack([f(tuple(shape), generator=torch.Generator().manual_seed(seed + c))
                                        for c in range(num_classes)])
            """,
            "no error for an unknown distribution": """
                def draw_codes(num_classes, shape, seed, distribution="uniform"):
                    gen = torch.Generator().manual_seed(seed)
                    size = (num_classes, *shape)
                    return torch.rand(size, generator=gen) if distribution == "uniform" else torch.randn(size, generator=gen)
            """,
        },
        "q2": {
            "swaps the samples whose draw is above t_mix": """
                def mix_batch(x, y, codes, t_mix, generator=None):
                    mask = torch.rand(x.shape[0], generator=generator) > t_mix
                    out = x.clone()
                    out[mask] = codes[y[mask]].to(x.dtype)
                    return out, mask
            """,
            "changes x in place": """
                def mix_batch(x, y, codes, t_mix, generator=None):
                    mask = torch.rand(x.shape[0], generator=generator) < t_mix
                    x[mask] = codes[y[mask]].to(x.dtype)
                    return x, mask
            """,
            "draws from the global generator, ignoring the one passed": """
                def mix_batch(x, y, codes, t_mix, generator=None):
                    mask = torch.rand(x.shape[0]) < t_mix
                    out = x.clone()
                    out[mask] = codes[y[mask]].to(x.dtype)
                    return out, mask
            """,
        },
        "q3": {
            "no code mixing": """
                def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                    gen = torch.Generator().manual_seed(seed)
                    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
                    model.train()
                    for _ in range(epochs):
                        order = torch.randperm(len(y), generator=gen)
                        for i in range(0, len(y), 128):
                            idx = order[i:i + 128]
                            loss = F.cross_entropy(model(x[idx]), y[idx])
                            opt.zero_grad(); loss.backward(); opt.step()
                    return model.eval()
            """,
            "returns the model untrained": """
                def train_with_codes(model, x, y, codes, t_mix, epochs, seed=0):
                    return model.eval()
            """,
        },
        "q4": {
            "softmax over the codes (dim 0) instead of the classes": """
                def code_confidence(model, codes):
                    with torch.no_grad():
                        return model(codes).softmax(dim=0).diagonal()
            """,
            "largest probability instead of the own class's": """
                def code_confidence(model, codes):
                    with torch.no_grad():
                        return model(codes).softmax(dim=1).max(1).values
            """,
            "logits instead of probabilities": """
                def code_confidence(model, codes):
                    with torch.no_grad():
                        return model(codes).diagonal()
            """,
        },
        "q5": {
            "own and fresh accuracies swapped": "own_acc, fresh_acc = fresh_acc, own_acc",
            "fractions instead of percentages": "own_acc, fresh_acc = own_acc / 100, fresh_acc / 100",
            "model trained without codes (t_mix = 0)": """
                torch.manual_seed(0)
                trained_model = train_with_codes(MLP(hidden=256), x_small, y_small, codes_tensor, 0.0, 4, seed=0)
                with torch.no_grad():
                    own_acc = 100.0 * (trained_model(codes_tensor).argmax(1) == torch.arange(10)).float().mean().item()
                    fresh_acc = 100.0 * (trained_model(draw_codes(10, (1, 28, 28), seed=1)).argmax(1) == torch.arange(10)).float().mean().item()
            """,
        },
    },
    "forgetting": {
        "q1": {
            "not normalised": """
                def class_fisher(model, codes):
                    return per_sample_sq_grads(model, codes.codes, codes.labels())
            """,
            "each tensor normalised on its own": """
                def class_fisher(model, codes):
                    sq = per_sample_sq_grads(model, codes.codes, codes.labels())
                    return {k: v / v.flatten(1).sum(1).view(-1, *([1] * (v.dim() - 1))) for k, v in sq.items()}
            """,
            "normalised over the classes instead of over the weights": """
                def class_fisher(model, codes):
                    sq = per_sample_sq_grads(model, codes.codes, codes.labels())
                    return {k: v / v.sum(0, keepdim=True) for k, v in sq.items()}
            """,
        },
        "q2": {
            "f_R averaged over all classes, forgotten ones included": """
                def sensitivity_ratio(fisher, forget):
                    return {k: v[list(forget)].mean(0) / (v.mean(0) + 1e-16) for k, v in fisher.items()}
            """,
            "ratio inverted (f_R / f_F)": """
                def sensitivity_ratio(fisher, forget):
                    keep = [c for c in range(next(iter(fisher.values())).shape[0]) if c not in forget]
                    return {k: v[keep].mean(0) / (v[list(forget)].mean(0) + 1e-16) for k, v in fisher.items()}
            """,
            "sum over the remaining classes instead of the mean": """
                def sensitivity_ratio(fisher, forget):
                    keep = [c for c in range(next(iter(fisher.values())).shape[0]) if c not in forget]
                    return {k: v[list(forget)].mean(0) / (v[keep].sum(0) + 1e-16) for k, v in fisher.items()}
            """,
        },
        "q3": {
            "max instead of min": """
                def per_layer_steps(eta, lambda1, lambda2):
                    return {k: max(lambda1, lambda2 / float(v.max())) for k, v in eta.items()}
            """,
            "one global max over all tensors": """
                def per_layer_steps(eta, lambda1, lambda2):
                    top = max(float(v.max()) for v in eta.values())
                    return {k: min(lambda1, lambda2 / top) for k in eta}
            """,
            "lambda2 times the max instead of divided by it": """
                def per_layer_steps(eta, lambda1, lambda2):
                    return {k: min(lambda1, lambda2 * float(v.max())) for k, v in eta.items()}
            """,
        },
        "q4": {
            "changes the input model in place": """
                def perturb(model, eta, steps, sign):
                    with torch.no_grad():
                        for name, p in model.named_parameters():
                            p.add_(sign * steps[name] * eta[name].to(p.dtype))
                    return model
            """,
            "ignores the sign": """
                def perturb(model, eta, steps, sign):
                    new = copy.deepcopy(model)
                    with torch.no_grad():
                        for name, p in new.named_parameters():
                            p.add_(steps[name] * eta[name].to(p.dtype))
                    return new
            """,
            "adds the step alone, without eta": """
                def perturb(model, eta, steps, sign):
                    new = copy.deepcopy(model)
                    with torch.no_grad():
                        for name, p in new.named_parameters():
                            p.add_(sign * steps[name])
                    return new
            """,
        },
        "q5": {
            "the smallest lambdas on the grids": """
                def choose_lambdas(model, codes, forget):
                    return LAMBDA1_GRID[0], LAMBDA2_GRID[0], -1
            """,
            "the largest lambdas on the grids": """
                def choose_lambdas(model, codes, forget):
                    return LAMBDA1_GRID[-1], LAMBDA2_GRID[-1], -1
            """,
            "the solution's lambdas with the opposite sign": """
                _right = choose_lambdas
                def choose_lambdas(model, codes, forget):
                    l1, l2, s = _right(model, codes, forget)
                    return l1, l2, -s
            """,
        },
    },
    "audits": {
        "q1": {
            "fractions instead of percentages": """
                _right = ef_ar
                def ef_ar(preds, y, forget):
                    e_f, a_r = _right(preds, y, forget)
                    return e_f / 100, a_r / 100
            """,
            "E_F as the accuracy on the forgotten classes": """
                _right = ef_ar
                def ef_ar(preds, y, forget):
                    e_f, a_r = _right(preds, y, forget)
                    return 100.0 - e_f, a_r
            """,
            "A_R over all samples, forgotten ones included": """
                _right = ef_ar
                def ef_ar(preds, y, forget):
                    e_f, _ = _right(preds, y, forget)
                    return e_f, 100.0 * (preds == y).float().mean().item()
            """,
        },
        "q2": {
            "mean over the samples (one number)": """
                def sample_losses(model, x, y):
                    with torch.no_grad():
                        return F.cross_entropy(model(x), y)
            """,
            "minus the probability, no logarithm": """
                def sample_losses(model, x, y):
                    with torch.no_grad():
                        return -model(x).softmax(1)[torch.arange(len(y)), y]
            """,
            "loss against the predicted label": """
                def sample_losses(model, x, y):
                    with torch.no_grad():
                        z = model(x)
                        return F.cross_entropy(z, z.argmax(1), reduction="none")
            """,
        },
        "q3": {
            "members scored by a higher loss": """
                _right = mia_auc
                def mia_auc(loss_members, loss_nonmembers):
                    return _right(loss_nonmembers, loss_members)
            """,
            "ties ignored": """
                def mia_auc(loss_members, loss_nonmembers):
                    return (loss_nonmembers[None, :] > loss_members[:, None]).double().mean().item()
            """,
            "ties counted as member wins": """
                def mia_auc(loss_members, loss_nonmembers):
                    return (loss_nonmembers[None, :] >= loss_members[:, None]).double().mean().item()
            """,
        },
        "q4": {
            "accuracy on the training features (train set used as test set)": """
                def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                    clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(feat_train), np.asarray(y_train))
                    sel = np.isin(np.asarray(y_train), list(forget))
                    return 100.0 * float((clf.predict(np.asarray(feat_train)[sel]) == np.asarray(y_train)[sel]).mean())
            """,
            "probe trained on the test features": """
                def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                    clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(feat_test), np.asarray(y_test))
                    sel = np.isin(np.asarray(y_test), list(forget))
                    return 100.0 * float((clf.predict(np.asarray(feat_test)[sel]) == np.asarray(y_test)[sel]).mean())
            """,
            "accuracy over all test samples": """
                def probe_accuracy(feat_train, y_train, feat_test, y_test, forget):
                    clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.asarray(feat_train), np.asarray(y_train))
                    return 100.0 * float((clf.predict(np.asarray(feat_test)) == np.asarray(y_test)).mean())
            """,
        },
        "q5": {
            "fine-tunes the input model in place": """
                def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                    opt = torch.optim.SGD(model.parameters(), lr=lr)
                    sel = torch.isin(y_eval, torch.as_tensor(list(forget)))
                    def acc():
                        with torch.no_grad():
                            return 100.0 * (model(x_eval[sel]).argmax(1) == y_eval[sel]).float().mean().item()
                    if acc() >= threshold:
                        return 0
                    for step in range(1, max_steps + 1):
                        loss = F.cross_entropy(model(x), y)
                        opt.zero_grad(); loss.backward(); opt.step()
                        if acc() >= threshold:
                            return step
                    return max_steps
            """,
            "summed loss instead of the mean": """
                def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                    work = copy.deepcopy(model)
                    opt = torch.optim.SGD(work.parameters(), lr=lr)
                    sel = torch.isin(y_eval, torch.as_tensor(list(forget)))
                    def acc():
                        with torch.no_grad():
                            return 100.0 * (work(x_eval[sel]).argmax(1) == y_eval[sel]).float().mean().item()
                    if acc() >= threshold:
                        return 0
                    for step in range(1, max_steps + 1):
                        loss = F.cross_entropy(work(x), y, reduction="sum")
                        opt.zero_grad(); loss.backward(); opt.step()
                        if acc() >= threshold:
                            return step
                    return max_steps
            """,
            "accuracy measured on the fine-tuning set instead of the evaluation set": """
                def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                    work = copy.deepcopy(model)
                    opt = torch.optim.SGD(work.parameters(), lr=lr)
                    sel = torch.isin(y, torch.as_tensor(list(forget)))
                    def acc():
                        with torch.no_grad():
                            return 100.0 * (work(x[sel]).argmax(1) == y[sel]).float().mean().item()
                    if acc() >= threshold:
                        return 0
                    for step in range(1, max_steps + 1):
                        loss = F.cross_entropy(work(x), y)
                        opt.zero_grad(); loss.backward(); opt.step()
                        if acc() >= threshold:
                            return step
                    return max_steps
            """,
            "counts one step too many": """
                _right = relearn_steps
                def relearn_steps(model, x, y, x_eval, y_eval, forget, lr=0.05, threshold=50.0, max_steps=100):
                    return _right(model, x, y, x_eval, y_eval, forget, lr, threshold, max_steps) + 1
            """,
        },
    },
}

CASES = [(name, q) for name in NAMES for q in WRONG[name]]


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> dict[str, Path]:
    """`otter assign` of every master notebook (without re-running the solutions: done below)."""
    out = {}
    root = tmp_path_factory.mktemp("assign")
    load_build().stage_mnist()  # assignments/mnist/, which the MNIST assignments ship with the autograder
    for name in NAMES:
        dest = root / name
        proc = subprocess.run(
            [sys.executable, "-m", "otter", "assign", "--no-run-tests", str(ASSIGNMENTS_DIR / f"{name}.ipynb"), str(dest)],
            cwd=ASSIGNMENTS_DIR, capture_output=True, text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out[name] = dest
    return out


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
