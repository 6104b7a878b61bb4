"""`basecall basecaller --reference REF --save-ctc DIR`: training chunks from calls that align well (growing labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from basecall.cli import cli
from basecall.errors import ExitCode
from basecall.evaluate import _walk_cigar
from basecall.records import Calibration, CalledRead, Failure, Read
from basecall.signal import scaled_signal
from basecall.training.data import ChunkSet, open_labelled
from basecall.training.save_ctc import AlignedCall, ChunkCollector, chunk_labels, drop_reason
from tests.conftest import shared_data

_CODES = {"A": 1, "C": 2, "G": 3, "T": 4, "N": 0}
_M, _I, _D = 0, 1, 2  # CIGAR operations as mappy gives them


def codes(bases: str) -> np.ndarray:
    return np.array([_CODES[b] for b in bases], np.uint8)


def bases(label: np.ndarray) -> str:
    return "".join("NACGT"[code] for code in label)


def revcomp(sequence: str) -> str:
    return sequence[::-1].translate(str.maketrans("ACGT", "TGCA"))


# A hand-made case. Ten called bases, stride 2, chunks of 8 samples (4 timesteps). Bases 1-8 are aligned (0 and 9
# clipped) with CIGAR 3M 1I 2M 1D 2M to the reference segment ACGTGACT: read-strand query ACG T TG - CA, where T is
# inserted, the reference A is deleted and the last reference base T is a mismatch (called A).
CIGAR = [[3, _M], [1, _I], [2, _M], [1, _D], [2, _M]]
REF_SEGMENT = "ACGTGACT"
QUERY_ON_REF_STRAND = "ACGTTGCA"
BASE_TIMESTEPS = [0, 1, 3, 4, 6, 7, 8, 10, 11, 13]  # → first samples 0 2 6 8 | 12 14 16 | 20 22 | 26
STRIDE, CHUNKSIZE, N_SAMPLES = 2, 8, 30


def hand_made(reverse: bool) -> tuple[np.ndarray, AlignedCall]:
    moves = np.zeros(N_SAMPLES // STRIDE, np.uint8)  # (15,)
    moves[BASE_TIMESTEPS] = 1
    query_before = _walk_cigar(CIGAR, QUERY_ON_REF_STRAND, REF_SEGMENT)[1]  # (8,) the evaluator's own CIGAR walk
    assert query_before.tolist() == [0, 1, 2, 4, 5, 6, 6, 7]
    return moves, AlignedCall(1, 9, reverse, codes(REF_SEGMENT), query_before)


def test_hand_made_plus_strand_labels() -> None:
    moves, aligned = hand_made(reverse=False)
    starts, labels = chunk_labels(moves, STRIDE, N_SAMPLES, CHUNKSIZE, aligned)
    # chunks from the first aligned base (sample 2) to the start of the first clipped one (26)
    assert starts.tolist() == [2, 10, 18]
    # called bases 1-3 → ACG; 4-6 (T inserted) → TG; 7-8 → the deleted A goes with the next base, then C and T (mismatch)
    assert [bases(label) for label in labels] == ["ACG", "TG", "ACT"]
    assert "".join(bases(label) for label in labels) == REF_SEGMENT  # consecutive chunks tile the reference


def test_hand_made_minus_strand_labels() -> None:
    moves, aligned = hand_made(reverse=True)  # the read's bases 1-8 are revcomp(QUERY_ON_REF_STRAND) = TGCAACGT
    starts, labels = chunk_labels(moves, STRIDE, N_SAMPLES, CHUNKSIZE, aligned)
    assert starts.tolist() == [2, 10, 18]
    # read bases 1-3 are reference-strand query bases 7, 6, 5 → reference GACT, reverse-complemented; and so on
    assert [bases(label) for label in labels] == ["AGTC", "AC", "GT"]
    assert "".join(bases(label) for label in labels) == revcomp(REF_SEGMENT)


def test_chunks_stop_inside_the_alignment_and_short_reads_give_none() -> None:
    moves, aligned = hand_made(reverse=False)
    starts, _ = chunk_labels(moves, STRIDE, N_SAMPLES, 12, aligned)
    assert starts.tolist() == [2, 14]  # a third chunk would reach past sample 26, into the clipped base 9
    starts, labels = chunk_labels(moves, STRIDE, N_SAMPLES, 32, aligned)
    assert starts.tolist() == [] and labels == []


def test_drop_reasons() -> None:
    assert drop_reason(codes("ACGT"), 4) is None
    assert drop_reason(codes(""), 4) == "no reference bases"
    assert drop_reason(codes("ACNT"), 4) == "reference N"
    assert drop_reason(codes("ACGTA"), 4) == "too many bases for CTC"
    assert drop_reason(codes("AACG"), 4) == "too many bases for CTC"  # CTC needs a blank between the two As


@pytest.fixture(scope="module")
def genome() -> str:
    return "".join(np.random.default_rng(7).choice(list("ACGT"), 6000))


def synthetic_read(read_id: str, n_samples: int, seed: int) -> Read:
    signal = np.random.default_rng(seed).normal(500, 60, n_samples).astype(np.int16)  # (n_samples,) raw ADC
    return Read(read_id, signal, Calibration(10.0, 0.2), 4000.0, "run", 1, 0, "synthetic.pod5")


@pytest.mark.parametrize("strand", ["+", "-"])
def test_collector_aligns_with_mappy_and_cuts_the_signal_the_model_saw(genome, tmp_path, strand) -> None:
    reference = tmp_path / "genome.fa"
    reference.write_text(f">chr\n{genome}\n")
    forward = genome[1000:3400]
    call = forward[:700] + ("A" if forward[700] != "A" else "C") + forward[701:]  # one mismatch at 700
    if strand == "-":
        call = revcomp(call)
    stride, chunksize = 5, 500
    rng = np.random.default_rng(1)
    base_timesteps = np.cumsum(rng.integers(1, 4, len(call)))  # (n_bases,) 1-3 timesteps per base
    moves = np.zeros(int(base_timesteps[-1]) + 4, np.uint8)  # (n_timesteps,)
    moves[base_timesteps] = 1
    n_samples = len(moves) * stride
    read = synthetic_read("r1", n_samples, seed=2)
    called = CalledRead(read.without_signal(), n_samples, call, np.full(len(call), 20, np.uint8), moves, stride)

    collector = ChunkCollector(tmp_path / "ctc", reference, chunksize)
    results = list(collector.keep_signals([Failure("bad.pod5", "unreadable"), read]))
    collector.add(results[0])  # a failed file: nothing to cut, but it keeps the results in step with the inputs
    collector.add(called)
    assert (collector.n_called, collector.n_passed) == (1, 1)
    saved = collector.save()

    # expected: no indels, so called base i labels reference base i (the reference's base at the mismatch)
    truth = forward if strand == "+" else revcomp(forward)
    base_starts = base_timesteps * stride
    starts = np.arange(base_starts[0], n_samples - chunksize + 1, chunksize)
    starts = starts[starts + chunksize <= n_samples]
    expected = [
        truth[a:b]
        for a, b in zip(np.searchsorted(base_starts, starts), np.searchsorted(base_starts, starts + chunksize))
    ]
    assert len(saved) == len(starts) > 3
    assert [bases(saved.references[i, : saved.lengths[i]]) for i in range(len(saved))] == expected
    signal = scaled_signal(read)  # (n_samples,) float32
    assert np.array_equal(saved.chunks, np.stack([signal[s : s + chunksize] for s in starts]))

    loaded = list(open_labelled([tmp_path / "ctc"]))  # what `basecall train DIR` reads
    assert len(loaded) == 1 and isinstance(loaded[0], ChunkSet)
    assert loaded[0].chunks.dtype == np.float32 and loaded[0].chunks.shape == (len(starts), chunksize)
    assert loaded[0].references.dtype == np.uint8 and np.array_equal(loaded[0].references, saved.references)
    assert np.array_equal(loaded[0].lengths, saved.lengths)
    assert sorted(p.name for p in (tmp_path / "ctc").iterdir()) == [
        "chunks.npy",
        "reference_lengths.npy",
        "references.npy",
    ]


def test_thresholds_leave_out_reads_that_align_badly(genome, tmp_path) -> None:
    reference = tmp_path / "genome.fa"
    reference.write_text(f">chr\n{genome}\n")
    junk = "".join(np.random.default_rng(3).choice(list("ACGT"), 2000))
    half = genome[2000:3000] + junk[:1000]  # aligned over half its length: coverage ≈ 0.5
    collector = ChunkCollector(tmp_path / "ctc", reference, 500, min_coverage=0.9, min_accuracy=0.9)
    for i, call in enumerate([junk, half]):
        moves = np.tile(np.array([1, 0], np.uint8), len(call))  # (2 * n_bases,)
        read = synthetic_read(f"r{i}", len(moves) * 5, seed=i)
        list(collector.keep_signals([read]))
        collector.add(CalledRead(read.without_signal(), len(moves) * 5, call, np.zeros(len(call), np.uint8), moves, 5))
    assert (collector.n_called, collector.n_passed) == (2, 0)
    assert len(collector.save()) == 0
    assert len(ChunkSet.load(tmp_path / "ctc")) == 0


def test_usage_errors_and_help() -> None:
    result = CliRunner().invoke(cli, ["basecaller", "x", "--save-ctc", "out"])
    assert result.exit_code == ExitCode.USAGE and "--save-ctc needs --reference" in result.output
    result = CliRunner().invoke(cli, ["basecaller", "x", "--reference", __file__])
    assert result.exit_code == ExitCode.USAGE and "--reference is only used with --save-ctc" in result.output
    result = CliRunner().invoke(
        cli, ["basecaller", "x", "-o", "o.fastq", "--resume", "--reference", __file__, "--save-ctc", "d"]
    )
    assert result.exit_code == ExitCode.USAGE and "--save-ctc cannot be combined with --resume" in result.output
    result = CliRunner().invoke(cli, ["basecaller", "--help"], terminal_width=200)
    assert "--min-coverage" in result.output and "--min-accuracy" in result.output
    assert "matches / (matches + mismatches + insertions + deletions)" in result.output


LAMBDA = "r941_lambda_marcpaga"
# six of the 50 lambda reads (keeps the test to seconds): four that r9.4.1-small calls at ≈ 0.81 identity over
# > 0.95 of their length (two per strand), one it calls too badly (≈ 0.64 identity), one that does not map
READ_IDS = [
    "91fec03e-e234-4e42-ba4c-6b65a69bde19", "566f5783-8562-40f8-8e71-46fcd655b6f9",
    "ba4e4763-b8dc-4ab4-bd4a-d45f220ac182", "878a37b2-21a5-48a2-a9ad-b4a31a727268",
    "b672a551-81f4-4a9f-b7ad-f8e6545e4c61", "f260510e-e38c-4bb3-81cd-7c0d4c78e7f3",
]  # fmt: skip


@pytest.mark.shared_data
def test_lambda_reads_with_the_shipped_model_give_chunks_labelled_with_the_genome(tmp_path: Path) -> None:
    import mappy

    fast5, fasta = shared_data(LAMBDA, "fast5"), shared_data(LAMBDA, "Lambda_phage.fna")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(READ_IDS) + "\n")
    out, ctc = tmp_path / "calls.fastq", tmp_path / "ctc"
    args = ["basecaller", "-m", "r9.4.1-small", str(fast5), "--read-ids", str(ids), "-o", str(out), "--device", "cpu"]
    result = CliRunner().invoke(
        cli, [*args, "--reference", str(fasta), "--save-ctc", str(ctc), "--min-accuracy", "0.8"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().count("\n@") + 1 == len(READ_IDS)  # the FASTQ as usual
    line = next(line for line in result.output.splitlines() if "save-ctc:" in line)
    n_passed, n_called = (int(word) for word in line.split("save-ctc: ")[1].split(" called")[0].split(" of "))
    assert n_called == len(READ_IDS) and 2 <= n_passed <= 4  # the bad and the unmapped read never pass

    [chunk_set] = open_labelled([ctc])  # what `basecall train DIR` reads
    assert len(chunk_set) > 20 and f"{len(chunk_set)} chunks saved" in line
    assert chunk_set.chunks.shape == (len(chunk_set), 4000) and chunk_set.chunks.dtype == np.float32
    assert np.isfinite(chunk_set.chunks).all() and abs(float(np.median(chunk_set.chunks))) < 0.5  # normalised
    genome = next(mappy.fastx_read(str(fasta)))[1]
    strands = {"+": genome, "-": revcomp(genome)}
    found = set()
    for row in range(len(chunk_set)):
        label = bases(chunk_set.references[row, : chunk_set.lengths[row]])
        assert 4000 / 20 < len(label) <= 800 and not chunk_set.references[row, chunk_set.lengths[row] :].any()
        hits = {strand for strand, sequence in strands.items() if label in sequence}
        assert hits, f"chunk {row}: label is not a slice of the lambda genome or its reverse complement"
        found |= hits
    assert found == {"+", "-"}
