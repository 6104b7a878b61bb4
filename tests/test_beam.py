"""CTC prefix beam search: exact against exhaustive search on tiny inputs, greedy at width 1, fast-ctc-decode on
realistic posteriors, CPU against CUDA, compiled against eager."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from basecall.config import ALPHABET
from basecall.decoder import MAX_QUALITY, beam_search, calibrate_qualities, greedy, make_decoder


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small per-timestep tensors: a second thread only adds synchronisation (10x slower on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def peaked_posteriors(n_chunks: int, n_timesteps: int = 800, seed: int = 0, ambiguity: float = 0.05) -> torch.Tensor:
    """(T, N, 5) log-probabilities like a trained model's, built from random base sequences.

    Each base dwells 1 + Poisson(1) timesteps, followed by Poisson(1.2) blanks (at least one between equal bases, as
    CTC needs). Every timestep's true class gets a logit 3-9 above N(0, 1) noise (posterior 0.8 to 0.9995), and a
    fraction `ambiguity` of timesteps get a second class as strong: a substitution, deletion or insertion to weigh.
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (n_timesteps, n_chunks, 5))
    steps = np.arange(n_timesteps)
    for chunk in range(n_chunks):
        bases = rng.integers(1, 5, n_timesteps)
        dwell = 1 + rng.poisson(1.0, n_timesteps)
        gaps = rng.poisson(1.2, n_timesteps)
        gaps[:-1] = np.where(bases[1:] == bases[:-1], np.maximum(gaps[:-1], 1), gaps[:-1])
        classes = np.stack([bases, np.zeros_like(bases)], axis=1).ravel()  # base, blank, base, blank, ...
        path = np.repeat(classes, np.stack([dwell, gaps], axis=1).ravel())[:n_timesteps]  # (T,)
        logits[steps, chunk, path] += rng.uniform(3.0, 9.0, n_timesteps)
        ambiguous = steps[rng.random(n_timesteps) < ambiguity]
        logits[ambiguous, chunk, rng.integers(0, 5, ambiguous.size)] += rng.uniform(3.0, 9.0, ambiguous.size)
    return torch.from_numpy(logits).float().log_softmax(dim=-1)


def _sequences(moves: torch.Tensor, bases: torch.Tensor) -> list[str]:
    return ["".join(ALPHABET[b] for b in row[m.bool()].tolist()) for m, row in zip(moves, bases)]


@functools.cache
def _paths(n_timesteps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every CTC path of length T (5^T, T) and the label sequence each collapses to, coded in base 5 (5^T,)."""
    paths = torch.tensor(list(itertools.product(range(5), repeat=n_timesteps)))  # (5^T, T)
    previous = torch.nn.functional.pad(paths[:, :-1], (1, 0))  # (5^T, T), blank before the start
    emits = (paths != 0) & (paths != previous)
    codes = torch.zeros(len(paths), dtype=torch.int64)
    for t in range(n_timesteps):
        codes = torch.where(emits[:, t], codes * 5 + paths[:, t], codes)
    return paths, codes


def _code(sequence: str) -> int:
    return functools.reduce(lambda code, base: code * 5 + ALPHABET.index(base), sequence, 0)


def _sequence_probabilities(log_probs: torch.Tensor) -> torch.Tensor:
    """Exhaustive CTC: (N, 5^T) total probability of every label sequence (by code), summing all 5^T paths."""
    n_timesteps, n_chunks, _ = log_probs.shape
    paths, codes = _paths(n_timesteps)
    totals = torch.zeros((n_chunks, 5**n_timesteps), dtype=torch.float64)
    for chunk in range(n_chunks):
        path_log_probs = log_probs[:, chunk].double().gather(1, paths.T).sum(dim=0)  # (5^T,)
        totals[chunk].index_add_(0, codes, path_log_probs.exp())
    return totals


def _assert_most_probable(log_probs: torch.Tensor, beam_width: int) -> None:
    """Beam search's sequence is the most probable one, or ties it within float32 rounding."""
    totals = _sequence_probabilities(log_probs)
    moves, bases, _ = beam_search(log_probs, beam_width, compiled=False)
    for chunk, sequence in enumerate(_sequences(moves, bases)):
        best = int(totals[chunk].argmax())
        found = totals[chunk, _code(sequence)]
        assert _code(sequence) == best or found >= totals[chunk, best] * (1 - 1e-5), (chunk, sequence)


@pytest.mark.parametrize("n_timesteps", [1, 2, 3, 4])
def test_exact_when_the_beam_holds_every_prefix(n_timesteps: int) -> None:
    """With room for every prefix of length <= T (1 + 4 + ... + 4^T), nothing is pruned: the search is exhaustive."""
    torch.manual_seed(n_timesteps)
    width = (4 ** (n_timesteps + 1) - 1) // 3
    sharpness = torch.tensor([0.5, 1.0, 2.0, 4.0]).repeat_interleave(40)  # flat to peaked, 160 chunks
    log_probs = (torch.randn(n_timesteps, 160, 5) * sharpness[:, None]).log_softmax(dim=-1)
    _assert_most_probable(log_probs, width)


@pytest.mark.parametrize("n_timesteps", [5, 6, 7, 8])
def test_a_wide_beam_finds_the_most_probable_sequence(n_timesteps: int) -> None:
    """Width 128 on T <= 8 (width 64 misses about 1 chunk in 300 at T = 6-8 on these flat posteriors)."""
    torch.manual_seed(100 + n_timesteps)
    n_chunks = 150 if n_timesteps < 8 else 50
    log_probs = (torch.randn(n_timesteps, n_chunks, 5) * 2).log_softmax(dim=-1)
    _assert_most_probable(log_probs, 128)


def test_merging_prefixes_beats_the_best_path() -> None:
    """Two paths of "A" (A A, A -) outweigh the single best path "AC"; a prefix search adds them up."""
    probs = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0]], [[0.3, 0.3, 0.4, 0.0, 0.0]]]) + 1e-9  # (T=2, N=1, 5)
    log_probs = probs.log()
    assert _sequences(*greedy(log_probs)[:2]) == ["AC"]
    assert _sequences(*beam_search(log_probs, 1)[:2]) == ["A"]
    assert _sequences(*beam_search(log_probs, 5)[:2]) == ["A"]


def test_width_one_is_greedy_where_every_timestep_has_a_majority_class() -> None:
    """If each timestep's most probable class has posterior > 1/2, the state that greedy's path ends in holds most of
    the single beam's mass, and the candidate greedy takes outweighs every other: width 1 is greedy, qualities too."""
    log_probs = (peaked_posteriors(64, 200, seed=3, ambiguity=0.0) * 2).log_softmax(dim=2)  # sharpened
    clear = log_probs.max(dim=2).values.exp().min(dim=0).values > 0.5  # (N,) chunks with a majority class throughout
    assert clear.sum() >= 32
    log_probs = log_probs[:, clear]
    for got, want in zip(beam_search(log_probs, 1, compiled=False), greedy(log_probs)):
        assert torch.equal(got, want)  # moves, bases and qualities


def test_make_decoder_picks_greedy_for_width_0_or_1() -> None:
    assert make_decoder(0) is greedy and make_decoder(1) is greedy
    decoder = make_decoder(7, beam_cut=10.0)
    assert decoder.func is beam_search and decoder.keywords == {"beam_width": 7, "beam_cut": 10.0}
    with pytest.raises(ValueError):
        make_decoder(-1)
    with pytest.raises(ValueError):
        beam_search(peaked_posteriors(1, 10), 0)


@pytest.mark.parametrize("beam_width", [2, 5, 32])
def test_moves_bases_and_qualities_are_consistent(beam_width: int) -> None:
    log_probs = peaked_posteriors(16, 200, seed=beam_width)
    moves, bases, qualities = beam_search(log_probs, beam_width, compiled=False)
    assert moves.shape == bases.shape == qualities.shape == (16, 200)
    assert moves.dtype == bases.dtype == qualities.dtype == torch.uint8
    assert set(moves.unique().tolist()) <= {0, 1}
    assert torch.equal(bases > 0, moves.bool())  # a base exactly where a move is
    assert not qualities[~moves.bool()].any() and qualities.max() <= MAX_QUALITY
    for sequence, row in zip(_sequences(moves, bases), moves):
        assert len(sequence) == int(row.sum()) > 0


def test_edge_cases() -> None:
    blanks = torch.full((6, 3, 5), -20.0).index_fill_(2, torch.tensor([0]), 0.0).log_softmax(dim=-1)
    moves, bases, qualities = beam_search(blanks, 5)
    assert not moves.any() and not bases.any() and not qualities.any()
    one = peaked_posteriors(1, 1)
    assert beam_search(one, 5)[0].shape == (1, 1)
    half = peaked_posteriors(4, 50).half()  # as the model returns under CUDA autocast
    assert _sequences(*beam_search(half, 5)[:2]) == _sequences(*beam_search(half.float(), 5)[:2])


def test_beam_cut() -> None:
    log_probs = peaked_posteriors(16, 200, seed=5)
    uncut = beam_search(log_probs, 5, compiled=False)
    for got, want in zip(beam_search(log_probs, 5, beam_cut=1e6, compiled=False), uncut):
        assert torch.equal(got, want)  # a cut that prunes nothing
    for got, want in zip(
        beam_search(log_probs, 5, beam_cut=0.0, compiled=False), beam_search(log_probs, 1, compiled=False)
    ):
        assert torch.equal(got, want)  # only the best candidate survives: width 1


def test_calibrate_qualities() -> None:
    moves = torch.tensor([[1, 0, 1, 1]], dtype=torch.uint8)
    qualities = torch.tensor([[10, 0, 0, 45]], dtype=torch.uint8)
    assert torch.equal(calibrate_qualities(qualities, moves, 1.0, 0.0), qualities)
    assert calibrate_qualities(qualities, moves, 0.5, 2.0).tolist() == [[7, 0, 2, 24]]
    assert calibrate_qualities(qualities, moves, 2.0, -30.0).tolist() == [[0, 0, 0, MAX_QUALITY]]


def test_compiled_matches_eager() -> None:
    """The default CPU path (torch.compile'd: unrolled selection at width <= 5, topk beyond) gives eager's output."""
    log_probs = peaked_posteriors(64, 200, seed=7)
    for beam_width in (5, 8):
        for got, want in zip(beam_search(log_probs, beam_width), beam_search(log_probs, beam_width, compiled=False)):
            assert torch.equal(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cpu_and_cuda_agree() -> None:
    log_probs = peaked_posteriors(256, 800, seed=11)
    for beam_width in (1, 5, 32):
        cpu = beam_search(log_probs, beam_width, compiled=False)
        cuda = beam_search(log_probs.cuda(), beam_width)
        assert all(c.device.type == "cuda" for c in cuda)
        same = [torch.equal(a, b.cpu()) for a, b in zip(torch.cat(cpu[:2], 1), torch.cat(cuda[:2], 1))]
        assert np.mean(same) >= 0.99  # moves and bases; float rounding may flip a near tie


@pytest.mark.parametrize("beam_width", [5, 10])
def test_agrees_with_fast_ctc_decode(beam_width: int) -> None:
    fast_ctc_decode = pytest.importorskip("fast_ctc_decode")
    log_probs = peaked_posteriors(300, 800, seed=beam_width)
    moves, bases, _ = beam_search(log_probs, beam_width, compiled=False)
    probs = log_probs.exp().numpy()
    theirs = [fast_ctc_decode.beam_search(probs[:, n], ALPHABET, beam_width, 0.0)[0] for n in range(probs.shape[1])]
    same = np.mean([a == b for a, b in zip(_sequences(moves, bases), theirs)])
    assert same >= 0.99, f"{same:.1%} of chunks agree"


def test_pipeline_stitches_beam_search_like_greedy() -> None:
    """Same contract, same stitching: on a model whose every timestep has a majority class, the stitched beam search
    calls equal greedy decoding of each whole read."""
    from basecall.config import BasecallerConfig
    from basecall.pipeline import basecall_reads
    from tests.test_pipeline import LocalModel, make_read, whole_read_sequence

    model = LocalModel()
    reads = [make_read(f"read{i}", n, seed=i) for i, n in enumerate([157, 401, 5000, 20_000])]
    config = BasecallerConfig(chunksize=400, overlap=80, batch_size=32)
    results = list(basecall_reads(model, reads, config, decode=make_decoder(5)))
    assert [r.read.read_id for r in results] == [r.read_id for r in reads]
    for read, called in zip(reads, results):
        assert called.sequence == whole_read_sequence(model, read)
        assert len(called.qualities) == len(called.sequence) == int(called.moves.sum())
