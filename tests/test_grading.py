"""package_blocked: a student's function that calls the package fails, one that does not runs,
and everything is restored afterwards."""

from __future__ import annotations

import pytest
import torch

import mnemo_tutorial.core.fisher as fisher_module
from mnemo_tutorial import MnemonicCodes
from mnemo_tutorial.core.fisher import per_sample_sq_grads
from mnemo_tutorial.grading import CalledThePackage, package_blocked


def _data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    return model, torch.randn(4, 3), torch.tensor([0, 1, 1, 0])


def calls_the_imported_name(model, x, y):
    return per_sample_sq_grads(model, x, y)


def calls_through_a_fresh_import(model, x, y):
    from mnemo_tutorial.core.fisher import per_sample_sq_grads as psg

    return psg(model, x, y)


def calls_the_module(model, x, y):
    return fisher_module.per_sample_sq_grads(model, x, y)


def writes_it(model, x, y):
    out = {}
    for name, p in model.named_parameters():
        rows = []
        for i in range(len(y)):
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
            rows.append(torch.autograd.grad(loss, p)[0] ** 2)
        out[name] = torch.stack(rows)
    return out


@pytest.mark.parametrize(
    "fn", [calls_the_imported_name, calls_through_a_fresh_import, calls_the_module]
)
def test_calls_to_the_package_raise_and_name_the_helper(fn):
    model, x, y = _data()
    with pytest.raises(
        CalledThePackage, match=rf"{fn.__name__} called the package's .*per_sample_sq_grads"
    ):
        with package_blocked(fn):
            fn(model, x, y)
    assert per_sample_sq_grads is fisher_module.per_sample_sq_grads  # restored
    assert fn(model, x, y)["0.weight"].shape == (4, 2, 3)


def test_own_code_runs_and_matches_the_reference():
    model, x, y = _data()
    ref = per_sample_sq_grads(model, x, y)
    with package_blocked(writes_it):
        got = writes_it(model, x, y)
    assert all(torch.allclose(got[k], ref[k], atol=1e-6) for k in ref)


def test_methods_named_in_also_and_allowed_functions():
    def uses_random(num_classes):
        return MnemonicCodes.random(num_classes, (1, 2, 2), seed=0)

    original = MnemonicCodes.__dict__["random"]
    with pytest.raises(CalledThePackage, match="MnemonicCodes.random"):
        with package_blocked(uses_random, also=["MnemonicCodes.random"]):
            uses_random(3)
    assert MnemonicCodes.__dict__["random"] is original
    with package_blocked(calls_the_imported_name, allow=["per_sample_sq_grads"]):
        calls_the_imported_name(*_data())
    with pytest.raises(ValueError, match="also"):
        with package_blocked(uses_random, also=["NoSuchClass.random"]):
            pass
    with pytest.raises(TypeError, match="fn"):
        with package_blocked(None):
            pass


def test_a_lazy_export_first_imported_inside_the_block_is_not_left_blocked():
    import mnemo_tutorial

    def imports_lazily():
        from mnemo_tutorial import evaluate

        return evaluate

    mnemo_tutorial.__dict__.pop("evaluate", None)  # as if never looked up before
    with package_blocked(imports_lazily):
        imports_lazily()
    from mnemo_tutorial.evaluation.metrics import evaluate

    assert mnemo_tutorial.evaluate is evaluate
