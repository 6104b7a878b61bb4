"""CTC decoding, batched over chunks: greedy and prefix beam search.

A decoder maps log-probabilities (T, N, 5) to three (N, T) uint8 tensors:
  moves     1 where a base starts, else 0
  bases     the class (index into ALPHABET, 1-4 = ACGT) of the base starting there, else 0
  qualities Phred quality of the base starting there, else 0
so only these small arrays leave the device, and stitching works on them per timestep.
`make_decoder` picks one from the command line's beam width: greedy in torch on any device; beam search in torch next
to the model on a GPU (`beam_search`), and with fast-ctc-decode on the CPU (`cpu_beam_search`).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from basecall.config import ALPHABET
from basecall.sequence import encode, error_probability
from basecall.sequence import phred as phred_score

Decoded = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Decoder = Callable[[torch.Tensor], Decoded]

MAX_QUALITY = 50


def phred(p_error: torch.Tensor) -> torch.Tensor:
    """Error probability → Phred score (`basecall.sequence.phred`), clamped to [0, MAX_QUALITY], as uint8."""
    q = phred_score(p_error.clamp(min=error_probability(MAX_QUALITY)))
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


def _advance(
    beams: _Beams,
    candidates: torch.Tensor,
    stay_blank: torch.Tensor,
    stay_label: torch.Tensor,
    came_from: torch.Tensor,
    beam_cut: float | None,
) -> tuple[_Beams, torch.Tensor]:
    """Keep the best candidates as the new beams. Returns them and their (B, N) int16 back-pointers."""
    beam_width, _ = beams.hash.shape
    score, parent, label = _select_topk(candidates, beam_width)  # (B, N) each, best first
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


def _search(log_probs: torch.Tensor, beam_width: int, beam_cut: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the beams over every timestep. log_probs: (T, 5, N). Returns back-pointers (T, B, N) and the most
    probable final beam (N,)."""
    n_timesteps, _, n_chunks = log_probs.shape
    beams = _initial_beams(beam_width, n_chunks, log_probs.device)
    pointers = torch.empty((n_timesteps, beam_width, n_chunks), dtype=torch.int16, device=log_probs.device)
    for t in range(n_timesteps):
        candidates, stay_blank, stay_label, came_from = _candidates(beams, log_probs[t])
        beams, pointers[t] = _advance(beams, candidates, stay_blank, stay_label, came_from, beam_cut)
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


@torch.inference_mode()
def beam_search(log_probs: torch.Tensor, beam_width: int = 5, beam_cut: float | None = None) -> Decoded:
    """CTC prefix beam search over every chunk at once, on log_probs' device.

    log_probs: (T, N, 5), class 0 blank. beam_cut, if given, drops candidates whose log-probability is more than
    beam_cut (natural log) below the chunk's best at that timestep. Returns moves, bases and qualities (N, T) uint8 for
    the most probable final prefix, the contract of `greedy`. Width 1 equals greedy where every timestep has a class
    of posterior > 1/2; elsewhere it can find a more probable sequence than greedy's best path, by adding up paths.
    `make_decoder(1)` is greedy.
    """
    if not 1 <= beam_width <= _MAX_BEAM_WIDTH:
        raise ValueError(f"beam_width must be in [1, {_MAX_BEAM_WIDTH}], got {beam_width}")
    log_probs = log_probs.float()
    chunks_last = log_probs.permute(0, 2, 1).contiguous()  # (T, 5, N)
    pointers, best = _search(chunks_last, beam_width, beam_cut)
    emitted = _backtrack(pointers, best)  # (T, N)
    qualities = _run_qualities(log_probs, emitted)  # (T, N)
    return (emitted > 0).to(torch.uint8).T.contiguous(), emitted.T.contiguous(), qualities.T.contiguous()


# ---------------------------------------------------------------------------------------------------------------------
# CPU beam search: fast-ctc-decode per chunk, moves from a Viterbi alignment of the sequence it finds
#
# fast-ctc-decode (Rust; releases the GIL) returns a chunk's most probable sequence and, per base, the timestep at which
# its search first created that prefix (`created`): the first timestep at which the base's posterior reached the
# class threshold while the prefix before it was in the beam. That is not where the base is emitted: on posteriors of
# the shipped model it equals the emission timestep for 40-50% of bases and is often several timesteps early (with
# threshold 0 it can be timestep 0). So each base's timestep comes from the most probable path that collapses to the
# sequence (a CTC Viterbi alignment): the first timestep of the base's run on that path. Where the sequence equals
# greedy's, that path is greedy's best path, so moves, bases and qualities equal greedy's.
#
# `created` bands the alignment: a base is never emitted before its prefix existed, so after timestep t at most
# J(t) = #{created <= t} bases are emitted, and measured on real posteriors never fewer than J(t) - 4 (and more than
# J(t) only at 5 of 75,000 timesteps, by one). The band keeps J(t) - 6 to J(t) + 1 bases, 16 states, instead of all
# 2L + 1: the same alignment as the full one on every base of 94 real chunks (33,875 bases), at a tenth of the cost
# (0.09-0.13 ms a chunk of 800 timesteps, against 1 ms for fast-ctc-decode's beam 5 on the same shared machine).
# Emitting every base at its `created` timestep is a CTC path inside the band (a repeated base is created at least two
# timesteps after its parent: its prefix needs a path ending in a blank), so the band is never empty.
# ---------------------------------------------------------------------------------------------------------------------

_MAX_CLASS_THRESHOLD = 0.19  # fast-ctc-decode needs < 1/5; some class always reaches 1/5
_BAND_BELOW, _BAND_ABOVE = 6, 1  # bases emitted by t kept in the alignment: J(t) - 6 to J(t) + 1


def class_threshold(beam_cut: float | None) -> float:
    """`--beam-cut` (natural log) as fast-ctc-decode's cut: classes whose posterior at a timestep is below
    exp(-beam_cut) extend no prefix; None cuts nothing (0). The torch search instead drops candidates (prefix x class)
    more than beam_cut below the best candidate: both drop what is far below the best, theirs per class, capped at
    0.19. Measured on 75 real chunks of r9.4.1-small: a cut of 6.9 (1e-3, Bonito's default) decodes 20% faster but
    changes the sequence of 3% (beam 5) and 9% (beam 10) of chunks; 9.2 (1e-4) changes none and saves little."""
    return 0.0 if beam_cut is None else min(math.exp(-beam_cut), _MAX_CLASS_THRESHOLD)


def _align(log_probs: np.ndarray, labels: np.ndarray, created: np.ndarray) -> np.ndarray:
    """Emission timestep of each base (L,) int64 on the most probable path of `labels` (L,) int64 (1-4) through
    `log_probs` (T, 5) float32, searched in the band `created` (L,) int64 sets (see above); `created` itself if no path
    is left in it. States: 2j = blank after j bases, 2j - 1 = in base j; a step moves 0 or 1 state, or 2 into a base
    whose label differs from the one before. The band only moves up, by at most 2 states a timestep; the 2 states on
    either side of it hold -inf, so a step reads no stale score."""
    n_timesteps, n_bases = log_probs.shape[0], labels.shape[0]
    n_states = 2 * n_bases + 1
    state_class = np.zeros(n_states + 4, np.int64)
    state_class[1 : n_states : 2] = labels
    can_skip = np.zeros(n_states + 4, np.bool_)
    can_skip[3 : n_states : 2] = labels[1:] != labels[:-1]
    score = np.full(n_states + 4, -np.inf, np.float32)  # 2 states of -inf padding before state 0 (index s + 2)
    new = np.full(n_states + 4, -np.inf, np.float32)
    back = np.zeros((n_timesteps, 2 * (_BAND_BELOW + _BAND_ABOVE) + 2), np.int8)  # 0, 1, 2 states moved
    lowest = np.zeros(n_timesteps, np.int64)  # first state of the band at each timestep
    score[2] = log_probs[0, 0]
    score[3] = log_probs[0, state_class[1]] if n_bases > 0 else -np.inf
    n_created = 0
    for t in range(1, n_timesteps):
        while n_created < n_bases and created[n_created] <= t:
            n_created += 1
        low = max(0, 2 * (n_created - _BAND_BELOW) - 1)
        high = min(n_states - 1, 2 * (n_created + _BAND_ABOVE))
        lowest[t] = low
        for s in range(low, high + 1):
            best, moved = score[s + 2], 0
            if score[s + 1] > best:
                best, moved = score[s + 1], 1
            if can_skip[s] and score[s] > best:
                best, moved = score[s], 2
            new[s + 2] = best + log_probs[t, state_class[s]]
            back[t, s - low] = moved
        new[low : low + 2] = -np.inf
        new[high + 3 : high + 5] = -np.inf
        score, new = new, score
    s = n_states - 1
    if n_bases > 0 and score[s + 1] > score[s + 2]:
        s -= 1
    if score[s + 2] == -np.inf:
        return created.copy()
    emitted = np.empty(n_bases, np.int64)
    for t in range(n_timesteps - 1, -1, -1):
        if s % 2 == 1:
            emitted[s // 2] = t  # overwritten down to the first timestep of the base's run
        if t > 0:
            s -= back[t, s - lowest[t]]
    return emitted


_COMPILING = threading.Lock()


def _compiled_align() -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """`_align` compiled by numba, without the GIL; threads that ask at once wait for one compile."""
    with _COMPILING:
        return _compile_align()


@functools.cache
def _compile_align() -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Numba is imported here (greedy runs never pay for it), and the compiled code is cached on disk: only the first
    run on a machine compiles (2-6 s); later ones import numba and load it, about 0.9 s of one core (measured on a
    shared machine): a fixed cost of each run with beam search on the CPU."""
    import numba

    try:
        return numba.njit(nogil=True, cache=True)(_align)
    except RuntimeError:  # no writable cache directory (a read-only install, no home): compile in each process
        return numba.njit(nogil=True)(_align)


@functools.cache
def warm_up(beam_width: int) -> None:
    """Start loading the CPU beam search's compiled code (numba, ≈ 0.9 s of one core) on a thread of its own, once, so
    that it overlaps starting the reader and loading the model instead of delaying the first decoded batch."""
    if beam_width > 1:
        threading.Thread(target=_compiled_align, name="basecall-decoder-warm-up", daemon=True).start()


@torch.inference_mode()
def cpu_beam_search(log_probs: torch.Tensor, beam_width: int = 5, beam_cut: float | None = None) -> Decoded:
    """CTC beam search on the CPU: fast-ctc-decode's sequence for each chunk, each base at the first timestep of its
    run on the sequence's most probable path, qualities as greedy's (`_run_qualities`).

    log_probs: (T, N, 5) on the CPU, class 0 blank. beam_cut: see `class_threshold`. Returns moves, bases and
    qualities (N, T) uint8, the contract of `greedy`. It holds the GIL only between chunks, so threads decode in
    parallel.
    """
    from fast_ctc_decode import beam_search as fast_ctc_beam_search

    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    log_probs = log_probs.float()
    chunk_log_probs = log_probs.permute(1, 0, 2).contiguous().numpy()  # (N, T, 5)
    chunk_probs = np.exp(chunk_log_probs)
    align, threshold = _compiled_align(), class_threshold(beam_cut)
    emitted = np.zeros(chunk_log_probs.shape[:2], np.uint8)  # (N, T)
    for chunk, (probs, chunk_log) in enumerate(zip(chunk_probs, chunk_log_probs)):
        sequence, created = fast_ctc_beam_search(probs, ALPHABET, beam_width, threshold)
        labels = encode(sequence).astype(np.int64)  # (L,) 1-4 = ACGT
        emitted[chunk, align(chunk_log, labels, np.asarray(created, np.int64))] = labels
    emitted_t = torch.from_numpy(emitted.T)  # (T, N)
    qualities = _run_qualities(log_probs, emitted_t).T.contiguous()  # (N, T)
    return torch.from_numpy(emitted > 0).to(torch.uint8), torch.from_numpy(emitted), qualities


def _beam_search_here(log_probs: torch.Tensor, beam_width: int, beam_cut: float | None) -> Decoded:
    """Beam search where log_probs are: fast-ctc-decode on the CPU, the batched torch search on a GPU."""
    search = cpu_beam_search if log_probs.device.type == "cpu" else beam_search
    return search(log_probs, beam_width, beam_cut)


def make_decoder(beam_width: int, beam_cut: float | None = None, qscale: float = 1.0, qbias: float = 0.0) -> Decoder:
    """Greedy for beam width 0 or 1, else beam search of that width (`_beam_search_here`); qualities calibrated with
    qscale and qbias."""
    if beam_width < 0:
        raise ValueError(f"beam_width must be >= 0, got {beam_width}")
    if beam_width <= 1:
        decode: Decoder = greedy
    else:
        decode = functools.partial(_beam_search_here, beam_width=beam_width, beam_cut=beam_cut)
    if (qscale, qbias) == (1.0, 0.0):
        return decode

    def calibrated(log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        moves, bases, qualities = decode(log_probs)
        return moves, bases, calibrate_qualities(qualities, moves, qscale, qbias)

    return calibrated
