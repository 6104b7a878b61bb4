"""Model shapes, save/load round trip, and greedy CTC decoding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from basecall.config import ALPHABET, Config, ModelConfig
from basecall.decoder import MAX_QUALITY, greedy
from basecall.errors import ConfigError, ModelError
from basecall.model import Model, load_model, resolve_device, save_model


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(stride=1, cnn_channels=8, residual_blocks=2, rnn_layers=1, rnn_size=8),  # Chiron: no strided conv
        ModelConfig(stride=5, stride_kernel=15, cnn_channels=8, residual_blocks=1, rnn_layers=2, rnn_size=8),
        ModelConfig(stride=6, stride_kernel=9, cnn_channels=8, residual_blocks=0, rnn_layers=1, rnn_size=4),
    ],
)
def test_output_is_log_probabilities_with_one_timestep_per_stride(config: ModelConfig) -> None:
    model = Model(config).eval()
    chunksize = 60 * config.stride
    with torch.no_grad():
        out = model(torch.randn(3, 1, chunksize))
    assert out.shape == (chunksize // config.stride, 3, len(ALPHABET))
    assert torch.allclose(out.exp().sum(-1), torch.ones(out.shape[:2]), atol=1e-5)


def test_forget_gate_bias_starts_at_one() -> None:
    model = Model(ModelConfig(rnn_layers=2, rnn_size=7, cnn_channels=4, residual_blocks=1))
    for name, bias in model.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(bias[7:14] == 1.0)
        if name.startswith("bias_hh"):
            assert torch.all(bias[7:14] == 0.0)


def test_residual_block_structure_follows_chiron() -> None:
    block = Model(ModelConfig(stride=1, cnn_channels=8, residual_blocks=1, rnn_layers=1, rnn_size=4)).encoder[0]
    kernels = [m.kernel_size[0] for m in block.body if isinstance(m, torch.nn.Conv1d)]
    assert kernels == [1, 3, 1]
    assert [m.kernel_size[0] for m in block.shortcut if isinstance(m, torch.nn.Conv1d)] == [1]


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_save_and_load_round_trip(tmp_path, rnn_type: str) -> None:
    config = Config(model=ModelConfig(cnn_channels=8, residual_blocks=1, rnn_layers=1, rnn_size=8, rnn_type=rnn_type))
    config = config.check()
    model = Model(config.model).eval()
    assert isinstance(model.rnn, torch.nn.GRU if rnn_type == "gru" else torch.nn.LSTM)
    save_model(model, config, tmp_path / "m")
    assert f'rnn_type = "{rnn_type}"' in (tmp_path / "m" / "config.toml").read_text()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.toml", "weights.safetensors"]
    loaded = load_model(str(tmp_path / "m"))
    assert loaded.config == config and loaded.name == "m"
    x = torch.randn(2, 1, 500)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))


def test_unknown_rnn_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="rnn_type must be one of lstm, gru"):
        Config(model=ModelConfig(rnn_type="rnn")).check()


def test_model_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(ModelError, match="no such model"):
        load_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.toml"):
        load_model(str(tmp_path / "empty"))
    config = Config(model=ModelConfig(cnn_channels=8, residual_blocks=1, rnn_layers=1, rnn_size=8)).check()
    save_model(Model(config.model), config, tmp_path / "m")
    bigger = Config(model=ModelConfig(cnn_channels=16, residual_blocks=1, rnn_layers=1, rnn_size=8)).check()
    from basecall.config import save_config

    save_config(bigger, tmp_path / "m" / "config.toml")
    with pytest.raises(ModelError, match="do not load"):
        load_model(str(tmp_path / "m"))
    (tmp_path / "m" / "weights.safetensors").unlink()
    with pytest.raises(ModelError, match="missing weights"):
        load_model(str(tmp_path / "m"))
    (tmp_path / "m" / "config.toml").write_text("version = 1\n[model]\nstride = 'five'\n")
    with pytest.raises(ModelError, match="model.stride must be int"):
        load_model(str(tmp_path / "m"))


def test_device_names() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")


def _log_probs(paths: list[list[int]], confidence: float = 0.9) -> torch.Tensor:
    """(T, N, 5) log-probabilities whose argmax follows each path."""
    labels = torch.tensor(paths).T  # (T, N)
    probs = torch.full((*labels.shape, 5), (1 - confidence) / 4)
    probs.scatter_(2, labels[..., None], confidence)
    return probs.log()


def _collapse(path: list[int]) -> str:
    return "".join(ALPHABET[k] for k, _ in itertools.groupby(path) if k != 0)


def test_greedy_collapses_repeats_and_drops_blanks() -> None:
    paths = [[1, 1, 0, 1, 2, 2, 3, 0, 0, 4], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [4, 3, 2, 1, 1, 1, 0, 2, 0, 2]]
    moves, bases, quals = greedy(_log_probs(paths))
    assert moves.dtype == bases.dtype == quals.dtype == torch.uint8
    for row, path in enumerate(paths):
        m = moves[row].numpy().astype(bool)
        seq = "".join(ALPHABET[b] for b in bases[row].numpy()[m])
        assert seq == _collapse(path)
        assert not bases[row].numpy()[~m].any() and not quals[row].numpy()[~m].any()


def test_greedy_matches_brute_force_best_path_on_random_posteriors() -> None:
    torch.manual_seed(1)
    log_probs = torch.randn(12, 50, 5).log_softmax(-1)
    moves, bases, _ = greedy(log_probs)
    for n in range(50):
        best_path = log_probs[:, n].argmax(-1).tolist()
        m = moves[n].numpy().astype(bool)
        assert "".join(ALPHABET[b] for b in bases[n].numpy()[m]) == _collapse(best_path)


def test_quality_reflects_posterior_confidence() -> None:
    path = [[1, 0, 2, 0, 3, 0, 4, 0]]
    _, _, sure = greedy(_log_probs(path, confidence=0.999))
    _, _, unsure = greedy(_log_probs(path, confidence=0.5))
    sure_q = sure[0][sure[0] > 0].numpy()
    unsure_q = unsure[0][unsure[0] > 0].numpy()
    assert np.all(sure_q == 30)  # -10 log10(0.001)
    assert np.all(unsure_q == 3)  # -10 log10(0.5)
    _, _, certain = greedy(_log_probs(path, confidence=1.0 - 1e-9))
    assert certain.max() == MAX_QUALITY
