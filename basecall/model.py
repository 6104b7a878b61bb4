"""The network: input features → a first convolution (strided, or pooled) → Chiron residual blocks → recurrent
layers (bidirectional LSTMs or GRUs, or GRUs alternating in direction) → linear → log-softmax.

One family holds our Chiron-style networks and networks imported from published weights (DeepNano-blitz:
`basecall.importing`); `ModelConfig` says which parts a model has. A model directory holds ``config.toml`` and
``weights.safetensors`` (loaded without executing code). The strided convolution comes first so the residual blocks,
≈ 70% of the forward time, run on `stride`× fewer timesteps; with ``stride = 1`` there is none, as in Chiron.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from basecall.config import ALPHABET, Config, ModelConfig, load_config, save_config
from basecall.errors import ConfigError, ModelError, one_line

WEIGHTS = "weights.safetensors"


class ResidualBlock(nn.Module):
    """Chiron's residual unit: 1×1 shortcut branch + 1×1 → 3 → 1×1 bottleneck branch, batch norm, ReLU."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.shortcut = nn.Sequential(nn.Conv1d(in_channels, channels, 1, bias=False), nn.BatchNorm1d(channels))
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, channels, 1, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 1, bias=False),
            nn.BatchNorm1d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C_in, T) → (N, C, T)
        return torch.relu(self.shortcut(x) + self.body(x))


class SignalFeatures(nn.Module):
    """(N, 1, n_samples) normalised signal → (N, C_in, n_samples): clipped to ±clip (0: not), with signal² as a
    second channel if asked (DeepNano-blitz's input)."""

    def __init__(self, clip: float, squared: bool):
        super().__init__()
        self.clip, self.squared = clip, squared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.clip:
            x = x.clamp(-self.clip, self.clip)
        return torch.cat([x, x * x], dim=1) if self.squared else x  # (N, C_in, n_samples)


class AlternatingRNN(nn.Module):
    """Unidirectional recurrent layers stacked in alternating direction, forward first, each reading the previous
    layer's output (DeepNano-blitz's "BiGRU" pairs): (T, N, C) → (T, N, size). The state starts at 0 per chunk."""

    def __init__(self, rnn: type[nn.Module], in_channels: int, size: int, n_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(rnn(in_channels if i == 0 else size, size) for i in range(n_layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        for i, layer in enumerate(self.layers):
            backward = i % 2 == 1
            x, _ = layer(x.flip(0) if backward else x)  # (T, N, size), in this layer's reading order
            if backward:
                x = x.flip(0)
        return x, None


class Model(nn.Module):
    """(N, 1, n_samples) normalised signal → (n_samples / stride, N, 5) log-probabilities over blank + ACGT.

    features (clip, signal²) → stem (strided conv + BN + ReLU, or conv → max-pool → tanh) → residual blocks →
    recurrent layers (bidirectional, or alternating in direction) → linear.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.features = SignalFeatures(config.signal_clip, config.signal_squared)
        layers: list[nn.Module] = []
        channels = config.in_channels
        k = config.stride_kernel
        if config.stem == "pooled":
            layers += [
                nn.Conv1d(channels, config.cnn_channels, k, padding=k // 2),
                nn.MaxPool1d(config.stride),
                nn.Tanh(),
            ]
            channels = config.cnn_channels
        elif config.stride > 1:
            layers += [
                nn.Conv1d(channels, config.cnn_channels, k, stride=config.stride, padding=k // 2, bias=False),
                nn.BatchNorm1d(config.cnn_channels),
                nn.ReLU(),
            ]
            channels = config.cnn_channels
        for _ in range(config.residual_blocks):
            layers.append(ResidualBlock(channels, config.cnn_channels))
            channels = config.cnn_channels
        self.encoder = nn.Sequential(*layers)
        rnn = nn.GRU if config.rnn_type == "gru" else nn.LSTM
        if config.rnn_layout == "alternating":
            self.rnn = AlternatingRNN(rnn, channels, config.rnn_size, config.rnn_layers)
            rnn_out = config.rnn_size
        else:
            self.rnn = rnn(channels, config.rnn_size, num_layers=config.rnn_layers, bidirectional=True)
            rnn_out = 2 * config.rnn_size
        self.linear = nn.Linear(rnn_out, len(ALPHABET))
        self._init_forget_gate_bias()

    @property
    def stride(self) -> int:
        return self.config.stride

    def _init_forget_gate_bias(self) -> None:
        """Forget-gate bias 1 (Jozefowicz et al. 2015). PyTorch orders gates i, f, g, o; the two biases add up."""
        if self.config.rnn_type != "lstm":
            return
        size = self.config.rnn_size
        for name, bias in self.rnn.named_parameters():
            leaf = name.rsplit(".", 1)[-1]  # bias_ih_l0, or layers.0.bias_ih_l0 when alternating
            if leaf.startswith("bias_"):
                with torch.no_grad():
                    bias[size : 2 * size] = 1.0 if leaf.startswith("bias_ih") else 0.0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, n_samples) → (T', N, 5) scores before the softmax."""
        h = self.encoder(self.features(x))  # (N, C, T')
        h = h.permute(2, 0, 1)  # (T', N, C)
        h, _ = self.rnn(h)  # (T', N, 2 * rnn_size), or (T', N, rnn_size) alternating
        return self.linear(h)  # (T', N, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.logits(x), dim=-1)  # (T', N, 5)


@dataclass(frozen=True)
class LoadedModel:
    name: str
    path: Path
    config: Config
    model: Model


def shipped_models() -> dict[str, Path]:
    """Model directories shipped with the package (the repository's ``models/``), by name."""
    try:
        root = Path(str(resources.files("basecall.models")))
    except ModuleNotFoundError:
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.toml").is_file()}


def resolve_model(name_or_dir: str) -> Path:
    """A model directory given as a path, or the name of a shipped model."""
    path = Path(name_or_dir)
    if path.is_dir():
        if not (path / "config.toml").is_file():
            raise ModelError(f"{path}: not a model directory (no config.toml)")
        return path
    shipped = shipped_models()
    if name_or_dir in shipped:
        return shipped[name_or_dir]
    known = ", ".join(shipped) or "none shipped yet"
    raise ModelError(f"{name_or_dir}: no such model directory or shipped model (shipped: {known})")


def load_model(name_or_dir: str, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a model directory (or shipped model) onto `device`, in eval mode."""
    from safetensors.torch import load_file

    path = resolve_model(name_or_dir)
    try:
        config = load_config(path / "config.toml")
    except ConfigError as e:
        raise ModelError(str(e)) from e
    model = Model(config.model)
    weights = path / WEIGHTS
    try:
        state = load_file(weights, device="cpu")
        model.load_state_dict(state)
    except FileNotFoundError as e:
        raise ModelError(f"{weights}: missing weights file") from e
    except Exception as e:
        raise ModelError(f"{weights}: weights do not load into the configured network: {one_line(e)}") from e
    return LoadedModel(name=path.name, path=path, config=config, model=model.to(device).eval())


def save_model(model: Model, config: Config, directory: str | Path) -> Path:
    """Write ``config.toml`` and ``weights.safetensors`` into `directory` (created if needed), each under a
    temporary name first, so a kill never leaves a half-written model."""
    from safetensors.torch import save_file

    from basecall.atomic import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS) as weights:
        save_file(state, weights)
        weights.chmod(0o644)  # safetensors creates files readable by their owner only
    with atomic_path(directory / "config.toml") as config_path:
        save_config(config, config_path)
    return directory


def resolve_devices(name: str, cpu_threads: int | None = None) -> list[torch.device]:
    """The devices to run model replicas on, one thread each: `resolve_device`, plus 'cuda:all' (every visible GPU).

    On CPU, `cpu_threads` replicas (default: the cores this process may use), each single-threaded: this sets
    torch's intra-op threads to 1 for the process. On a 2-core machine two single-threaded replicas with batches of
    8 (greedy) called the lambda reads 1.6× faster than one replica on two OpenMP threads with batches of 32 (666 k
    vs 425 k samples/s), and 4.5× faster with a training run beside them (380 k vs 84 k): the LSTMs' small matrix
    products cost more to share out than they take, and an OpenMP team stalls whenever another process holds one of
    its cores.
    """
    if name != "cuda:all":
        device = resolve_device(name)
        if device.type != "cpu":
            return [device]
        torch.set_num_threads(1)
        return [device] * (cpu_threads or len(os.sched_getaffinity(0)))
    if not torch.cuda.is_available():
        raise ConfigError("device 'cuda:all' asked for, but CUDA is not available here")
    return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]


def forward_dtype(device: torch.device, precision: str = "auto", model: nn.Module | None = None) -> torch.dtype | None:
    """The reduced precision a basecalling forward pass runs in (autocast), or None for fp32.

    'auto': fp16 on CUDA; bf16 on a CPU with native bf16 (AVX512-BF16 or AMX) unless `model` has a GRU, else fp32.
    On one core of this machine's AMD EPYC, bf16 ran the forward pass of the LSTM models 1.4-2.0× faster than fp32
    (r9.4.1-small: 781 k vs 400 k samples/s) but a GRU one 2× slower (222 k vs 434 k; oneDNN has no bf16 GRU path
    there); on CPUs without native bf16 it is emulated. 'fp32': always fp32 (the training arithmetic).
    """
    if precision == "fp32":
        return None
    if precision != "auto":
        raise ConfigError(f"unknown precision {precision!r} (use auto or fp32)")
    if device.type == "cuda":
        return torch.float16
    native_bf16 = any(
        getattr(torch.cpu, name, bool)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    has_gru = model is not None and any(isinstance(m, nn.GRU) for m in model.modules())
    return torch.bfloat16 if native_bf16 and not has_gru else None


def resolve_device(name: str) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    return device
