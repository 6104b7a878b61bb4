"""Per-base quality calibration: predicted Phred (as written in the FASTQ) against the errors seen in alignments.

`basecall evaluate --qscores` pairs each mapped read's per-base qualities with `Evaluator.base_errors` (1 where a
called base is a mismatch or an insertion) and fits observed ≈ qscale × predicted + qbias, the calibration a model's
``[basecaller]`` section applies (`basecall.decoder.calibrate_qualities`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from basecall.sequence import MAX_FASTQ_QUALITY, phred


@dataclass(frozen=True)
class QualityCalibration:
    """Predicted per-base Phred (as written in the FASTQ) against the error rate observed in alignments."""

    bases: np.ndarray  # (MAX_FASTQ_QUALITY + 1,) aligned called bases with each predicted Phred
    errors: np.ndarray  # (MAX_FASTQ_QUALITY + 1,) of those, mismatches and insertions
    qscale: float  # observed Phred ≈ qscale * predicted + qbias (fitted, weighted by bases)
    qbias: float

    def rows(self, min_bases: int = 100) -> list[dict[str, float | int | None]]:
        """One row per predicted Phred with at least `min_bases` bases: observed Phred is None when no error."""
        return [
            {
                "predicted_q": int(q), "bases": int(self.bases[q]), "errors": int(self.errors[q]),
                "observed_q": round(phred(float(self.errors[q] / self.bases[q])), 2) if self.errors[q] else None,
            }  # fmt: skip
            for q in np.flatnonzero(self.bases >= min_bases)
        ]


def quality_calibration(reads: Iterable[tuple[np.ndarray, np.ndarray]], min_bases: int = 100) -> QualityCalibration:
    """From (per-base Phred (n,) uint8, `Evaluator.base_errors` (n,)) pairs of mapped reads: counts per predicted
    Phred, and the linear calibration fitted over Phreds with at least `min_bases` bases and one error."""
    bases, errors = np.zeros(MAX_FASTQ_QUALITY + 1), np.zeros(MAX_FASTQ_QUALITY + 1)
    for qualities, per_base in reads:
        aligned = per_base >= 0
        np.add.at(bases, qualities[aligned].astype(np.int64), 1)
        np.add.at(errors, qualities[aligned].astype(np.int64), per_base[aligned])
    usable = np.flatnonzero((bases >= min_bases) & (errors > 0))
    if len(usable) < 2:
        return QualityCalibration(bases, errors, 1.0, 0.0)
    observed = phred(errors[usable] / bases[usable])
    qscale, qbias = np.polyfit(usable.astype(np.float64), observed, 1, w=np.sqrt(bases[usable]))
    return QualityCalibration(bases, errors, float(qscale), float(qbias))

