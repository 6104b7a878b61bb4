"""Validation read identity: basecall held-out labelled reads with the real pipeline and align each call to the
read's own reference sequence with `basecall.evaluate`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from basecall.config import Config
from basecall.evaluate import Evaluator, summarise
from basecall.pipeline import basecall_reads
from basecall.records import CalledRead, Read
from basecall.training.data import LabelledRead

Validate = Callable[[torch.nn.Module, list[LabelledRead]], dict[str, float]]


def as_read(labelled: LabelledRead, sample_rate_hz: float) -> Read:
    """A labelled read as the basecaller sees it (raw signal and calibration; no run metadata)."""
    return Read(labelled.read_id, labelled.signal, labelled.calibration, sample_rate_hz, "", 0, 0, "")


def read_identity(config: Config, device: torch.device) -> Validate:
    def validate(model: torch.nn.Module, reads: list[LabelledRead]) -> dict[str, float]:
        with tempfile.TemporaryDirectory() as tmp:
            truth = Path(tmp) / "truth.fasta"
            truth.write_text("".join(f">{r.read_id}\n{r.sequence}\n" for r in reads))
            evaluator = Evaluator(truth)
            inputs = [as_read(r, config.info.sample_rate_hz) for r in reads]
            called = basecall_reads(model, inputs, config.basecaller, device)
            summary = summarise(evaluator.evaluate(c.read.read_id, c.sequence) for c in called if isinstance(c, CalledRead))
        return {
            "valid_median_identity": summary.median_identity_all or 0.0,
            "valid_mean_identity": summary.mean_identity_all or 0.0,
            "valid_mapped_fraction": summary.mapped_fraction or 0.0,
        }

    return validate
