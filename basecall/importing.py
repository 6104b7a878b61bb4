"""Import published networks into our model family: DeepNano-blitz (Boža et al., MIT licence).

DeepNano-blitz's weight files (`rnnH.txt`) are text: pairs of lines, a shape ("rows cols" or "n") then every value
row-major on one line. In order: the first convolution's weight (66 × H: column 2j + f reads the input at offset
j − 16, feature f) and bias (H); four GRUs, each 12 arrays `wio woo bio boo wir wiu wor wou bir bor biu bou`
(input and recurrent weights as (in, out) matrices applied x·W; gates r reset, u update, o new); the output weight
(H × 5) and bias (5). Their network is ours with `stem = "pooled"` (conv 33 → max-pool 3 → tanh), features (x, x²)
clipped to ±2.5, four GRUs alternating in direction, and a linear layer; its classes are NACGT with the blank first,
our `ALPHABET` order, so the output layer is taken as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from basecall.config import ALPHABET, BasecallerConfig, Config, InfoConfig, ModelConfig
from basecall.errors import ModelError
from basecall.model import Model, save_model

BLITZ_ALPHABET = "NACGT"  # their output classes, blank first
BLITZ_KERNEL = 33
BLITZ_POOL = 3
BLITZ_GRUS = 4
BLITZ_CLIP = 2.5
_GRU_ARRAYS = ("wio", "woo", "bio", "boo", "wir", "wiu", "wor", "wou", "bir", "bor", "biu", "bou")
# Run settings for our chunker: their tool ran chunks of 1,560 samples every 1,500; longer chunks with a wider overlap
# give each GRU more context per call and fewer chunk edges (see the model card for the measured choice).
BLITZ_BASECALLER = BasecallerConfig(chunksize=3000, overlap=300, batch_size=256, cpu_batch_size=32)


def _arrays(path: Path) -> Iterator[np.ndarray]:
    """The (shape line, values line) pairs of a weights file, as float32 arrays of that shape."""
    lines = path.read_text().splitlines()
    if len(lines) % 2:
        raise ModelError(f"{path}: odd number of lines; a DeepNano-blitz weights file has shape/values line pairs")
    for number in range(0, len(lines), 2):
        try:
            shape = tuple(int(n) for n in lines[number].split())
            values = np.array(lines[number + 1].split(), dtype=np.float32)
            yield values.reshape(shape)
        except ValueError as e:
            raise ModelError(f"{path}: line {number + 1}: not a shape line and its values: {e}") from e


def read_blitz_weights(path: str | Path) -> Model:
    """A DeepNano-blitz weights file → our `Model` holding that network (eval mode)."""
    path = Path(path)
    try:
        arrays = list(_arrays(path))
    except OSError as e:
        raise ModelError(f"{path}: cannot read weights: {e.strerror or e}") from e
    expected = 2 + 12 * BLITZ_GRUS + 2
    if len(arrays) != expected or arrays[0].ndim != 2:
        raise ModelError(f"{path}: {len(arrays)} arrays, a DeepNano-blitz network has {expected}")
    conv_weight, conv_bias, *grus, out_weight, out_bias = arrays
    size = conv_weight.shape[1]
    if conv_weight.shape != (2 * BLITZ_KERNEL, size) or out_weight.shape != (size, len(BLITZ_ALPHABET)):
        raise ModelError(f"{path}: conv weight {conv_weight.shape} or output weight {out_weight.shape} has the wrong shape")
    config = ModelConfig(
        stride=BLITZ_POOL, stride_kernel=BLITZ_KERNEL, cnn_channels=size, residual_blocks=0, rnn_layers=BLITZ_GRUS,
        rnn_size=size, rnn_type="gru", signal_clip=BLITZ_CLIP, signal_squared=True, stem="pooled",
        rnn_layout="alternating",
    )  # fmt: skip
    state = {
        # (2K, H) with row 2j + f → Conv1d's (H, 2, K) with [h, f, j]
        "encoder.0.weight": conv_weight.reshape(BLITZ_KERNEL, 2, size).transpose(2, 1, 0),
        "encoder.0.bias": conv_bias,
    }
    for layer in range(BLITZ_GRUS):
        gru = dict(zip(_GRU_ARRAYS, grus[12 * layer : 12 * (layer + 1)], strict=True))
        prefix = f"rnn.layers.{layer}."
        # PyTorch's GRU stacks its gates r, z (= their u), n (= their o), as (3H, in) matrices applied W·x
        state[prefix + "weight_ih_l0"] = np.concatenate([gru["wir"].T, gru["wiu"].T, gru["wio"].T])
        state[prefix + "weight_hh_l0"] = np.concatenate([gru["wor"].T, gru["wou"].T, gru["woo"].T])
        state[prefix + "bias_ih_l0"] = np.concatenate([gru["bir"], gru["biu"], gru["bio"]])
        state[prefix + "bias_hh_l0"] = np.concatenate([gru["bor"], gru["bou"], gru["boo"]])
    order = [BLITZ_ALPHABET.index(base) for base in ALPHABET]  # their class of each of ours
    state["linear.weight"] = out_weight.T[order]
    state["linear.bias"] = out_bias[order]
    model = Model(config)
    try:
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()})
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not fit the network they describe: {e}") from e
    return model.eval()


def import_blitz(weights: str | Path, out_dir: str | Path) -> Path:
    """Write a model directory for a DeepNano-blitz weights file: config.toml (R9.4.1, 4 kHz, run settings for our
    chunker), weights.safetensors, LICENSE (theirs, MIT) and MODEL_CARD.md naming the source."""
    weights = Path(weights)
    model = read_blitz_weights(weights)
    name = weights.stem
    info = InfoConfig(chemistry="r9.4.1", sample_rate_hz=4000, description=f"R9.4.1 DNA, 4 kHz: DeepNano-blitz {name} (MIT), imported")
    config = Config(info=info, model=model.config, basecaller=BLITZ_BASECALLER).check()
    out_dir = save_model(model, config, out_dir)
    (out_dir / "LICENSE").write_text(BLITZ_LICENSE)
    n_parameters = sum(p.numel() for p in model.parameters())
    (out_dir / "MODEL_CARD.md").write_text(
        BLITZ_CARD.format(name=name, source=weights.name, n_parameters=n_parameters, size=model.config.rnn_size)
    )
    return out_dir


BLITZ_CARD = """# DeepNano-blitz {name}, imported

R9.4.1 DNA, 4 kHz. The network and weights are DeepNano-blitz's `{name}` (Boža, Perešíni, Brejová, Vinař:
"DeepNano-blitz: a fast base caller for MinION nanopore sequencers", Bioinformatics 2020;
github.com/fmfi-compbio/deepnano-blitz), under the MIT licence in `LICENSE` (copyright Vladimir Boža, Peter Perešíni).

Network ({n_parameters:,} parameters): the normalised signal clipped to ±2.5, features (x, x²) → convolution 33 →
max-pool 3 → tanh → four GRUs of {size} units alternating in direction → linear to blank + ACGT (stride 3).

## Data
Trained by its authors on their R9.4.1 reads (see their paper); nothing here was trained on.

## Reproduce
`basecall models import deepnano-blitz {source} -o DIR`: the weights are theirs, unchanged (float32). The import is
exact: in float64 the network reproduces reference outputs of their equations to ~1e-6 (`tests/test_import.py`).

## Accuracy
Not measured by the import: `python benchmarks/accuracy.py --model DIR --sets sarscov2 lambda [--beam-width 5]`.

## Speed
Not measured by the import: `python benchmarks/throughput.py --models DIR`.
"""

BLITZ_LICENSE = """\
Copyright (c) 2019 - 2020 Vladimir Boza "usamec", Peter Peresini (ppershing)

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation the
rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit
persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of the
Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""
