"""Signal scaling: picoamps → normalised float32 (pure numpy)."""

from __future__ import annotations

import numpy as np

from basecall.errors import InputError

MAD_TO_SD = 1.4826  # MAD × this ≈ standard deviation for Gaussian noise


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
