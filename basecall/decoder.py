"""CTC decoding in torch, on the model's device, batched over chunks.

A decoder maps log-probabilities (T, N, 5) to three (N, T) uint8 tensors:
  moves     1 where a base starts, else 0
  bases     the class (index into ALPHABET, 1-4 = ACGT) of the base starting there, else 0
  qualities Phred quality of the base starting there, else 0
so only these small arrays leave the device, and stitching works on them per timestep.
Beam search plugs in here with the same signature.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Decoded = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Decoder = Callable[[torch.Tensor], Decoded]

MAX_QUALITY = 50


def phred(p_error: torch.Tensor) -> torch.Tensor:
    """Error probability → Phred score, clamped to [0, MAX_QUALITY], as uint8."""
    q = -10.0 * torch.log10(p_error.clamp(min=10.0 ** (-MAX_QUALITY / 10)))
    return q.round().clamp(0, MAX_QUALITY).to(torch.uint8)


def greedy(log_probs: torch.Tensor) -> Decoded:
    """Best path: argmax per timestep, then collapse repeats and drop blanks.

    A base's quality comes from the mean posterior of its label over the timesteps of its run.
    """
    log_p, labels = log_probs.float().max(dim=-1)  # (T, N), (T, N)
    labels = labels.T  # (N, T)
    p = log_p.T.exp()  # (N, T)
    previous = torch.nn.functional.pad(labels[:, :-1], (1, 0), value=-1)  # (N, T), -1 before the start
    run_start = labels != previous  # (N, T) first timestep of each run of one label
    moves = run_start & (labels != 0)
    run_id = run_start.long().cumsum(dim=1) - 1  # (N, T) index of the run each timestep belongs to
    run_sum = torch.zeros_like(p).scatter_add_(1, run_id, p)  # (N, T) per run (first n_runs columns used)
    run_len = torch.zeros_like(p).scatter_add_(1, run_id, torch.ones_like(p))
    run_mean = (run_sum / run_len.clamp(min=1)).gather(1, run_id)  # (N, T) mean posterior of each timestep's run
    qualities = torch.where(moves, phred(1.0 - run_mean), torch.zeros_like(labels, dtype=torch.uint8))
    return moves.to(torch.uint8), torch.where(moves, labels, 0).to(torch.uint8), qualities


DECODERS: dict[str, Decoder] = {"greedy": greedy}
