import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Linking indexes are built on first use when dictionaries are found (../shared/data
# here): never as a side effect of a test run; tests of that build switch it on.
os.environ.setdefault("BIOTAG_AUTO_INDEX", "0")


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


@pytest.fixture(scope="session")
def toy_trained(tmp_path_factory):
    """A tiny model that learned "a capitalised word after 'the' is a Thing", trained once
    per test session: ``(model_dir, corpus_dir)``."""
    from helpers import make_tiny_encoder, write_toy_corpus

    from biotag.training import TrainConfig, train

    root = tmp_path_factory.mktemp("toy-model")
    encoder = make_tiny_encoder(root / "encoder")
    corpus = write_toy_corpus(root / "toy", n_train=100, n_devel=20)
    config = TrainConfig(
        corpora=[str(corpus)], output_dir=str(root / "model"), encoder=str(encoder), unify_types=False,
        epochs=10, lr=3e-3, batch_size=8, max_length=32, threads=1, patience=0, checkpoint_every=0,
        dictionary_features=False, shape_features=False,  # the plain model; features have their own tests
    )
    return train(config), corpus
