"""Validation: basecall held-out labelled reads with the real pipeline and align each call to the read's own
reference sequence with `basecall.evaluate`.

Besides identity (which only looks at the aligned part, so a call that is mostly garbage but has one clean stretch
scores well), we report *accuracy*: matches / (alignment columns + reference bases the alignment leaves out), 0 when
unmapped. It rewards covering the whole read and is what picks the best epoch.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from basecall.config import Config
from basecall.evaluate import Evaluator, ReadAccuracy
from basecall.pipeline import basecall_reads
from basecall.records import CalledRead, Read
from basecall.training.data import LabelledRead

Validate = Callable[[torch.nn.Module, list[LabelledRead]], dict[str, float]]


def as_read(labelled: LabelledRead, sample_rate_hz: float) -> Read:
    """A labelled read as the basecaller sees it (raw signal and calibration; no run metadata)."""
    return Read(labelled.read_id, labelled.signal, labelled.calibration, sample_rate_hz, "", 0, 0, "")


def accuracy(result: ReadAccuracy, reference_length: int) -> float:
    """matches / (alignment columns + reference bases outside the alignment); 0 when unmapped."""
    if not result.mapped:
        return 0.0
    left_out = result.ref_start + (reference_length - result.ref_end)
    return result.matches / (result.n_columns + left_out)


def validation_metrics(config: Config, device: torch.device) -> Validate:
    """A `Validate` that calls the reads with the real pipeline and aligns each call to its own label: median
    accuracy (`accuracy`: what picks the best epoch), median identity and the mapped fraction."""

    def validate(model: torch.nn.Module, reads: list[LabelledRead]) -> dict[str, float]:
        inputs = [as_read(r, config.info.sample_rate_hz) for r in reads]
        truth = {r.read_id: r.sequence for r in reads}
        results: list[tuple[ReadAccuracy, int]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for called in basecall_reads(model, inputs, config.basecaller, device):
                if isinstance(called, CalledRead):
                    fasta = Path(tmp) / "truth.fasta"
                    fasta.write_text(f">{called.read.read_id}\n{truth[called.read.read_id]}\n")
                    result = Evaluator(fasta).evaluate(called.read.read_id, called.sequence)
                    results.append((result, len(truth[called.read.read_id])))
        if not results:
            return {"valid_median_accuracy": 0.0, "valid_median_identity": 0.0, "valid_mapped_fraction": 0.0}
        return {
            "valid_median_accuracy": statistics.median(accuracy(r, n) for r, n in results),
            "valid_median_identity": statistics.median(r.identity for r, _ in results),
            "valid_mapped_fraction": sum(r.mapped for r, _ in results) / len(results),
        }

    return validate
