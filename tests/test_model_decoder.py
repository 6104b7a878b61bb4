"""Model shapes, save/load round trip, and greedy CTC decoding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dataclasses import replace

from basecall.config import ALPHABET, BasecallerConfig, Config, ModelConfig
from basecall.decoder import MAX_QUALITY, greedy
from basecall.errors import ConfigError, ModelError
from basecall.model import Model, load_model, resolve_device, save_model

# DeepNano-blitz's shape (small): features (x, x²), conv → max-pool 3 → tanh, GRUs alternating in direction
BLITZ_LIKE = ModelConfig(
    stride=3, stride_kernel=33, cnn_channels=6, residual_blocks=0, rnn_layers=4, rnn_size=6, rnn_type="gru",
    signal_clip=2.5, signal_squared=True, stem="pooled", rnn_layout="alternating",
)


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(stride=1, cnn_channels=8, residual_blocks=2, rnn_layers=1, rnn_size=8),  # Chiron: no strided conv
        ModelConfig(stride=5, stride_kernel=15, cnn_channels=8, residual_blocks=1, rnn_layers=2, rnn_size=8),
        ModelConfig(stride=6, stride_kernel=9, cnn_channels=8, residual_blocks=0, rnn_layers=1, rnn_size=4),
        BLITZ_LIKE,
        replace(BLITZ_LIKE, stem="strided", residual_blocks=1, rnn_type="lstm", signal_squared=False),
    ],
)
def test_output_is_log_probabilities_with_one_timestep_per_stride(config: ModelConfig) -> None:
    model = Model(config).eval()
    chunksize = 60 * config.stride
    with torch.no_grad():
        out = model(torch.randn(3, 1, chunksize))
    assert out.shape == (chunksize // config.stride, 3, len(ALPHABET))
    assert torch.allclose(out.exp().sum(-1), torch.ones(out.shape[:2]), atol=1e-5)


def test_features_clip_the_signal_and_add_its_square() -> None:
    model = Model(replace(BLITZ_LIKE, signal_clip=2.5))
    x = torch.tensor([[[-4.0, -1.0, 0.5, 3.0]]])  # (1, 1, 4)
    expected = torch.tensor([[[-2.5, -1.0, 0.5, 2.5], [6.25, 1.0, 0.25, 6.25]]])
    assert torch.equal(model.features(x), expected)
    assert torch.equal(Model(ModelConfig()).features(x), x)  # the default: the signal as it is


def test_pooled_stem_is_conv_then_max_pool_by_the_stride_then_tanh() -> None:
    stem = Model(BLITZ_LIKE).encoder
    assert [type(m) for m in stem] == [torch.nn.Conv1d, torch.nn.MaxPool1d, torch.nn.Tanh]
    assert stem[0].stride == (1,) and stem[0].in_channels == 2 and stem[1].kernel_size == BLITZ_LIKE.stride


def test_alternating_layers_read_forward_then_backward_each_over_the_last() -> None:
    """Layer 1 runs forward in time (its output at t sees only the input up to t); layer 2 runs backward over
    layer 1's output (its output at t sees the input from t on, through layer 1: so all of it)."""
    torch.manual_seed(0)
    one = Model(replace(BLITZ_LIKE, rnn_layers=1)).eval()
    two = Model(replace(BLITZ_LIKE, rnn_layers=2)).eval()
    h = torch.randn(20, 2, BLITZ_LIKE.cnn_channels)  # (T, N, C)
    changed = h.clone()
    changed[15:] += 1.0  # the input from timestep 15 on
    with torch.no_grad():
        for model, unchanged_until in ((one, 15), (two, 0)):
            before, after = model.rnn(h)[0], model.rnn(changed)[0]  # (T, N, H)
            differs = (before - after).abs().amax(dim=(1, 2)) > 0  # (T,)
            assert not differs[:unchanged_until].any() and differs[unchanged_until:].all()
    only_backward = two.rnn.layers[1]
    with torch.no_grad():  # layer 2 is a plain GRU over the time-reversed output of layer 1
        first, _ = two.rnn.layers[0](h)
        expected = only_backward(first.flip(0))[0].flip(0)
        assert torch.allclose(two.rnn(h)[0], expected)


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


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "gru-alternating"])
def test_save_and_load_round_trip(tmp_path, rnn_type: str) -> None:
    if rnn_type == "gru-alternating":
        config = Config(model=BLITZ_LIKE, basecaller=BasecallerConfig(chunksize=3000, overlap=300))
    else:
        config = Config(model=ModelConfig(cnn_channels=8, residual_blocks=1, rnn_layers=1, rnn_size=8, rnn_type=rnn_type))
    config = config.check()
    model = Model(config.model).eval()
    rnn_type = config.model.rnn_type
    layers = model.rnn.layers if config.model.rnn_layout == "alternating" else [model.rnn]
    assert all(isinstance(layer, torch.nn.GRU if rnn_type == "gru" else torch.nn.LSTM) for layer in layers)
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
    with pytest.raises(ConfigError, match="stem must be one of strided, pooled"):
        Config(model=ModelConfig(stem="dilated")).check()
    with pytest.raises(ConfigError, match="rnn_layout must be one of bidirectional, alternating"):
        Config(model=ModelConfig(rnn_layout="stacked")).check()


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
