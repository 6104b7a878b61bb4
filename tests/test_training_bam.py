"""Training labels from Dorado move tables: pod5 signal + an aligned BAM (mv, ts, ns tags; MD or a reference FASTA)."""

from __future__ import annotations

import csv
from array import array
from dataclasses import replace
from pathlib import Path

import numpy as np
import pysam
import pytest

from basecall.errors import InputError
from basecall.rawfiles import random_reads, write_pod5
from basecall.records import Read
from basecall.sequence import reverse_complement
from basecall.simulate import random_genome
from basecall.training.data import LabelledRead, open_labelled, read_chunks
from tests.conftest import shared_data

STRIDE, TRIM = 5, 7  # mv[0] and ts
DWELLS = [1, 2, 1, 1, 3, 1, 1, 2, 1, 1, 1, 1, 2, 1]  # model timesteps of each of the 14 called bases, in signal order
# In signal order: 3 clipped bases, 3 aligned (the 2nd a mismatch), 1 inserted, 2 aligned, 2 reference bases deleted,
# 3 aligned, 2 clipped. The alignment covers 10 reference bases.
CIGAR = [(pysam.CSOFT_CLIP, 3), (pysam.CMATCH, 3), (pysam.CINS, 1), (pysam.CMATCH, 2), (pysam.CDEL, 2),
         (pysam.CMATCH, 3), (pysam.CSOFT_CLIP, 2)]  # fmt: skip
# Called bases start at timesteps 0 1 3 4 5 8 9 10 12 13 14 15 16 18 (end 19), so at samples 7 + 5 * timestep:
# 7 12 22 27 32 47 52 57 67 72 77 82 87 97. The reference bases start with called bases 3 4 5, 7 8, then the two
# deleted ones share 67..72 (67 + 5/3, 67 + 10/3, floored), then called bases 9 10 11; the span ends at base 12.
EXPECTED_STARTS = [27, 32, 47, 57, 67, 68, 70, 72, 77, 82, 87]
CONTIG = "chr1"
SPLIT_ID = "5b3e6c1e-0c55-4f7a-9d1e-6c3f1f0e2a11"


def signal_order_query(span: str) -> str:
    """The called bases for `span` (the reference in signal order) under CIGAR, with a mismatch at span[1]."""
    mismatch = "C" if span[1] != "C" else "G"
    return "TTT" + span[0] + mismatch + span[2] + "A" + span[3:5] + span[7:10] + "GG"


def bam_record(
    header: pysam.AlignmentHeader, read: Read, genome: str, start: int, reverse: bool, md: bool, **tags: object
) -> pysam.AlignedSegment:
    """An aligned record of 10 reference bases from `start`, as Dorado + minimap2 write it (SEQ along the reference)."""
    forward = genome[start : start + 10]
    query = signal_order_query(reverse_complement(forward) if reverse else forward)
    record = pysam.AlignedSegment(header)
    record.query_name = read.read_id
    record.flag = 16 if reverse else 0
    record.reference_id, record.reference_start, record.mapping_quality = 0, start, 60
    record.query_sequence = reverse_complement(query) if reverse else query
    record.cigartuples = CIGAR[::-1] if reverse else CIGAR
    moves = [move for dwell in DWELLS for move in [1] + [0] * (dwell - 1)]
    record.set_tag("mv", array("b", [STRIDE, *moves]))
    record.set_tag("ts", TRIM)
    record.set_tag("ns", read.n_samples)
    if md:  # the mismatch (signal-order span[1]) and deletion (span[5:7]), written along the reference
        record.set_tag("MD", f"3^{forward[3:5]}3{forward[8]}1" if reverse else f"1{forward[1]}3^{forward[5:7]}3")
    for name, value in tags.items():
        record.set_tag(name, value)
    return record


def write_run(directory: Path, md: bool = True) -> tuple[list[Read], str]:
    """A pod5 of 3 simulated reads and their BAM: forward, reverse and split-read records, plus ones to skip."""
    directory.mkdir()
    reads = random_reads(3, seed=11)  # 200-1000, 30,000-60,000 and 1,000-20,000 samples
    genome = random_genome(200, np.random.default_rng(11))
    write_pod5(reads, directory / "reads.pod5")
    header = pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6"}, "SQ": [{"SN": CONTIG, "LN": len(genome)}]})
    split = replace(reads[1], read_id=SPLIT_ID, signal=np.zeros(400, np.int16))  # Dorado split: samples 1000-1400
    with pysam.AlignmentFile(str(directory / "calls.bam"), "wb", header=header) as bam:
        bam.write(bam_record(header, reads[2], genome, 50, reverse=False, md=md))
        secondary = bam_record(header, reads[2], genome, 120, reverse=False, md=md)
        secondary.flag |= 256
        bam.write(secondary)
        bam.write(bam_record(header, reads[0], genome, 100, reverse=True, md=md))
        bam.write(bam_record(header, split, genome, 30, reverse=False, md=md, pi=reads[1].read_id, sp=1000))
        unmapped = pysam.AlignedSegment(header)
        unmapped.query_name, unmapped.flag, unmapped.query_sequence = reads[1].read_id, 4, "ACGT"
        bam.write(unmapped)
    return reads, genome


def check_labels(labelled: list[LabelledRead], reads: list[Read], genome: str) -> None:
    by_id = {read.read_id: read for read in labelled}
    forward, split = reads[2].read_id, SPLIT_ID
    assert sorted(by_id) == sorted([forward, reads[0].read_id, split])  # secondary and unmapped records skipped
    assert by_id[forward].sequence == genome[50:60]
    assert by_id[reads[0].read_id].sequence == reverse_complement(genome[100:110])  # in signal order
    assert by_id[split].sequence == genome[30:40]
    for read in by_id.values():
        assert read.ref_to_signal.tolist() == EXPECTED_STARTS
    assert np.array_equal(by_id[forward].signal, reads[2].signal)
    assert np.array_equal(by_id[reads[0].read_id].signal, reads[0].signal)
    assert np.array_equal(by_id[split].signal, reads[1].signal[1000:1400])  # its part of the parent read's signal
    assert by_id[split].calibration == reads[1].calibration


def test_move_table_labels_in_signal_order(tmp_path) -> None:
    reads, genome = write_run(tmp_path / "run")
    check_labels(list(open_labelled([tmp_path / "run" / "reads.pod5", tmp_path / "run" / "calls.bam"])), reads, genome)
    check_labels(list(open_labelled([tmp_path / "run"])), reads, genome)  # one folder holding both


def test_reference_fasta_instead_of_md(tmp_path) -> None:
    reads, genome = write_run(tmp_path / "run", md=False)
    data = [tmp_path / "run" / "reads.pod5", tmp_path / "run" / "calls.bam"]
    with pytest.raises(InputError, match="no MD tag"):
        list(open_labelled(data))
    fasta = tmp_path / "genome.fa"
    fasta.write_text(f">{CONTIG}\n{genome}\n")
    check_labels(list(open_labelled(data, reference=fasta)), reads, genome)
    fasta.write_text(f">other\n{genome}\n")
    with pytest.raises(InputError, match="no contig chr1"):
        list(open_labelled(data, reference=fasta))


def test_bam_and_pod5_need_each_other(tmp_path) -> None:
    write_run(tmp_path / "run")
    with pytest.raises(InputError, match="no labels"):
        list(open_labelled([tmp_path / "run" / "reads.pod5"]))
    with pytest.raises(InputError, match="give the pod5"):
        list(open_labelled([tmp_path / "run" / "calls.bam"]))


@pytest.mark.shared_data
def test_real_dorado_moves_give_the_truth_labels() -> None:
    from basecall.evaluate import read_calls

    bam = shared_data("r1041_remora/can_mappings.bam")
    reads = list(open_labelled([shared_data("r1041_remora/can_reads.pod5"), bam]))
    truth = dict(read_calls(shared_data("derived/r1041_remora_can.truth.fasta")))  # oriented to the signal
    with shared_data("derived/r1041_remora_can.truth.tsv").open() as handle:
        lines = (line for line in handle if not line.startswith("#"))
        rows = {row["read_id"]: row for row in csv.DictReader(lines, delimiter="\t")}
    with pysam.AlignmentFile(str(bam), check_sq=False) as records:
        moves = {record.query_name: np.asarray(record.get_tag("mv")) for record in records}
    assert sorted(read.read_id for read in reads) == sorted(truth) and len(reads) == 14
    for read in reads:
        assert read.sequence == truth[read.read_id]
        # The span starts where the first aligned called base (q_start, in signal order) starts and ends where the
        # first base after it starts: soft clips are oriented to the signal too.
        row = rows[read.read_id]
        base_starts = int(row["trimmed(ts)"]) + moves[read.read_id][0] * np.flatnonzero(moves[read.read_id][1:])
        assert read.ref_to_signal[0] == base_starts[int(row["q_start"])]
        assert read.ref_to_signal[-1] == base_starts[int(row["q_end"])]
        assert len(read.signal) == int(row["samples(ns)"])
        steps = np.diff(read.ref_to_signal)
        assert (steps >= 0).all() and np.mean(steps == 0) < 1e-3  # equal starts only inside long deletions
        chunks = read_chunks(read, 4000, 5)
        assert len(chunks) > 0
        assert 4000 / 25 < np.median(chunks.lengths) < 4000 / 6  # R10.4.1 at 4 kHz: ≈ 10 samples per base
