"""CTC prefix beam search, both paths: the batched torch search (GPU) and fast-ctc-decode + a Viterbi alignment (CPU).

Exact against exhaustive search on tiny inputs, greedy at width 1, emission timesteps on hand cases, the two paths and
fast-ctc-decode against each other on realistic and on real posteriors, CPU against CUDA, and the command line's BAM
move tables and --save-ctc with beam search."""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from basecall.config import ALPHABET
from basecall.decoder import (
    MAX_QUALITY,
    beam_search,
    calibrate_qualities,
    class_threshold,
    cpu_beam_search,
    greedy,
    make_decoder,
)
from tests.conftest import shared_data

SEARCHES = {"torch": beam_search, "cpu": cpu_beam_search}
NO_CUT = math.inf  # --beam-cut that cuts nothing: fast-ctc-decode's class threshold 0


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


def _assert_most_probable(log_probs: torch.Tensor, beam_width: int, search: str) -> None:
    """Beam search's sequence is the most probable one, or ties it within float32 rounding."""
    totals = _sequence_probabilities(log_probs)
    moves, bases, _ = SEARCHES[search](log_probs, beam_width, NO_CUT)
    for chunk, sequence in enumerate(_sequences(moves, bases)):
        best = int(totals[chunk].argmax())
        found = totals[chunk, _code(sequence)]
        assert _code(sequence) == best or found >= totals[chunk, best] * (1 - 1e-5), (chunk, sequence)


@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize("n_timesteps", [1, 2, 3, 4])
def test_exact_when_the_beam_holds_every_prefix(n_timesteps: int, search: str) -> None:
    """With room for every prefix of length <= T (1 + 4 + ... + 4^T), nothing is pruned: the search is exhaustive."""
    torch.manual_seed(n_timesteps)
    width = (4 ** (n_timesteps + 1) - 1) // 3
    sharpness = torch.tensor([0.5, 1.0, 2.0, 4.0]).repeat_interleave(40)  # flat to peaked, 160 chunks
    log_probs = (torch.randn(n_timesteps, 160, 5) * sharpness[:, None]).log_softmax(dim=-1)
    _assert_most_probable(log_probs, width, search)


@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize("n_timesteps", [5, 6, 7, 8])
def test_a_wide_beam_finds_the_most_probable_sequence(n_timesteps: int, search: str) -> None:
    """Width 128 on T <= 8 (width 64 misses about 1 chunk in 300 at T = 6-8 on these flat posteriors)."""
    torch.manual_seed(100 + n_timesteps)
    n_chunks = 150 if n_timesteps < 8 else 50
    log_probs = (torch.randn(n_timesteps, n_chunks, 5) * 2).log_softmax(dim=-1)
    _assert_most_probable(log_probs, 128, search)


def test_merging_prefixes_beats_the_best_path() -> None:
    """Two paths of "A" (A A, A -) outweigh the single best path "AC"; a prefix search adds them up."""
    probs = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0]], [[0.3, 0.3, 0.4, 0.0, 0.0]]]) + 1e-9  # (T=2, N=1, 5)
    log_probs = probs.log()
    assert _sequences(*greedy(log_probs)[:2]) == ["AC"]
    assert _sequences(*beam_search(log_probs, 1)[:2]) == ["A"]
    assert _sequences(*beam_search(log_probs, 5)[:2]) == ["A"]
    assert _sequences(*cpu_beam_search(log_probs, 5)[:2]) == ["A"]


def test_width_one_is_greedy_where_every_timestep_has_a_majority_class() -> None:
    """If each timestep's most probable class has posterior > 1/2, the state that greedy's path ends in holds most of
    the single beam's mass, and the candidate greedy takes outweighs every other: width 1 is greedy, qualities too."""
    log_probs = (peaked_posteriors(64, 200, seed=3, ambiguity=0.0) * 2).log_softmax(dim=2)  # sharpened
    clear = log_probs.max(dim=2).values.exp().min(dim=0).values > 0.5  # (N,) chunks with a majority class throughout
    assert clear.sum() >= 32
    log_probs = log_probs[:, clear]
    for got, want in zip(beam_search(log_probs, 1), greedy(log_probs)):
        assert torch.equal(got, want)  # moves, bases and qualities


def test_make_decoder_picks_greedy_for_width_0_or_1_and_the_beam_search_of_the_device() -> None:
    assert make_decoder(0) is greedy and make_decoder(1) is greedy
    decoder = make_decoder(7, beam_cut=10.0)
    assert decoder.keywords == {"beam_width": 7, "beam_cut": 10.0}
    log_probs = peaked_posteriors(4, 100, seed=2)
    for got, want in zip(decoder(log_probs), cpu_beam_search(log_probs, 7, 10.0)):
        assert torch.equal(got, want)  # on the CPU: fast-ctc-decode
    with pytest.raises(ValueError):
        make_decoder(-1)
    for search in SEARCHES.values():
        with pytest.raises(ValueError):
            search(peaked_posteriors(1, 10), 0)


@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize("beam_width", [2, 5, 32])
def test_moves_bases_and_qualities_are_consistent(beam_width: int, search: str) -> None:
    log_probs = peaked_posteriors(16, 200, seed=beam_width)
    moves, bases, qualities = SEARCHES[search](log_probs, beam_width, None)
    assert moves.shape == bases.shape == qualities.shape == (16, 200)
    assert moves.dtype == bases.dtype == qualities.dtype == torch.uint8
    assert set(moves.unique().tolist()) <= {0, 1}
    assert torch.equal(bases > 0, moves.bool())  # a base exactly where a move is
    assert not qualities[~moves.bool()].any() and qualities.max() <= MAX_QUALITY
    for sequence, row in zip(_sequences(moves, bases), moves):
        assert len(sequence) == int(row.sum()) > 0


@pytest.mark.parametrize("search", list(SEARCHES))
def test_edge_cases(search: str) -> None:
    decode = SEARCHES[search]
    blanks = torch.full((6, 3, 5), -20.0).index_fill_(2, torch.tensor([0]), 0.0).log_softmax(dim=-1)
    moves, bases, qualities = decode(blanks, 5, None)
    assert not moves.any() and not bases.any() and not qualities.any()
    one = peaked_posteriors(1, 1)
    assert decode(one, 5, None)[0].shape == (1, 1)
    half = peaked_posteriors(4, 50).half()  # as the model returns under CUDA autocast
    assert _sequences(*decode(half, 5, None)[:2]) == _sequences(*decode(half.float(), 5, None)[:2])


def test_beam_cut() -> None:
    log_probs = peaked_posteriors(16, 200, seed=5)
    uncut = beam_search(log_probs, 5)
    for got, want in zip(beam_search(log_probs, 5, beam_cut=1e6), uncut):
        assert torch.equal(got, want)  # a cut that prunes nothing
    for got, want in zip(beam_search(log_probs, 5, beam_cut=0.0), beam_search(log_probs, 1)):
        assert torch.equal(got, want)  # only the best candidate survives: width 1


def test_beam_cut_as_fast_ctc_decodes_class_threshold() -> None:
    assert class_threshold(None) == class_threshold(NO_CUT) == 0.0
    assert class_threshold(math.log(100)) == pytest.approx(0.01)
    assert class_threshold(0.0) == class_threshold(1.0) == 0.19  # fast-ctc-decode needs < 1/5
    log_probs = peaked_posteriors(16, 200, seed=5)
    uncut = _sequences(*cpu_beam_search(log_probs, 5)[:2])
    assert _sequences(*cpu_beam_search(log_probs, 5, 20.0)[:2]) == uncut  # a cut below every posterior
    assert _sequences(*cpu_beam_search(log_probs, 5, 0.0)[:2]) != uncut  # 0.19 prunes


def test_make_decoder_calibrates_beam_search_qualities() -> None:
    log_probs = peaked_posteriors(8, 200, seed=9)
    moves, bases, qualities = cpu_beam_search(log_probs, 5)
    got = make_decoder(5, qscale=0.5, qbias=3.0)(log_probs)
    assert torch.equal(got[0], moves) and torch.equal(got[1], bases)
    assert torch.equal(got[2], calibrate_qualities(qualities, moves, 0.5, 3.0))


def test_calibrate_qualities() -> None:
    moves = torch.tensor([[1, 0, 1, 1]], dtype=torch.uint8)
    qualities = torch.tensor([[10, 0, 0, 45]], dtype=torch.uint8)
    assert torch.equal(calibrate_qualities(qualities, moves, 1.0, 0.0), qualities)
    assert calibrate_qualities(qualities, moves, 0.5, 2.0).tolist() == [[7, 0, 2, 24]]
    assert calibrate_qualities(qualities, moves, 2.0, -30.0).tolist() == [[0, 0, 0, MAX_QUALITY]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cpu_and_cuda_agree() -> None:
    log_probs = peaked_posteriors(256, 800, seed=11)
    for beam_width in (1, 5, 32):
        cpu = beam_search(log_probs, beam_width)
        cuda = beam_search(log_probs.cuda(), beam_width)
        assert all(c.device.type == "cuda" for c in cuda)
        same = [torch.equal(a, b.cpu()) for a, b in zip(torch.cat(cpu[:2], 1), torch.cat(cuda[:2], 1))]
        assert np.mean(same) >= 0.99  # moves and bases; float rounding may flip a near tie


@pytest.mark.parametrize("beam_width", [5, 10])
def test_agrees_with_fast_ctc_decode(beam_width: int) -> None:
    import fast_ctc_decode

    log_probs = peaked_posteriors(300, 800, seed=beam_width)
    moves, bases, _ = beam_search(log_probs, beam_width)
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


def _hand_made(classes: list[int], floor: float = 1e-3) -> torch.Tensor:
    """(T, 1, 5) log-probabilities: each timestep's class at 1 - 4 * floor, the others at floor."""
    probs = torch.full((len(classes), 1, 5), floor)
    probs[torch.arange(len(classes)), 0, torch.tensor(classes)] = 1 - 4 * floor
    return probs.log()


HAND_CASES = [  # classes per timestep (0 blank, 1-4 ACGT), and the timesteps at which a base starts
    ([0, 1, 1, 1, 0, 2, 2, 0, 0, 3], [1, 5, 9]),
    ([1, 1, 0, 1, 2, 2, 2], [0, 3, 4]),  # A A: a blank between them
    ([0, 0, 4, 4, 4, 4], [2]),
    ([1, 2, 3, 4], [0, 1, 2, 3]),
    ([0, 0, 1, 0, 0, 2, 0, 0, 3], [2, 5, 8]),
    ([0, 0, 0, 0, 0], []),
]


@pytest.mark.parametrize("search", list(SEARCHES))
@pytest.mark.parametrize(("classes", "starts"), HAND_CASES)
def test_moves_are_the_first_timestep_of_each_run(search: str, classes: list[int], starts: list[int]) -> None:
    """Where a base's run is plain, its move is at the run's first timestep, and moves, bases and qualities equal
    greedy's (the same quality for a base emitted at the same timestep)."""
    log_probs = _hand_made(classes)
    got = SEARCHES[search](log_probs, 5, None)
    assert torch.nonzero(got[0][0]).flatten().tolist() == starts
    for mine, greedy_s in zip(got, greedy(log_probs)):
        assert torch.equal(mine, greedy_s)


def test_fast_ctc_decodes_timesteps_are_where_its_search_made_each_prefix() -> None:
    """Why the CPU path aligns: fast-ctc-decode's timesteps are where its search first made each prefix, with no cut
    long before the bases (a prefix is made as soon as the one before it is in the beam), with a cut where the base's
    posterior first reaches it; the bases start at 2, 5 and 8."""
    import fast_ctc_decode

    probs = _hand_made([0, 0, 1, 0, 0, 2, 0, 0, 3])[:, 0].exp().numpy()  # (T, 5)
    assert fast_ctc_decode.beam_search(probs, ALPHABET, 5, 0.0) == ("ACG", [0, 1, 6])
    assert fast_ctc_decode.beam_search(probs, ALPHABET, 5, 1e-2) == ("ACG", [2, 5, 8])


def viterbi_emissions(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Reference CTC Viterbi alignment over every state (slow): the first timestep of each base's run (L,) on the
    most probable path through log_probs (T, 5) that collapses to labels (L,)."""
    n_states = 2 * len(labels) + 1
    state_class = np.zeros(n_states, np.int64)
    state_class[1::2] = labels
    skip = np.zeros(n_states, bool)
    skip[3::2] = labels[1:] != labels[:-1]
    score = np.full(n_states, -np.inf)
    score[:2] = log_probs[0, state_class[:2]]
    moved = np.zeros((len(log_probs), n_states), np.int64)
    for t in range(1, len(log_probs)):
        one, two = np.full(n_states, -np.inf), np.full(n_states, -np.inf)
        one[1:], two[2:] = score[:-1], score[:-2]
        candidates = np.stack([score, one, np.where(skip, two, -np.inf)])  # (3, S)
        moved[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[t, state_class]
    state = n_states - 2 if len(labels) and score[-2] > score[-1] else n_states - 1
    emitted = np.empty(len(labels), np.int64)
    for t in range(len(log_probs) - 1, -1, -1):
        if state % 2:
            emitted[state // 2] = t
        state -= moved[t, state]
    return emitted


def _assert_cpu_moves_are_the_viterbi_alignment(log_probs: torch.Tensor) -> None:
    """The CPU path's banded alignment gives the full alignment's timesteps, base for base."""
    moves, bases, _ = cpu_beam_search(log_probs, 5)
    for chunk in range(log_probs.shape[1]):
        starts = np.flatnonzero(moves[chunk].numpy())
        labels = bases[chunk].numpy()[starts].astype(np.int64)
        assert np.array_equal(starts, viterbi_emissions(log_probs[:, chunk].double().numpy(), labels)), chunk


def test_cpu_moves_are_the_viterbi_alignment_of_the_sequence() -> None:
    _assert_cpu_moves_are_the_viterbi_alignment(peaked_posteriors(24, 300, seed=17, ambiguity=0.2))


def test_cpu_beam_search_decodes_in_threads() -> None:
    """fast-ctc-decode and the compiled alignment release the GIL: threads decode at once, to the same result."""
    batches = [peaked_posteriors(8, 200, seed=seed) for seed in range(4)]
    expected = [cpu_beam_search(batch, 5) for batch in batches]
    results: dict[int, tuple] = {}
    def decode(i: int) -> None:
        results[i] = cpu_beam_search(batches[i], 5)

    threads = [threading.Thread(target=decode, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, want in enumerate(expected):
        assert all(torch.equal(a, b) for a, b in zip(results[i], want))


@pytest.fixture(scope="module")
def real_posteriors() -> torch.Tensor:
    """(T, N, 5) log-probabilities of the shipped r9.4.1-small on real reads: up to 6 chunks of each of the first 8
    lambda reads and the first chunk of 40 SARS-CoV-2 reads (75 chunks of 800 timesteps)."""
    from basecall.chunker import pad_for_chunks
    from basecall.model import load_model
    from basecall.readers import open_reads
    from basecall.records import Read
    from basecall.signal import scaled_signal

    inputs = [
        (shared_data("r941_lambda_marcpaga", "fast5"), 8, 6),
        (shared_data("r941_sarscov2_slorado", "corona_r9.blow5"), 40, 1),
    ]
    loaded = load_model("r9.4.1-small")
    settings, stride = loaded.config.basecaller, loaded.model.stride
    chunks = []
    for path, n_reads, n_chunks in inputs:
        reads = itertools.islice((r for r in open_reads([str(path)]) if isinstance(r, Read)), n_reads)
        for read in reads:
            padded, starts = pad_for_chunks(scaled_signal(read), settings.chunksize, settings.overlap, stride)
            chunks += [padded[start : start + settings.chunksize] for start in starts[:n_chunks]]
    signal = torch.from_numpy(np.stack(chunks)).unsqueeze(1)  # (N, 1, chunksize)
    with torch.inference_mode():
        return torch.cat([loaded.model(batch) for batch in signal.split(32)], dim=1)  # (T, N, 5)


@pytest.mark.shared_data
@pytest.mark.parametrize("beam_width", [5, 10])
def test_torch_search_agrees_with_fast_ctc_decode_on_real_posteriors(real_posteriors, beam_width: int) -> None:
    import fast_ctc_decode

    ours = _sequences(*beam_search(real_posteriors, beam_width)[:2])
    probs = real_posteriors.exp().permute(1, 0, 2).contiguous().numpy()  # (N, T, 5)
    theirs = [fast_ctc_decode.beam_search(chunk, ALPHABET, beam_width, 0.0)[0] for chunk in probs]
    assert np.mean([a == b for a, b in zip(ours, theirs)]) >= 0.99
    cpu = _sequences(*cpu_beam_search(real_posteriors, beam_width)[:2])  # the product's CPU path
    assert np.mean([a == b for a, b in zip(ours, cpu)]) >= 0.99


@pytest.mark.shared_data
def test_cpu_moves_are_the_viterbi_alignment_on_real_posteriors(real_posteriors) -> None:
    _assert_cpu_moves_are_the_viterbi_alignment(real_posteriors[:, ::4])


def test_bam_move_tables_with_beam_search(tmp_path, tiny_model_dir) -> None:
    """--emit-moves with --beam-width 5: the BAM holds the FASTQ's calls, one move per base on the model's grid."""
    import pysam
    from click.testing import CliRunner

    from basecall.cli import cli
    from basecall.rawfiles import random_reads, write_pod5

    write_pod5(random_reads(4, seed=3), tmp_path / "reads.pod5")
    common = ["basecaller", "-m", str(tiny_model_dir), str(tmp_path / "reads.pod5"), "--beam-width", "5", "-q"]
    fastq, bam = tmp_path / "calls.fastq", tmp_path / "calls.bam"
    for out, extra in ((fastq, []), (bam, ["--emit-moves"])):
        result = CliRunner().invoke(cli, [*common, "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
    expected = {name.split()[0][1:]: (seq, qual) for name, seq, _, qual in _fastq_records(fastq)}
    with pysam.AlignmentFile(str(bam), check_sq=False) as records:
        for record in records.fetch(until_eof=True):
            sequence, qualities = expected.pop(record.query_name)
            assert record.query_sequence == sequence and len(sequence) > 0
            assert pysam.qualities_to_qualitystring(record.query_qualities) == qualities
            moves = record.get_tag("mv")  # the stride, then a flag per model timestep
            assert moves[0] == 5 and len(moves) - 1 == -(-record.get_tag("ns") // 5)
            assert sum(moves[1:]) == len(sequence)
    assert not expected


def _fastq_records(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    return [lines[i : i + 4] for i in range(0, len(lines), 4)]


@pytest.mark.shared_data
def test_save_ctc_with_beam_search(tmp_path: Path) -> None:
    """--save-ctc with --beam-width 5 on lambda reads: chunks labelled with slices of the genome."""
    from click.testing import CliRunner

    from basecall.cli import cli
    from basecall.training.data import open_labelled
    from tests.test_save_ctc import LAMBDA, READ_IDS, bases, revcomp

    fast5, fasta = shared_data(LAMBDA, "fast5"), shared_data(LAMBDA, "Lambda_phage.fna")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(READ_IDS) + "\n")
    args = ["basecaller", "-m", "r9.4.1-small", str(fast5), "--read-ids", str(ids), "-o", str(tmp_path / "c.fastq")]
    result = CliRunner().invoke(
        cli, [*args, "--device", "cpu", "--beam-width", "5", "--reference", str(fasta), "--save-ctc",
              str(tmp_path / "ctc"), "--min-accuracy", "0.8"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [chunk_set] = open_labelled([tmp_path / "ctc"])
    assert len(chunk_set) > 20
    genome = "".join(line for line in fasta.read_text().splitlines() if not line.startswith(">"))
    for row in range(len(chunk_set)):
        label = bases(chunk_set.references[row, : chunk_set.lengths[row]])
        assert label in genome or label in revcomp(genome), row
