import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def mirror_available() -> bool:
    m = os.environ.get("MNEMO_MIRROR")
    return bool(m) and (Path(m) / "mnist").exists()
