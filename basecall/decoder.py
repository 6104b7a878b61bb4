"""CTC decoding in torch, on the model's device, batched over chunks: greedy and prefix beam search.

A decoder maps log-probabilities (T, N, 5) to three (N, T) uint8 tensors:
  moves     1 where a base starts, else 0
  bases     the class (index into ALPHABET, 1-4 = ACGT) of the base starting there, else 0
  qualities Phred quality of the base starting there, else 0
so only these small arrays leave the device, and stitching works on them per timestep.
`make_decoder` picks one from the command line's beam width.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable
from typing import NamedTuple

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


def calibrate_qualities(qualities: torch.Tensor, moves: torch.Tensor, qscale: float, qbias: float) -> torch.Tensor:
    """Phred' = qscale * Phred + qbias (a model's calibration), rounded and clamped, where a base starts; else 0.

    qualities, moves: (N, T) uint8 as a decoder returns them; works for any decoder's output.
    """
    calibrated = (qscale * qualities.float() + qbias).round().clamp(0, MAX_QUALITY).to(torch.uint8)
    return torch.where(moves.bool(), calibrated, 0).to(torch.uint8)


# ---------------------------------------------------------------------------------------------------------------------
# CTC prefix beam search
#
# Every chunk keeps `beam_width` prefixes (label sequences). A prefix's state is the log-probability of all paths so far
# that collapse to it, split by whether they end in a blank (`blank`) or in the prefix's last label (`label`). Per
# timestep each beam b proposes 5 candidates, row b * 5 + c of a (5B, N) table: c = 0 keeps the prefix (a blank, or its
# last label again), c = 1-4 extends it by A, C, G, T. The best `beam_width` candidates survive. Tensors are laid out
# (..., N), chunks last, so every operation is elementwise over chunks and vectorises.
#
# Merging: extensions of distinct prefixes are distinct, so a prefix can turn up twice only as the extension (b, c) of
# a beam b and as the kept prefix of a beam b' whose prefix is b's + c. Each beam carries a hash of its prefix and of
# its parent prefix (less its last label); a match adds the extension's probability to b''s `label` state and removes
# the extension. The hash is polynomial in wrapping 64-bit integer arithmetic with a fixed odd multiplier, keeping the
# low 63 bits so that the negative sentinels below match nothing. Live prefixes of a chunk share most of their history,
# so a false merge needs two different recent suffixes of equal hash: about 2^-63 per comparison, never in practice.
# Dead beams (probability 0: at the start, or cut) carry sentinel hashes, so they never merge or come back to life.
#
# Back-pointers: per timestep and beam, the candidate it came from, parent * 5 + emitted label (0 = none); a merged beam
# points to whichever of its two sources carried more probability. One backtrack at the end gives, for the most
# probable final prefix, the timestep at which each of its bases was emitted.
# ---------------------------------------------------------------------------------------------------------------------

N_CLASSES = 5  # blank + ACGT
_HASH_MULTIPLIER = 0x5851F42D4C957F2D  # odd, < 2^63
_HASH_MASK = (1 << 63) - 1
_DEAD_HASH = -2  # the hash of a dead beam: no parent hash is -2
_NO_PARENT = -1  # the parent hash of the empty prefix and of dead beams: no hash is -1
_NEG_INF = float("-inf")
_MAX_BEAM_WIDTH = 32767 // N_CLASSES  # back-pointers parent * 5 + label are int16
_MIN_COMPILED_CHUNKS = 16  # fewer chunks run eager: a compiled graph's guards and calls cost more than they save
_MAX_UNROLLED_WIDTH = 5  # compiled selection is unrolled up to here; compiling: 20 s at 5, 87 s at 10, gcc died at 16

log = logging.getLogger(__name__)


class _Beams(NamedTuple):
    """All (B, N): log-probability of a prefix's paths ending in a blank and in its last label, the hash of the prefix
    and of its parent prefix, and its last label (0 for the empty prefix)."""

    blank: torch.Tensor
    label: torch.Tensor
    hash: torch.Tensor
    parent_hash: torch.Tensor
    last: torch.Tensor


def _initial_beams(beam_width: int, n_chunks: int, device: torch.device) -> _Beams:
    """Beam 0 is the empty prefix with probability 1; the others are dead."""
    blank = torch.full((beam_width, n_chunks), _NEG_INF, device=device)
    blank[0] = 0.0
    hash_ = torch.full((beam_width, n_chunks), _DEAD_HASH, dtype=torch.int64, device=device)
    hash_[0] = 0
    no_parent = torch.full_like(hash_, _NO_PARENT)
    return _Beams(blank, torch.full_like(blank, _NEG_INF), hash_, no_parent, torch.zeros_like(hash_))


def _candidates(beams: _Beams, log_probs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Score every candidate of one timestep, with extensions merged into the beams they equal.

    log_probs: (5, N). Returns candidates (5B, N), the kept prefixes' new `blank` and `label` states (B, N), and (B, N)
    back-pointers for the kept prefixes.
    """
    beam_width, n_chunks = beams.hash.shape
    bases = torch.arange(1, N_CLASSES, device=log_probs.device).unsqueeze(1)  # (4, 1)
    total = torch.logaddexp(beams.blank, beams.label)  # (B, N)
    last_again = log_probs.gather(0, beams.last)  # (B, N) log-probability of each beam's last label (blank if empty)
    stay_blank = total + log_probs[0]
    stay_label = beams.label + last_again  # -inf for the empty prefix
    repeat = beams.last.unsqueeze(1) == bases  # (B, 4, N) a repeated label extends only paths ending in a blank
    extend = torch.where(repeat, beams.blank.unsqueeze(1), total.unsqueeze(1)) + log_probs[1:]  # (B, 4, N)

    # extension (b, last of b') scored for every pair (child b', parent b), kept where b' = b + that label
    match = beams.parent_hash.unsqueeze(1) == beams.hash.unsqueeze(0)  # (B child, B parent, N)
    same_last = beams.last.unsqueeze(1) == beams.last.unsqueeze(0)  # (B, B, N)
    into = torch.where(same_last, beams.blank.unsqueeze(0), total.unsqueeze(0)) + last_again.unsqueeze(1)  # (B, B, N)
    merged, merged_from = torch.where(match, into, _NEG_INF).max(dim=1)  # (B, N), (B, N)
    own = torch.logaddexp(stay_blank, stay_label)  # (B, N) before the merge
    stay_label = torch.logaddexp(stay_label, merged)
    itself = torch.arange(0, N_CLASSES * beam_width, N_CLASSES, device=log_probs.device).unsqueeze(1)  # (B, 1)
    came_from = torch.where(merged > own, merged_from * N_CLASSES + beams.last, itself)  # (B, N)
    merged_away = (match.unsqueeze(2) & repeat.unsqueeze(1)).any(dim=0)  # (B parent, 4, N)
    extend = torch.where(merged_away, _NEG_INF, extend)

    stay = torch.logaddexp(stay_blank, stay_label).unsqueeze(1)  # (B, 1, N)
    candidates = torch.cat([stay, extend], dim=1).view(N_CLASSES * beam_width, n_chunks)  # (5B, N)
    return candidates, stay_blank, stay_label, came_from


def _select_topk(candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k best candidates (5B, N) of each chunk, best first: (k, N) scores, parent beams and labels."""
    score, index = candidates.topk(k, dim=0)  # (k, N), (k, N)
    return score, index.div(N_CLASSES, rounding_mode="floor"), index.remainder(N_CLASSES)


def _select_unrolled(candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """As `_select_topk` (ties to the lower row), as k passes of elementwise maxima over the rows, which the compiler
    fuses into vectorised loops over chunks (aten's topk sorts each chunk on its own)."""
    rows = list(candidates.unbind(0))  # 5B × (N,)
    scores, parents, labels = [], [], []
    for _ in range(k):
        best = functools.reduce(torch.maximum, rows)  # (N,)
        taken = [values == best for values in rows]  # the first of these is taken
        parent = torch.zeros_like(best, dtype=torch.int64)
        label = torch.zeros_like(parent)
        for row in range(len(rows) - 1, -1, -1):  # the lowest taken row is written last
            parent = torch.where(taken[row], row // N_CLASSES, parent)
            label = torch.where(taken[row], row % N_CLASSES, label)
        index = parent * N_CLASSES + label  # (N,)
        rows = [torch.where(index == row, _NEG_INF, values) for row, values in enumerate(rows)]
        scores.append(best)
        parents.append(parent)
        labels.append(label)
    return torch.stack(scores), torch.stack(parents), torch.stack(labels)  # (k, N) each


def _advance(
    beams: _Beams,
    candidates: torch.Tensor,
    stay_blank: torch.Tensor,
    stay_label: torch.Tensor,
    came_from: torch.Tensor,
    beam_cut: float | None,
    unrolled: bool,
) -> tuple[_Beams, torch.Tensor]:
    """Keep the best candidates as the new beams. Returns them and their (B, N) int16 back-pointers."""
    beam_width, _ = beams.hash.shape
    select = _select_unrolled if unrolled else _select_topk
    score, parent, label = select(candidates, beam_width)  # (B, N) each, best first
    if beam_cut is not None:
        score = torch.where(score < score[:1] - beam_cut, _NEG_INF, score)
    alive = score > _NEG_INF
    kept = label == 0
    parent_hash = beams.hash.gather(0, parent)  # (B, N)
    extended_hash = (parent_hash * _HASH_MULTIPLIER + label) & _HASH_MASK
    new = _Beams(
        blank=torch.where(kept & alive, stay_blank.gather(0, parent), _NEG_INF),
        label=torch.where(kept & alive, stay_label.gather(0, parent), score),
        hash=torch.where(alive, torch.where(kept, parent_hash, extended_hash), _DEAD_HASH),
        parent_hash=torch.where(alive, torch.where(kept, beams.parent_hash.gather(0, parent), parent_hash), _NO_PARENT),
        last=torch.where(kept, beams.last.gather(0, parent), label),
    )
    pointers = torch.where(kept, came_from.gather(0, parent), parent * N_CLASSES + label)  # (B, N)
    return new, pointers.to(torch.int16)


class _Step(NamedTuple):
    candidates: Callable[..., tuple[torch.Tensor, ...]]
    advance: Callable[..., tuple[_Beams, torch.Tensor]]
    unrolled: bool


_EAGER = _Step(_candidates, _advance, unrolled=False)


@functools.cache
def _compiled_step(beam_width: int) -> _Step:
    """The step compiled by inductor, in two graphs: in one, the merge was fused into each consumer of the candidates
    and recomputed there (1.5x slower at 1024 chunks), so the candidates are materialised between them."""
    compile_ = functools.partial(torch.compile, dynamic=True)
    candidates, advance = _own_code(_candidates), _own_code(_advance)
    return _Step(compile_(candidates), compile_(advance), unrolled=beam_width <= _MAX_UNROLLED_WIDTH)


def _own_code(function: Callable) -> Callable:
    """A copy of `function` with a code object of its own. torch.compile keeps one cache per code object: with one
    per beam width, a call no longer checks the guards of every other width first (that made width 5 1.7x slower
    once width 10 had been compiled too)."""
    return types.FunctionType(function.__code__.replace(), function.__globals__, function.__name__)


def _search(
    log_probs: torch.Tensor, beam_width: int, beam_cut: float | None, step: _Step
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the beams over every timestep. log_probs: (T, 5, N). Returns back-pointers (T, B, N) and the most
    probable final beam (N,)."""
    n_timesteps, _, n_chunks = log_probs.shape
    beams = _initial_beams(beam_width, n_chunks, log_probs.device)
    pointers = torch.empty((n_timesteps, beam_width, n_chunks), dtype=torch.int16, device=log_probs.device)
    for t in range(n_timesteps):
        candidates, stay_blank, stay_label, came_from = step.candidates(beams, log_probs[t])
        beams, pointers[t] = step.advance(beams, candidates, stay_blank, stay_label, came_from, beam_cut, step.unrolled)
    return pointers, torch.logaddexp(beams.blank, beams.label).argmax(dim=0)


def _backtrack(pointers: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """Follow back-pointers (T, B, N) from the beams `best` (N,) at the last timestep; returns the (T, N) labels
    emitted along the way (0 where none)."""
    n_timesteps, _, n_chunks = pointers.shape
    emitted = torch.empty((n_timesteps, n_chunks), dtype=torch.uint8, device=pointers.device)
    beam = best.unsqueeze(0)  # (1, N)
    for t in range(n_timesteps - 1, -1, -1):
        pointer = pointers[t].gather(0, beam).long()  # (1, N)
        emitted[t] = pointer[0].remainder(N_CLASSES)
        beam = pointer.div(N_CLASSES, rounding_mode="floor")
    return emitted


def _run_qualities(log_probs: torch.Tensor, emitted: torch.Tensor) -> torch.Tensor:
    """Phred quality of each emitted base from the mean posterior of its label over its run: the emission timestep and
    the following timesteps, up to the next emission, at which that label stays the most probable class. Greedy's runs
    are exactly these, so both decoders give the same quality to a base they emit at the same timestep.

    log_probs: (T, N, 5); emitted: (T, N) label emitted at each timestep, 0 where none. Returns (T, N) uint8.
    """
    n_timesteps, n_chunks = emitted.shape
    moves = emitted > 0
    steps = torch.arange(n_timesteps, device=emitted.device).unsqueeze(1).expand(-1, n_chunks)  # (T, N)
    emission = torch.where(moves, steps, 0).cummax(dim=0).values  # (T, N) latest emission at or before t (0 if none)
    base = emitted.long().gather(0, emission)  # (T, N) label of the latest emitted base; 0 before the first
    breaks = (~moves & (log_probs.argmax(dim=2) != base)).cumsum(dim=0)  # (T, N) timesteps that ended a run, so far
    in_run = (base > 0) & (breaks == breaks.gather(0, emission))  # (T, N)
    p = torch.where(in_run, log_probs.gather(2, base.unsqueeze(2)).squeeze(2).exp(), 0.0)  # (T, N) the run's label
    run_sum = torch.zeros_like(p).scatter_add_(0, emission, p)  # (T, N) totals at each emission timestep
    run_len = torch.zeros_like(p).scatter_add_(0, emission, in_run.float())
    return torch.where(moves, phred(1.0 - run_sum / run_len.clamp(min=1)), 0).to(torch.uint8)


_compile_failed = False  # set once compiling failed in this process


def _stop_compiling(error: Exception) -> None:
    global _compile_failed
    _compile_failed = True
    log.warning(
        "compiled beam search failed, using eager from now on: %s", (str(error).splitlines() or [repr(error)])[0]
    )


def _step_for(device: torch.device, beam_width: int, n_chunks: int, compiled: bool | None) -> _Step:
    """Compiled on CPU by default (measured: benchmarks/decoder.py); eager elsewhere, when asked, for a few chunks
    (a compile of its own for 1 chunk buys nothing), or once compiling failed."""
    if compiled is False or _compile_failed or n_chunks < _MIN_COMPILED_CHUNKS:
        return _EAGER
    if compiled is None and device.type != "cpu":
        return _EAGER
    return _compiled_step(beam_width)


@torch.inference_mode()
def beam_search(
    log_probs: torch.Tensor, beam_width: int = 5, beam_cut: float | None = None, *, compiled: bool | None = None
) -> Decoded:
    """CTC prefix beam search over every chunk at once, on log_probs' device.

    log_probs: (T, N, 5), class 0 blank. beam_cut, if given, drops candidates whose log-probability is more than
    beam_cut (natural log) below the chunk's best at that timestep. compiled: use the torch.compile'd step (default: on
    CPU, for 16 chunks or more), falling back to eager if compiling fails; compiling costs about 20 s the first time
    (7 s with inductor's on-disk cache warm) and doubles throughput. Returns moves, bases and qualities (N, T) uint8 for
    the most probable final prefix, the contract of `greedy`. Width 1 equals greedy where every timestep has a class
    of posterior > 1/2; elsewhere it can find a more probable sequence than greedy's best path, by adding up paths.
    `make_decoder(1)` is greedy.
    """
    if not 1 <= beam_width <= _MAX_BEAM_WIDTH:
        raise ValueError(f"beam_width must be in [1, {_MAX_BEAM_WIDTH}], got {beam_width}")
    log_probs = log_probs.float()
    chunks_last = log_probs.permute(0, 2, 1).contiguous()  # (T, 5, N)
    step = _step_for(log_probs.device, beam_width, log_probs.shape[1], compiled)
    try:
        pointers, best = _search(chunks_last, beam_width, beam_cut, step)
    except Exception as e:  # a compiler missing or failing: eager gives the same result
        if step is _EAGER:
            raise
        _stop_compiling(e)
        pointers, best = _search(chunks_last, beam_width, beam_cut, _EAGER)
    emitted = _backtrack(pointers, best)  # (T, N)
    qualities = _run_qualities(log_probs, emitted)  # (T, N)
    return (emitted > 0).to(torch.uint8).T.contiguous(), emitted.T.contiguous(), qualities.T.contiguous()


def cpu_batch_size(beam_width: int) -> int:
    """Chunks per forward pass on CPU unless asked otherwise (a model's batch_size is for GPUs). Greedy: 8, where a
    single-threaded LSTM runs fastest (2 copies on 2 cores, lambda reads: 666 k samples/s vs 495 k at 32). Beam
    search costs more per call than per chunk and runs eager below `_MIN_COMPILED_CHUNKS`: 64 (beam 5: 194 k vs
    120 k samples/s at 8)."""
    return 8 if beam_width <= 1 else 64


def make_decoder(beam_width: int, beam_cut: float | None = None, qscale: float = 1.0, qbias: float = 0.0) -> Decoder:
    """Greedy for beam width 0 or 1, else beam search of that width; qualities calibrated with qscale and qbias."""
    if beam_width < 0:
        raise ValueError(f"beam_width must be >= 0, got {beam_width}")
    decode = greedy if beam_width <= 1 else functools.partial(beam_search, beam_width=beam_width, beam_cut=beam_cut)
    if (qscale, qbias) == (1.0, 0.0):
        return decode

    def calibrated(log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        moves, bases, qualities = decode(log_probs)
        return moves, bases, calibrate_qualities(qualities, moves, qscale, qbias)

    return calibrated


DECODERS: dict[str, Decoder] = {"greedy": greedy, "beam_search": beam_search}
