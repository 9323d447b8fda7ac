"""Shared fixtures. Tests never write into the repository's ``data/``: unless ``MNEMO_DATA``
already names a folder elsewhere, the whole session uses a temporary data root."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _data_root_outside_the_repository(tmp_path_factory):
    old = os.environ.get("MNEMO_DATA")
    inside = old is not None and Path(old).resolve().is_relative_to((REPO / "data").resolve())
    if old is None or inside:
        os.environ["MNEMO_DATA"] = str(tmp_path_factory.mktemp("mnemo_data"))
    yield
    if old is None:
        os.environ.pop("MNEMO_DATA", None)
    else:
        os.environ["MNEMO_DATA"] = old


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def repo() -> Path:
    """The repository's root folder."""
    return REPO


@pytest.fixture
def mnist_mirror() -> Path:
    """The offline mirror named by ``MNEMO_MIRROR`` when it holds MNIST; the test is skipped otherwise."""
    m = os.environ.get("MNEMO_MIRROR")
    if not m or not (Path(m) / "mnist").exists():
        pytest.skip("needs MNEMO_MIRROR with MNIST")
    return Path(m)
