"""Signal scaling: picoamps → normalised float32 (pure numpy)."""

from __future__ import annotations

import math

import numpy as np

from basecall.errors import InputError
from basecall.records import Read

MAD_TO_SD = 1.4826  # MAD × this ≈ standard deviation for Gaussian noise
MIN_SAMPLES = 100  # 25 ms at 4 kHz, about ten bases: anything shorter is not a read worth calling


def scaled_signal(read: Read) -> np.ndarray:
    """A read's raw signal → normalised float32 (n_samples,). Raises InputError saying what makes it unusable."""
    if read.n_samples < MIN_SAMPLES:
        raise InputError(f"too few samples ({read.n_samples} < {MIN_SAMPLES})" if read.n_samples else "read has no samples")
    offset, scale = read.calibration.offset, read.calibration.scale
    if not (math.isfinite(offset) and math.isfinite(scale) and scale > 0):
        raise InputError(f"impossible calibration: offset {offset:g}, scale {scale:g} pA per ADC unit")
    return normalise(read.signal_pa)


def normalise(signal_pa: np.ndarray) -> np.ndarray:
    """(n_samples,) pA → (n_samples,) float32 with median 0 and robust spread 1 (median / MAD).

    Raises InputError for a signal that cannot be scaled: empty, not finite, or flat.
    """
    if signal_pa.size == 0:
        raise InputError("read has no samples")
    if not np.all(np.isfinite(signal_pa)):
        raise InputError("signal has NaN or infinite values after scaling to pA")
    median = np.median(signal_pa)
    mad = np.median(np.abs(signal_pa - median)) * MAD_TO_SD
    if not mad > 0:
        raise InputError("signal is flat (median absolute deviation is 0)")
    return ((signal_pa - median) / mad).astype(np.float32)
