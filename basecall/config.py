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
STEMS = ("strided", "pooled")
RNN_LAYOUTS = ("bidirectional", "alternating")


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
    # The rest holds networks shaped like DeepNano-blitz (imported with `basecall models import`); defaults = Chiron-like.
    signal_clip: float = 0.0  # clip the normalised signal to ±signal_clip first; 0 = no clipping
    signal_squared: bool = False  # feed (signal, signal²) as two input channels instead of the signal alone
    stem: str = "strided"  # "strided": conv with stride + batch norm + ReLU (none at stride 1);
    #                         "pooled": conv (stride 1, bias) → max-pool by `stride` → tanh
    rnn_layout: str = "bidirectional"  # "bidirectional": each layer both directions, outputs concatenated;
    #                                     "alternating": one direction per layer, forward first, each reading the last

    def check(self) -> None:
        for name in ("stride", "stride_kernel", "cnn_channels", "rnn_layers", "rnn_size"):
            _require(getattr(self, name) >= 1, f"model.{name} must be >= 1")
        _require(self.residual_blocks >= 0, "model.residual_blocks must be >= 0")
        _require(self.stride_kernel % 2 == 1, "model.stride_kernel must be odd")
        _require(self.rnn_type in RNN_TYPES, f"model.rnn_type must be one of {', '.join(RNN_TYPES)}")
        _require(self.signal_clip >= 0, "model.signal_clip must be >= 0 (0: no clipping)")
        _require(self.stem in STEMS, f"model.stem must be one of {', '.join(STEMS)}")
        _require(self.rnn_layout in RNN_LAYOUTS, f"model.rnn_layout must be one of {', '.join(RNN_LAYOUTS)}")

    @property
    def in_channels(self) -> int:
        return 2 if self.signal_squared else 1


@dataclass(frozen=True)
class BasecallerConfig:
    """Run settings, in samples.

    Stitching is exact when chunksize and overlap are multiples of the model stride and the overlap spans at least
    two timesteps: then each chunk boundary falls at least one timestep inside the next chunk, where that chunk
    knows whether the label there continues a base from the timestep before.
    """

    chunksize: int = 4000
    overlap: int = 500
    batch_size: int = 32  # chunks per forward pass on a GPU
    cpu_batch_size: int = 8  # chunks per forward pass on a CPU, where each core runs a single-threaded model copy
    min_qscore: float = 0.0  # reads with a lower mean qscore are filtered
    beam_width: int = 0  # CTC beam search width; 0 or 1 = greedy (a model's card says what beam search gains)
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
        _require(self.batch_size >= 1 and self.cpu_batch_size >= 1, "basecaller.batch_size and cpu_batch_size must be >= 1")
        _require(self.qscale > 0, "basecaller.qscale must be > 0")
        _require(self.min_qscore >= 0, "basecaller.min_qscore must be >= 0")
        _require(self.beam_width >= 0, "basecaller.beam_width must be >= 0")


@dataclass(frozen=True)
class InfoConfig:
    """What a model is for and how well it does, as measured for its model card (0 = not measured)."""

    chemistry: str = "r9.4.1"
    sample_rate_hz: int = 4000
    description: str = ""
    # measured with the model's own run settings (its beam_width): benchmarks/accuracy.py and benchmarks/throughput.py
    identity_sarscov2: float = 0.0  # median identity of mapped reads, the R9.4.1 SARS-CoV-2 reads (never trained on)
    identity_lambda: float = 0.0  # the same on the R9.4.1 lambda reads
    identity_held_out: float = 0.0  # the same on real reads of another chemistry it never trained on (its card's)
    cpu_samples_per_s: float = 0.0  # whole `basecall basecaller` run on the lambda reads, the 2-core test machine

    def listing(self) -> str:
        """One tab-separated line for `basecall models`."""
        measured = lambda value, text: text if value else "-"  # noqa: E731
        return "\t".join([
            self.chemistry,
            f"{self.sample_rate_hz} Hz",
            measured(self.identity_sarscov2, f"SARS-CoV-2 {self.identity_sarscov2:.3f}")
            if not self.identity_held_out else f"held-out {self.chemistry} reads {self.identity_held_out:.3f}",
            measured(self.identity_lambda, f"lambda {self.identity_lambda:.3f}"),
            measured(self.cpu_samples_per_s, f"{self.cpu_samples_per_s / 1e6:.2f} M samples/s (2 CPU cores)"),
            self.description,
        ])  # fmt: skip


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
    teacher_weight: float = 0.0  # weight of the KL divergence to a teacher's posteriors per timestep (0: calls only)

    def check(self) -> TrainConfig:
        _require(self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1")
        _require(self.lr > 0 and self.grad_clip > 0 and self.warmup_steps >= 0, "lr, grad_clip must be > 0")
        _require(0 <= self.valid_fraction < 1, "valid_fraction must be in [0, 1)")
        _require(self.teacher_weight >= 0, "teacher_weight must be >= 0")
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
