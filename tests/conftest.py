import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def data_dir() -> Path:
    return DATA


def _make_models(root: Path) -> Path:
    """Small, randomly initialised models in the shipped format (fast to build and run)."""
    from gancomp.training.model import ModelConfig
    from gancomp.training.trainer import init_model_folder

    small = dict(channels=16, latent_channels=16, disc_channels=8)
    init_model_folder(
        ModelConfig(category="airplane", num_down=3, **small), root / "airplane", seed=1
    )
    init_model_folder(ModelConfig(category="flower", num_down=4, **small), root / "flower", seed=2)
    init_model_folder(ModelConfig(category="ship", num_down=3, **small), root / "ship", seed=3)
    return root


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return _make_models(tmp_path_factory.mktemp("models"))
