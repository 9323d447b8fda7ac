"""Small helpers: atomic writes, isolated random state."""
import os
import stat

import pytest
import torch

from mnemo_tutorial.utils import atomic_path, atomic_write_text, isolated_rng


def test_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.json", "{}")
        (tmp_path / "plain.json").write_text("{}")
    finally:
        os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "report.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == 0o644


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def _no_cuda_seeding(monkeypatch):
    calls = []
    for name in ("manual_seed", "manual_seed_all", "seed", "seed_all"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, _n=name, **k: calls.append(_n))
    return calls


def test_isolated_rng_requests_no_cuda_seeding_for_the_cpu(monkeypatch):
    """torch.manual_seed would seed (or queue seeding of) every CUDA device, which fork_rng
    with no devices never restores: the CPU block must not ask for any CUDA seeding."""
    calls = _no_cuda_seeding(monkeypatch)
    before = torch.random.get_rng_state()
    with isolated_rng(7, "cpu") as gen:
        a = torch.rand(3)
        assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=torch.Generator().manual_seed(7)))
    with isolated_rng(7):
        b = torch.rand(3)
    assert calls == []
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CPU test above "
                    "checks that no CUDA seeding is requested)")
def test_library_seeding_leaves_every_cuda_generator_as_it_was():
    states = [torch.cuda.get_rng_state(d) for d in range(torch.cuda.device_count())]
    with isolated_rng(3):
        torch.rand(2)
    with isolated_rng(3, "cuda:0"):
        torch.rand(2, device="cuda:0")
    after = [torch.cuda.get_rng_state(d) for d in range(torch.cuda.device_count())]
    assert all(torch.equal(a, b) for a, b in zip(states, after))
