"""Model directory config: TOML ⇄ frozen dataclasses, parsed once and checked when loaded.

Layout of ``config.toml`` (``version = 1``)::

    version = 1
    [info]        # what the model is for: chemistry, sample_rate_hz, description
    [model]       # architecture (ModelConfig)
    [basecaller]  # run defaults (BasecallerConfig); command-line flags override only this section
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from basecall.errors import ConfigError

CONFIG_VERSION = 1
ALPHABET = "NACGT"  # CTC classes: blank (N) then bases
RNN_TYPES = ("lstm", "gru")


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes. See `basecall.model.Model` for how they are used."""

    stride: int = 5  # downsampling of the strided first convolution; 1 = none (as Chiron)
    stride_kernel: int = 15  # kernel of the strided convolution, odd
    cnn_channels: int = 256  # width of the residual blocks
    residual_blocks: int = 3  # Chiron: 5
    rnn_layers: int = 3  # bidirectional recurrent layers
    rnn_size: int = 100  # hidden units per direction
    rnn_type: str = "lstm"  # "lstm" or "gru" (3 gates instead of 4: about 3/4 of the recurrent cost)

    def check(self) -> None:
        for name in ("stride", "stride_kernel", "cnn_channels", "rnn_layers", "rnn_size"):
            _require(getattr(self, name) >= 1, f"model.{name} must be >= 1")
        _require(self.residual_blocks >= 0, "model.residual_blocks must be >= 0")
        _require(self.stride_kernel % 2 == 1, "model.stride_kernel must be odd")
        _require(self.rnn_type in RNN_TYPES, f"model.rnn_type must be one of {', '.join(RNN_TYPES)}")


@dataclass(frozen=True)
class BasecallerConfig:
    """Run settings, in samples.

    Stitching is exact when chunksize and overlap are multiples of the model stride and the overlap spans at least
    two timesteps: then each chunk boundary falls at least one timestep inside the next chunk, where that chunk
    knows whether the label there continues a base from the timestep before.
    """

    chunksize: int = 4000
    overlap: int = 500
    batch_size: int = 32  # chunks per forward pass on a GPU (on CPU the CLI uses decoder.cpu_batch_size)
    min_qscore: float = 0.0  # reads with a lower mean qscore are filtered
    qscale: float = 1.0  # per-base Phred written = qscale * decoder Phred + qbias (fitted by `evaluate --qscores`)
    qbias: float = 0.0

    def check(self, stride: int) -> None:
        _require(self.chunksize > 0, "basecaller.chunksize must be > 0")
        _require(
            self.chunksize % stride == 0 and self.overlap % stride == 0,
            f"basecaller.chunksize ({self.chunksize}) and overlap ({self.overlap}) must be multiples of "
            f"the model stride ({stride}) so that chunks stitch exactly",
        )
        _require(
            2 * stride <= self.overlap < self.chunksize,
            f"basecaller.overlap ({self.overlap}) must be at least two model timesteps ({2 * stride} samples) "
            f"and less than chunksize ({self.chunksize})",
        )
        _require(self.batch_size >= 1, "basecaller.batch_size must be >= 1")
        _require(self.qscale > 0, "basecaller.qscale must be > 0")
        _require(self.min_qscore >= 0, "basecaller.min_qscore must be >= 0")


@dataclass(frozen=True)
class InfoConfig:
    chemistry: str = "r9.4.1"
    sample_rate_hz: int = 4000
    description: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (stored in checkpoints and model cards, not in a model's config.toml)."""

    epochs: int = 20
    batch_size: int = 32  # chunks per step
    lr: float = 2e-3  # peak learning rate, reached after warm-up, then cosine decay to lr / 100
    warmup_steps: int = 300
    weight_decay: float = 0.01
    grad_clip: float = 2.0  # max gradient norm
    seed: int = 1
    valid_fraction: float = 0.1  # of labelled reads held out for validation when no validation set is given

    def check(self) -> TrainConfig:
        _require(self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1")
        _require(self.lr > 0 and self.grad_clip > 0 and self.warmup_steps >= 0, "lr, grad_clip must be > 0")
        _require(0 <= self.valid_fraction < 1, "valid_fraction must be in [0, 1)")
        return self


@dataclass(frozen=True)
class Config:
    """A model directory's whole config."""

    info: InfoConfig = InfoConfig()
    model: ModelConfig = ModelConfig()
    basecaller: BasecallerConfig = BasecallerConfig()
    version: int = CONFIG_VERSION

    def check(self) -> Config:
        self.model.check()
        self.basecaller.check(self.model.stride)
        return self

    def with_basecaller(self, **overrides: Any) -> Config:
        """Override run settings (e.g. from the command line; None means keep) and re-check."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, basecaller=replace(self.basecaller, **changes)).check()

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, **{k: asdict(getattr(self, k)) for k in ("info", "model", "basecaller")}}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _section(cls: type, data: Any, name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(unknown)}")
    values = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        expected = float if isinstance(default, float) else type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"{name}.{key} must be {expected.__name__}, got {value!r}")
        values[key] = value
    return cls(**values)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Parse and check a config table. Raises ConfigError naming the offending key."""
    version = data.get("version")
    if version != CONFIG_VERSION:
        raise ConfigError(f"unsupported config version {version!r} (this basecall reads version {CONFIG_VERSION})")
    unknown = sorted(set(data) - {"version", "info", "model", "basecaller"})
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}")
    return Config(
        info=_section(InfoConfig, data.get("info", {}), "info"),
        model=_section(ModelConfig, data.get("model", {}), "model"),
        basecaller=_section(BasecallerConfig, data.get("basecaller", {}), "basecaller"),
        version=version,
    ).check()


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def save_config(config: Config, path: str | Path) -> None:
    import tomli_w

    Path(path).write_text(tomli_w.dumps(config.to_dict()))
