"""Shared fixtures: real data from ../shared/data (skipped when absent, failing under CI=true) and a tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("BASECALL_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skip the test when it is missing, fail when CI=true."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real data not found: {path} (a fresh clone has no ../shared/data)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained small model directory (stride 5, chunks of 1000 samples): real code path, fast on CPU."""
    import torch

    from basecall.config import BasecallerConfig, Config, ModelConfig
    from basecall.model import Model, save_model

    torch.manual_seed(0)
    config = Config(
        model=ModelConfig(stride=5, stride_kernel=15, cnn_channels=16, residual_blocks=1, rnn_layers=1, rnn_size=16),
        basecaller=BasecallerConfig(chunksize=1000, overlap=100, batch_size=8),
    ).check()
    return save_model(Model(config.model), config, tmp_path_factory.mktemp("models") / "tiny")
