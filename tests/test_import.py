"""`basecall models import deepnano-blitz`: published networks in our model family, reproduced exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from basecall.cli import cli
from basecall.config import load_config
from basecall.errors import ExitCode
from basecall.model import load_model
from tests.conftest import shared_data

BLITZ = ("rnn48", "rnn56", "rnn64", "rnn80", "rnn96")


@pytest.fixture(scope="module")
def reference_logits() -> dict[str, np.ndarray]:
    with np.load(shared_data("r941_deepnano_blitz/reference_logits.npz")) as archive:
        return dict(archive)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", BLITZ)
def test_imported_network_reproduces_the_reference_logits(tmp_path, name: str, reference_logits) -> None:
    """The reference was computed in float64 by an independent port of DeepNano-blitz's equations; our network in
    float64 matches it to a few 1e-6 (measured 1.2-3.7e-6), in float32 to ~1e-4 (520 recurrent steps)."""
    weights = shared_data(f"r941_deepnano_blitz/weights/{name}.txt")
    result = CliRunner().invoke(cli, ["models", "import", "deepnano-blitz", str(weights), "-o", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    model = load_model(str(tmp_path / name)).model
    chunks = torch.from_numpy(reference_logits["chunks"]).unsqueeze(1)  # (4, 1, 1560)
    expected = reference_logits[f"logits_{name}"]  # (4, 520, 5)
    with torch.inference_mode():
        in_float64 = model.double().logits(chunks.double()).permute(1, 0, 2).numpy()  # (4, 520, 5)
        in_float32 = model.float().logits(chunks).permute(1, 0, 2).numpy()
    assert in_float64.shape == expected.shape
    assert np.abs(in_float64 - expected).max() <= 1e-5
    assert np.abs(in_float32 - expected).max() <= 3e-4


@pytest.mark.shared_data
def test_imported_directory_is_a_complete_model_with_its_licence(tmp_path) -> None:
    weights = shared_data("r941_deepnano_blitz/weights/rnn48.txt")
    CliRunner().invoke(cli, ["models", "import", "deepnano-blitz", str(weights), "-o", str(tmp_path / "m")])
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["LICENSE", "MODEL_CARD.md", "config.toml", "weights.safetensors"]
    assert "Vladimir Boza" in (tmp_path / "m" / "LICENSE").read_text()
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert "DeepNano-blitz" in card and "MIT" in card and "rnn48.txt" in card
    config = load_config(tmp_path / "m" / "config.toml")
    assert (config.info.chemistry, config.info.sample_rate_hz, config.model.stride) == ("r9.4.1", 4000, 3)
    assert config.model.rnn_layout == "alternating" and config.model.stem == "pooled"
    assert sum(p.numel() for p in load_model(str(tmp_path / "m")).model.parameters()) == 59_909  # 24H² + 96H + 5


def test_a_file_that_is_not_deepnano_blitz_weights_is_one_line_error(tmp_path) -> None:
    bad = tmp_path / "rnn48.txt"
    bad.write_text("66 48\n1 2 3\n")
    result = CliRunner().invoke(cli, ["models", "import", "deepnano-blitz", str(bad), "-o", str(tmp_path / "m")])
    assert result.exit_code == ExitCode.ERROR
    assert len(result.output.strip().splitlines()) == 1
    assert str(bad) in result.output
    assert not (tmp_path / "m").exists()
