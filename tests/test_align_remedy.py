"""scripts/align_remedy.py: the alignment loss on known cases, and the training loop pulling a
misplaced code toward its class on a small synthetic problem (the real runs train on MNIST
and are not part of the test suite)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
_spec = importlib.util.spec_from_file_location("align_remedy", ROOT / "scripts" / "align_remedy.py")
align_remedy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(align_remedy)

from mnemo_tutorial.core.alignment import measure_alignment  # noqa: E402
from mnemo_tutorial.core.codes import MnemonicCodes  # noqa: E402
from mnemo_tutorial.training.profiles import TrainConfig  # noqa: E402


def test_the_alignment_loss_is_zero_at_the_class_means_and_one_when_orthogonal():
    h_real = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 0, 1])
    at_means = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    assert float(align_remedy.alignment_loss(at_means, h_real, y, 2)) == pytest.approx(0.0, abs=1e-6)
    swapped = at_means.flip(0)
    assert float(align_remedy.alignment_loss(swapped, h_real, y, 2)) == pytest.approx(1.0, abs=1e-6)
    # a class absent from the batch does not count
    only_0 = align_remedy.alignment_loss(swapped, h_real[:2], y[:2], 2)
    assert float(only_0) == pytest.approx(1.0, abs=1e-6)


def test_training_with_the_term_moves_misplaced_codes_to_their_classes():
    g = torch.Generator().manual_seed(0)
    protos = torch.rand(3, 16, generator=g)
    y = torch.arange(300) % 3
    x = (protos[y] + 0.05 * torch.randn(300, 16, generator=g)).clamp(0, 1)
    codes = MnemonicCodes(protos.roll(1, dims=0))  # each code looks like another class
    config = TrainConfig(epochs=4, optimizer="adamw", lr=1e-2, t_mix=0.2)
    cosines = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3))
        seconds = align_remedy.train(model, codes, x, y, config, weight, seed=0, epochs=4)
        assert seconds > 0 and not model.training
        cosines[weight] = min(measure_alignment(model, codes.codes, x, y).cosine)
    assert cosines[1.0] > 0.9 and cosines[1.0] > cosines[0.0] + 0.2, cosines


def test_the_committed_experiment_names_its_command_and_covers_both_weights():
    result = json.loads((ROOT / "mnemo_tutorial" / "results" / "align_remedy.json").read_text())
    assert result["command"].startswith("python scripts/align_remedy.py")
    for key in ("package_version", "package_source_hash", "date"):
        assert result[key]
    keys = {(r["arch"], r["weight"], r["seed"]) for r in result["runs"]}
    assert {(a, w) for a, w, _ in keys} == {(a, w) for a in ("res_gn_cnn", "bn_cnn") for w in (0.0, 1.0)}
    for r in result["runs"]:
        for step in ("all", "head"):
            s = r["forget"][step]["summary"]
            assert s["met"] + s["refused"] + s["silent"] + s["reported"] == 10, (r["arch"], step)
