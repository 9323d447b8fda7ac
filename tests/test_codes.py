import pytest
import torch

from mnemo_tutorial.core.codes import CodeMixDataset, MnemonicCodes


def test_random_codes_are_seeded_and_shaped():
    a = MnemonicCodes.random(10, (1, 28, 28), seed=3)
    b = MnemonicCodes.random(10, (1, 28, 28), seed=3)
    c = MnemonicCodes.random(10, (1, 28, 28), seed=4)
    assert a.codes.shape == (10, 1, 28, 28)
    assert torch.equal(a.codes, b.codes)
    assert not torch.equal(a.codes, c.codes)
    assert 0.0 <= float(a.codes.min()) and float(a.codes.max()) < 1.0


def test_normal_codes_differ_from_uniform():
    n = MnemonicCodes.random(5, (3, 4, 4), seed=0, distribution="normal")
    assert float(n.codes.min()) < 0.0  # a normal draw of 240 values has negatives
    assert n.distribution == "normal"


@pytest.mark.parametrize("kwargs, word", [
    (dict(num_classes=0, shape=(2,)), "num_classes"),
    (dict(num_classes=3, shape=(2,), distribution="laplace"), "distribution"),
])
def test_bad_code_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        MnemonicCodes.random(**kwargs)


def test_state_dict_round_trip():
    a = MnemonicCodes.random(4, (2, 3), seed=7, distribution="normal")
    b = MnemonicCodes.from_state_dict(a.state_dict())
    assert torch.equal(a.codes, b.codes) and b.distribution == "normal" and b.seed == 7


def test_mix_batch_swaps_with_probability_t_mix():
    codes = MnemonicCodes.random(3, (2,), seed=0)
    x = torch.full((20000, 2), -1.0)
    y = torch.randint(0, 3, (20000,))
    out, mask = codes.mix_batch(x, y, 0.3, torch.Generator().manual_seed(0))
    assert abs(mask.float().mean().item() - 0.3) < 0.02
    assert torch.equal(out[mask], codes.codes[y[mask]])
    assert torch.all(out[~mask] == -1.0)
    assert torch.all(x == -1.0)  # input untouched
    _, none = codes.mix_batch(x, y, 0.0)
    assert not none.any()
    with pytest.raises(ValueError, match="t_mix"):
        codes.mix_batch(x, y, 1.5)


def test_dataset_wrapper_is_reproducible_and_swaps():
    codes = MnemonicCodes.random(2, (3,), seed=1)
    base = torch.utils.data.TensorDataset(torch.zeros(500, 3), torch.arange(500) % 2)
    ds = codes.mix_into(base, t_mix=0.5, seed=9)
    assert isinstance(ds, CodeMixDataset) and len(ds) == 500
    swapped = [i for i in range(500) if ds.is_code(i)]
    assert 180 < len(swapped) < 320
    x, y = ds[swapped[0]]
    assert torch.equal(x, codes.codes[y])
    again = codes.mix_into(base, t_mix=0.5, seed=9)
    assert [again.is_code(i) for i in range(500)] == [ds.is_code(i) for i in range(500)]
    ds.set_epoch(1)
    assert [ds.is_code(i) for i in range(500)] != [again.is_code(i) for i in range(500)]
    with pytest.raises(ValueError, match="t_mix"):
        codes.mix_into(base, t_mix=-0.1)


def test_dataset_wrapper_draws_do_not_use_pythons_hash(monkeypatch):
    # the per-item draw used Python's hash(); it now comes from BLAKE2b of (seed, epoch, index),
    # so these draws are the same on every platform and Python implementation
    import mnemo_tutorial.core.codes as codes_module

    def no_hash(value):
        raise AssertionError("is_code must not depend on hash()")

    codes = MnemonicCodes.random(2, (3,), seed=1)
    ds = codes.mix_into(torch.utils.data.TensorDataset(torch.zeros(40, 3), torch.arange(40) % 2), t_mix=0.5, seed=9)
    monkeypatch.setattr(codes_module, "hash", no_hash, raising=False)  # shadows the builtin there
    assert [i for i in range(40) if ds.is_code(i)] == [0, 2, 3, 4, 6, 10, 14, 16, 18, 20, 24, 28, 29, 31, 34, 39]
