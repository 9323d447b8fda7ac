"""Audits and metrics on cases whose answer is known in advance."""
import copy

import pytest
import torch
from torch import nn

from mnemo_tutorial.evaluation.audits import (
    audit,
    extract_features,
    linear_probe,
    membership_auc,
    relearn_time,
)
from mnemo_tutorial.evaluation.removal import removal_audits
from mnemo_tutorial.evaluation.metrics import (
    batched_eval,
    evaluate,
    per_sample_loss,
    predict,
)
from mnemo_tutorial.training.data import ImageData
from mnemo_tutorial.training.models import MLP


def noise_data(n_train, n_test, classes=3, dim=16, seed=0):
    """Pure noise with random labels: nothing to generalise, only to memorise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_test, 1, 4, dim // 4, generator=g)
    y = torch.randint(0, classes, (n_train + n_test,), generator=g)
    return ImageData("noise", x[:n_train], y[:n_train], x[n_train:], y[n_train:], [str(c) for c in range(classes)])


def fit(model, x, y, steps=300, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for p in model.parameters():
        p.grad = None
    return model.eval()


def test_mia_auc_near_one_when_members_are_memorised():
    data = noise_data(150, 300, classes=5)
    torch.manual_seed(0)
    model = fit(MLP(in_features=16, hidden=256, num_classes=5), data.x_train, data.y_train, steps=600)
    assert membership_auc(model, data, [0]) > 0.95


def test_mia_auc_near_half_for_identical_distributions():
    data = noise_data(3000, 3000)  # the model never saw either split
    torch.manual_seed(0)
    model = MLP(in_features=16, hidden=32, num_classes=3).eval()
    assert abs(membership_auc(model, data, [1], samples=None) - 0.5) < 0.05


class FixedFeatures(nn.Module):
    """features(x) = x (or x with dimensions 0 and 1 summed, which makes classes 0 and 1
    indistinguishable), then a linear head."""

    def __init__(self, merge: bool):
        super().__init__()
        self.merge = merge
        self.head = nn.Linear(4 if not merge else 3, 3)

    def features(self, x):
        x = x.flatten(1)
        return torch.cat([x[:, :1] + x[:, 1:2], x[:, 2:]], 1) if self.merge else x

    def forward(self, x):
        return self.head(self.features(x))


def axis_data(n=900, seed=0):
    """Class k is a blob around 4 * e_k in R^4 (shaped 1x2x2)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(2 * n) % 3
    centers = 4.0 * torch.eye(4)[:3]
    x = (centers[y] + 0.5 * torch.randn(2 * n, 4, generator=g)).view(-1, 1, 2, 2)
    return ImageData("axes", x[:n], y[:n], x[n:], y[n:], ["0", "1", "2"])


def test_linear_probe_reads_a_class_only_when_the_features_hold_it():
    data = axis_data()
    keep = linear_probe(FixedFeatures(merge=False), data, [0], train_samples=600, test_samples=600)
    assert keep["forget_acc"] > 95.0 and keep["remain_acc"] > 95.0
    gone = linear_probe(FixedFeatures(merge=True), data, [0], train_samples=600, test_samples=600)
    assert gone["forget_acc"] < 75.0  # class 0 looks exactly like class 1: about a coin flip
    assert gone["accuracy"] < keep["accuracy"]
    with pytest.raises(ValueError, match="features"):
        extract_features(nn.Linear(4, 3), data.x_test)


def blob_data(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(3, 16, generator=g)
    y = torch.arange(2 * n) % 3
    x = (centers[y] + 0.15 * torch.randn(2 * n, 16, generator=g)).view(-1, 1, 4, 4)
    return ImageData("blobs", x[:n], y[:n], x[n:], y[n:], ["0", "1", "2"])


@pytest.fixture(scope="module")
def blob_model():
    data = blob_data()
    torch.manual_seed(0)
    return data, fit(MLP(in_features=16, hidden=32, num_classes=3), data.x_train, data.y_train)


def test_relearn_time_known_cases(blob_model):
    data, model = blob_model
    state = copy.deepcopy(model.state_dict())
    # a model that never forgot: already above the threshold, 0 steps
    assert relearn_time(model, data, [0]) == pytest.approx({"steps": 0, "relearned": True,
                                                            "final_forget_acc": 100.0, "remain_acc": 100.0}, abs=1.0)
    # hiding the class behind its output bias: E_F = 100, but a few steps bring it back
    hidden = copy.deepcopy(model)
    with torch.no_grad():
        hidden.fc2.bias[0] -= 20.0
    assert relearn_time(hidden, data, [0], max_steps=1)["final_forget_acc"] == 0.0
    r = relearn_time(hidden, data, [0], lr=0.05)
    assert r["relearned"] and 1 <= r["steps"] <= 100
    # a learning rate too small to move anything never gets there
    stuck = relearn_time(hidden, data, [0], lr=1e-9, max_steps=5)
    assert stuck == {"steps": 5, "relearned": False, "final_forget_acc": stuck["final_forget_acc"],
                     "remain_acc": stuck["remain_acc"]} and stuck["final_forget_acc"] < 50.0
    for k, v in model.state_dict().items():  # the audit works on a copy
        assert torch.equal(v, state[k])
    assert all(p.grad is None for p in model.parameters())


def test_audit_bundle_is_every_audit_and_bad_arguments(blob_model):
    data, model = blob_model
    out = audit(model, data, [2], seed=1, reference=model)
    assert out == {"mia_auc": membership_auc(model, data, [2], seed=1),
                   **removal_audits(model, data, [2], reference=model, seed=1)}
    assert out["relearn_steps"] == 0 and out["relearned"] and out["js_to_reference"] == 0.0
    assert set(out["probe"]) == {"fc1", "fc2"} and out["probe_first"] == out["probe_last"]
    # train and test blobs come from one distribution and the model generalises: nothing to attack
    assert abs(out["mia_auc"] - 0.5) < 0.1
    with pytest.raises(ValueError, match="threshold"):
        relearn_time(model, data, [0], threshold=0)
    with pytest.raises(ValueError, match="forget"):
        membership_auc(model, data, [5])
    with pytest.raises(ValueError, match="lr"):
        relearn_time(model, data, [0], lr=0)


# --------------------------------------------------------------------------- metrics


def test_evaluate_needs_the_class_count_and_keeps_absent_classes():
    """A split without the last class: the class count cannot come from the labels."""
    model = FixedFeatures(merge=False)
    with torch.no_grad():
        model.head.weight.copy_(torch.eye(3, 4))
        model.head.bias.zero_()
    data = axis_data(n=30)
    keep = data.y_test != 2
    x, y = data.x_test[keep], data.y_test[keep]
    with pytest.raises(ValueError, match="num_classes"):
        evaluate(model, x, y, [0])
    m = evaluate(model, x, y, [0], 3)
    assert len(m["per_class"]) == 3 and m["per_class"][2] != m["per_class"][2]  # NaN: no sample
    assert m["E_F"] == 0.0 and m["A_R"] == 100.0
    with pytest.raises(ValueError, match="forget must be class indices in 0..2"):
        evaluate(model, x, y, [3], 3)


class Recorder(nn.Module):
    """Logits = x @ W; records the batch sizes and the mode it was called in."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3))
        self.calls = []

    def forward(self, x):
        self.calls.append((x.shape[0], self.training, torch.is_grad_enabled()))
        return x.flatten(1) @ self.w


def test_batched_eval_chunks_and_restores_the_mode():
    model = Recorder().train()
    x, y = torch.randn(10, 1, 2, 2), torch.arange(10) % 3
    preds = predict(model, x, batch_size=4)
    assert model.calls == [(4, False, False), (4, False, False), (2, False, False)] and model.training
    assert torch.equal(preds, (x.flatten(1) @ model.w).argmax(1))
    expected = nn.functional.cross_entropy(x.flatten(1) @ model.w, y, reduction="none")
    assert torch.allclose(per_sample_loss(model, x, y, batch_size=3), expected.detach())
    empty = predict(model, x[:0])
    assert empty.shape == (0,) and empty.dtype == torch.int64

    def boom(xb):
        raise RuntimeError("fails inside")

    with pytest.raises(RuntimeError, match="fails inside"):
        batched_eval(model, boom, x)
    assert model.training  # restored on error too
    with pytest.raises(ValueError, match="same first dimension"):
        batched_eval(model, lambda a, b: a, x, y[:3])


def test_the_default_evaluation_batch_depends_on_the_device():
    from mnemo_tutorial.evaluation.metrics import eval_batch_size

    assert eval_batch_size(torch.device("cpu")) == 256 and eval_batch_size(torch.device("cuda")) == 2048
    model = Recorder()
    predict(model, torch.randn(600, 1, 2, 2))
    assert [n for n, _, _ in model.calls] == [256, 256, 88]


def test_class_mask_and_sample_indices():
    from mnemo_tutorial.evaluation.metrics import class_mask, sample_indices

    y = torch.tensor([0, 1, 2, 1, 0, 2, 1])
    mask = class_mask(y, [1, 2])
    assert mask.tolist() == [False, True, True, True, False, True, True]
    every = sample_indices(mask, None, torch.Generator().manual_seed(3))
    assert sorted(every.tolist()) == [1, 2, 3, 5, 6]
    some = sample_indices(mask, 2, torch.Generator().manual_seed(3))
    assert some.tolist() == every[:2].tolist()  # the same draw, cut
    # the same indices as shuffling nonzero(mask) with the same generator (the baselines' way)
    idx = torch.nonzero(mask).flatten()
    assert every.tolist() == idx[torch.randperm(idx.numel(), generator=torch.Generator().manual_seed(3))].tolist()
    assert sample_indices(class_mask(y, [5]), 4, torch.Generator()).numel() == 0
