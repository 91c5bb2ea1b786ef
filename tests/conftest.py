import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("BIOTAG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: the shared corpora are not part of the project."""
    root = _shared_data()
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set BIOTAG_DATA); data-dependent test skipped")
    return root


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    """A pretrained MiniLM-L6 directory, or skip."""
    root = Path(os.environ.get("BIOTAG_ENCODERS", Path.home() / ".cache" / "biotag" / "encoders"))
    d = root / "minilm-l6"
    if not (d / "config.json").is_file():
        pytest.skip(f"encoder minilm-l6 not found under {root} (run ../shared/tools/fetch-encoders.sh)")
    return d
