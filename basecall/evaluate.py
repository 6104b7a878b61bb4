"""Accuracy of basecalls against a reference: align each read with minimap2 (`mappy`) and count its errors.

Per read, from the primary alignment only (walking its CIGAR and comparing the read's bases with the reference's):

- matches / mismatches: aligned columns (CIGAR M) where the read base equals / differs from the reference base;
- insertions / deletions: read bases absent from the reference (I) / reference bases absent from the read (D);
- identity = matches / (matches + mismatches + insertions + deletions), 0 for an unmapped read;
- query coverage = aligned read span (q_end - q_start) / read length.

Homopolymers (see `_homopolymers`): a reference homopolymer is a maximal run of >= 3 identical bases (not N) lying
inside the alignment with both flanking reference bases inside it too. Its read segment is every read base aligned after
the left flank's column and before the right flank's column (matches, mismatches and insertions, so an insertion at
either edge of the run counts). The run is called correctly when that segment is exactly the run (same base, same
length); otherwise it is a homopolymer error (length changed, or another base inside). A substituted flank is a
mismatch only. Homopolymer error rate = errors / runs scored, pooled over mapped reads.

Presets: `map-ont` is minimap2's default for nanopore reads. Short noisy reads fall under its chaining thresholds
(simulated 400-base reads at ~0.83 identity: 24% mapped; 1,000 bases at ~0.81: 61%; 2,000 bases: 94%), while
`sensitive` (k=11, w=3, min_cnt=2, min_chain_score=15, min_dp_score=20) maps all of them. `sensitive` also finds
spurious short or ~0.5-identity alignments for 1-10% of random (junk) reads, so `auto` uses it only for reads shorter
than `AUTO_SENSITIVE_BELOW` bases and `map-ont` for longer ones. Each read records the preset that aligned it.

Quality calibration (`evaluate --qscores`) is in `basecall.qscores`; the calls stored in fast5 files
(`evaluate --from-fast5`) are read by `basecall.stored_calls`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from basecall.errors import InputError, one_line
from basecall.sequence import reverse_complement

if TYPE_CHECKING:
    import mappy

log = logging.getLogger(__name__)

PresetName = Literal["map-ont", "sensitive"]
PresetChoice = Literal["map-ont", "sensitive", "auto"]
PRESETS: dict[str, dict[str, int]] = {
    "map-ont": {},
    "sensitive": {"k": 11, "w": 3, "min_cnt": 2, "min_chain_score": 15, "min_dp_score": 20},
}
AUTO_SENSITIVE_BELOW = 2000  # bases: under `auto`, shorter reads are aligned with the `sensitive` preset
HOMOPOLYMER_MIN = 3  # bases: shortest reference run scored as a homopolymer

_MATCH, _INSERTION, _DELETION = 0, 1, 2  # CIGAR operations as mappy reports them (minimap2 writes M, never =/X)


@dataclass(frozen=True)
class ReadAccuracy:
    """One read's primary alignment (or its absence). Coordinates are 0-based, end-exclusive; lengths in bases."""

    read_id: str
    n_bases: int
    mapped: bool
    preset: str  # the preset this read was aligned with
    reference: str = ""  # contig name; "" when unmapped
    ref_start: int = 0
    ref_end: int = 0
    strand: str = ""  # "+" or "-"; "" when unmapped
    query_start: int = 0
    query_end: int = 0
    mapq: int = 0
    matches: int = 0
    mismatches: int = 0
    insertions: int = 0
    deletions: int = 0
    homopolymers: int = 0  # reference homopolymers scored in this alignment
    homopolymer_errors: int = 0

    @property
    def n_columns(self) -> int:
        """Alignment columns: matches + mismatches + insertions + deletions."""
        return self.matches + self.mismatches + self.insertions + self.deletions

    @property
    def identity(self) -> float:
        return self.matches / self.n_columns if self.n_columns else 0.0

    @property
    def query_coverage(self) -> float:
        return (self.query_end - self.query_start) / self.n_bases if self.n_bases else 0.0

    def row(self) -> dict[str, object]:
        """The per-read TSV row: every field plus identity and query coverage."""
        row: dict[str, object] = dataclasses.asdict(self)
        row["identity"] = round(self.identity, 6)
        row["query_coverage"] = round(self.query_coverage, 6)
        return row


@dataclass(frozen=True)
class Summary:
    """A call set's accuracy. Identities are fractions; error rates are events per alignment column, pooled over
    mapped reads (so mismatch + insertion + deletion rate = 1 - pooled identity); None where nothing was mapped."""

    n_reads: int
    n_mapped: int
    mapped_fraction: float | None
    median_identity: float | None  # over mapped reads
    mean_identity: float | None
    median_identity_all: float | None  # over all reads, unmapped counted as 0
    mean_identity_all: float | None
    mismatch_rate: float | None
    insertion_rate: float | None
    deletion_rate: float | None
    n_columns: int  # alignment columns over mapped reads
    n_homopolymers: int  # reference homopolymers scored
    homopolymer_error_rate: float | None  # homopolymer errors / homopolymers scored
    presets: dict[str, int]  # reads aligned with each preset

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class Evaluator:
    """Aligns reads to one reference; the minimap2 index for a preset is built when a read first needs it."""

    def __init__(self, reference: str | Path, preset: PresetChoice = "auto") -> None:
        if preset not in (*PRESETS, "auto"):
            raise ValueError(f"preset must be one of {', '.join([*PRESETS, 'auto'])}, not {preset!r}")
        self.reference = Path(reference)
        if not self.reference.is_file():
            raise InputError(f"{reference}: no such reference file")
        self.preset = preset
        self._aligners: dict[str, mappy.Aligner] = {}

    def preset_for(self, n_bases: int) -> PresetName:
        if self.preset != "auto":
            return self.preset
        return "sensitive" if n_bases < AUTO_SENSITIVE_BELOW else "map-ont"

    def aligner(self, preset: PresetName) -> mappy.Aligner:
        if preset not in self._aligners:
            self._aligners[preset] = _load_aligner(self.reference, preset)
        return self._aligners[preset]

    def align(self, sequence: str) -> tuple[PresetName, mappy.Alignment | None, str]:
        """(preset, primary alignment or None, aligned reference segment) for upper-case bases."""
        preset = self.preset_for(len(sequence))
        aligner = self.aligner(preset)
        hit = next((hit for hit in aligner.map(sequence) if hit.is_primary), None)
        return preset, hit, aligner.seq(hit.ctg, hit.r_st, hit.r_en) if hit else ""

    def evaluate(self, read_id: str, sequence: str) -> ReadAccuracy:
        """Align one read (bases as a string, any case) and count the errors of its primary alignment."""
        return self.evaluate_columns(read_id, sequence)[0]

    def evaluate_columns(self, read_id: str, sequence: str) -> tuple[ReadAccuracy, str, np.ndarray]:
        """`evaluate`, plus the aligned reference segment (forward strand; "" when unmapped) and, per base of it,
        `query_before` of the CIGAR walk ((len(segment),) int64, see `_walk_cigar`; counted on the reference strand
        from the alignment's first read base): which read bases each reference base is aligned to."""
        sequence = sequence.upper()
        preset, hit, ref_segment = self.align(sequence)
        if hit is None:
            return ReadAccuracy(read_id, len(sequence), mapped=False, preset=preset), "", np.zeros(0, np.int64)
        return _accuracy(read_id, sequence, preset, hit, ref_segment)

    def base_errors(self, sequence: str) -> np.ndarray | None:
        """(n_bases,) int8 per called base in read order: 1 = mismatch or insertion, 0 = match, -1 = outside the
        primary alignment; None when the read does not map. (A deletion belongs to no called base: not counted.)"""
        sequence = sequence.upper()
        _, hit, ref_segment = self.align(sequence)
        if hit is None:
            return None
        errors = _walk_cigar(hit.cigar, _aligned_query(sequence, hit), ref_segment)[3]  # on the reference strand
        per_base = np.full(len(sequence), -1, np.int8)
        per_base[hit.q_st : hit.q_en] = errors if hit.strand > 0 else errors[::-1]
        return per_base


def _load_aligner(reference: Path, preset: PresetName) -> mappy.Aligner:
    import mappy

    aligner = mappy.Aligner(str(reference), preset="map-ont", **PRESETS[preset])
    if not aligner or aligner.n_seq == 0:
        raise InputError(f"{reference}: cannot load this reference (expected FASTA or FASTQ, gzip or not)")
    log.debug("%s: indexed %d sequences for preset %s", reference, aligner.n_seq, preset)
    return aligner


def _accuracy(
    read_id: str, sequence: str, preset: str, hit: mappy.Alignment, ref_segment: str
) -> tuple[ReadAccuracy, str, np.ndarray]:
    """Count the primary alignment's columns; also (ref_segment, query_before) of the CIGAR walk."""
    query_segment = _aligned_query(sequence, hit)
    counts, query_before, query_after, _ = _walk_cigar(hit.cigar, query_segment, ref_segment)
    homopolymers, homopolymer_errors = _homopolymers(query_segment, ref_segment, query_before, query_after)
    accuracy = ReadAccuracy(
        read_id, len(sequence), mapped=True, preset=preset, reference=hit.ctg, ref_start=hit.r_st, ref_end=hit.r_en,
        strand="+" if hit.strand > 0 else "-", query_start=hit.q_st, query_end=hit.q_en, mapq=hit.mapq,
        matches=counts[0], mismatches=counts[1], insertions=counts[2], deletions=counts[3],
        homopolymers=homopolymers, homopolymer_errors=homopolymer_errors,
    )  # fmt: skip
    return accuracy, ref_segment, query_before


def _aligned_query(sequence: str, hit: mappy.Alignment) -> str:
    """The aligned segment of the read, on the reference strand (reverse-complemented for '-' alignments)."""
    segment = sequence[hit.q_st : hit.q_en]
    return reverse_complement(segment) if hit.strand < 0 else segment


def _walk_cigar(
    cigar: list[list[int]], query: str, ref: str
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray]:
    """(matches, mismatches, insertions, deletions); per reference position i of the alignment (shape (len(ref),)),
    the number of query bases before its column (`query_before`, insertions just before i included) and up to the
    end of its column (`query_after`: `query_before` + 1 where i is aligned to a base, equal where deleted); and per
    query base (shape (len(query),)) int8 1 where it is a mismatch or an insertion (`query_errors`).
    `query` is the aligned read segment on the reference strand, `ref` the aligned reference segment."""
    query_codes = np.frombuffer(query.encode(), dtype=np.uint8)
    ref_codes = np.frombuffer(ref.encode(), dtype=np.uint8)
    query_before = np.empty(len(ref), dtype=np.int64)
    aligned = np.zeros(len(ref), dtype=np.int64)
    query_errors = np.ones(len(query), dtype=np.int8)  # insertions stay 1
    q = r = matches = mismatches = insertions = deletions = 0
    for length, op in cigar:
        if op == _MATCH:
            query_errors[q : q + length] = query_codes[q : q + length] != ref_codes[r : r + length]
            different = int(np.count_nonzero(query_errors[q : q + length]))
            mismatches += different
            matches += length - different
            query_before[r : r + length] = np.arange(q, q + length)
            aligned[r : r + length] = 1
            q += length
            r += length
        elif op == _INSERTION:
            insertions += length
            q += length
        elif op == _DELETION:
            deletions += length
            query_before[r : r + length] = q
            r += length
        else:
            raise ValueError(f"unexpected CIGAR operation {op} (only M, I and D are expected from minimap2)")
    if q != len(query) or r != len(ref):
        raise ValueError(f"CIGAR spans {q} query and {r} reference bases, not {len(query)} and {len(ref)}")
    return (matches, mismatches, insertions, deletions), query_before, query_before + aligned, query_errors


def _homopolymers(query: str, ref: str, query_before: np.ndarray, query_after: np.ndarray) -> tuple[int, int]:
    """(runs scored, runs called wrongly) for the reference homopolymers of one alignment (module docstring)."""
    scored = errors = 0
    for run in re.finditer(r"([ACGT])\1{%d,}" % (HOMOPOLYMER_MIN - 1), ref):
        start, end = run.span()
        if start == 0 or end == len(ref):
            continue  # a flank lies outside the alignment
        scored += 1
        errors += int(query[query_after[start - 1] : query_before[end]] != run.group())
    return scored, errors


def read_calls(path: str | Path) -> Iterator[tuple[str, str]]:
    """(read id, bases) for each record of a FASTA or FASTQ file (gzip or not; the id is the header's first word),
    or of an unaligned SAM/BAM file (its primary records)."""
    import dnaio

    from basecall.writers.bam import is_sam_or_bam

    try:
        if is_sam_or_bam(str(path)):
            import pysam

            with pysam.AlignmentFile(str(path), check_sq=False) as records:
                for record in records.fetch(until_eof=True):
                    if not (record.is_secondary or record.is_supplementary):
                        yield record.query_name, record.get_forward_sequence() or ""
            return
        with dnaio.open(path) as records:
            for record in records:
                yield (record.name.split() or [""])[0], record.sequence
    except (OSError, ValueError, dnaio.exceptions.FileFormatError, dnaio.exceptions.UnknownFileFormat) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else one_line(e)
        raise InputError(f"{path}: cannot read calls: {reason}") from e


def evaluate_calls(calls: Iterable[tuple[str, str]], evaluator: Evaluator) -> list[ReadAccuracy]:
    """Every call's accuracy, in input order; unmapped reads are kept (mapped=False)."""
    return [evaluator.evaluate(read_id, sequence) for read_id, sequence in calls]


def summarise(results: Iterable[ReadAccuracy]) -> Summary:
    """Pool per-read results into a call set's summary (see `Summary` for the definitions)."""
    results = list(results)
    mapped = [result for result in results if result.mapped]
    identities = [result.identity for result in mapped]
    all_identities = [result.identity if result.mapped else 0.0 for result in results]
    n_columns = sum(result.n_columns for result in mapped)
    n_homopolymers = sum(result.homopolymers for result in mapped)

    def per_column(field: str) -> float | None:
        return sum(getattr(result, field) for result in mapped) / n_columns if n_columns else None

    return Summary(
        n_reads=len(results),
        n_mapped=len(mapped),
        mapped_fraction=len(mapped) / len(results) if results else None,
        median_identity=statistics.median(identities) if identities else None,
        mean_identity=statistics.fmean(identities) if identities else None,
        median_identity_all=statistics.median(all_identities) if all_identities else None,
        mean_identity_all=statistics.fmean(all_identities) if all_identities else None,
        mismatch_rate=per_column("mismatches"),
        insertion_rate=per_column("insertions"),
        deletion_rate=per_column("deletions"),
        n_columns=n_columns,
        n_homopolymers=n_homopolymers,
        homopolymer_error_rate=(
            sum(result.homopolymer_errors for result in mapped) / n_homopolymers if n_homopolymers else None
        ),
        presets=dict(sorted(Counter(result.preset for result in results).items())),
    )


def shared_reads(*call_sets: list[ReadAccuracy]) -> list[list[ReadAccuracy]]:
    """Each call set restricted to the read ids present in every set (for a like-for-like comparison)."""
    common = set.intersection(*({result.read_id for result in results} for results in call_sets))
    return [[result for result in results if result.read_id in common] for results in call_sets]


TSV_COLUMNS = [field.name for field in dataclasses.fields(ReadAccuracy)] + ["identity", "query_coverage"]


def write_tsv(path: str | Path, results_by_set: dict[str, list[ReadAccuracy]]) -> None:
    """Per-read TSV: a `calls` column naming the call set, then `TSV_COLUMNS`; unmapped reads included."""
    try:
        with open(path, "w") as handle:
            handle.write("\t".join(["calls", *TSV_COLUMNS]) + "\n")
            for label, results in results_by_set.items():
                for result in results:
                    row = result.row()
                    handle.write("\t".join([label, *(str(row[column]) for column in TSV_COLUMNS)]) + "\n")
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from e


def write_json(path: str | Path, report: dict[str, object]) -> None:
    try:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror or e}") from e


_TABLE_ROWS: list[tuple[str, str, str]] = [  # (label, Summary field, format)
    ("reads", "n_reads", "d"),
    ("mapped", "n_mapped", "d"),
    ("mapped fraction", "mapped_fraction", ".4f"),
    ("identity median (mapped)", "median_identity", ".4f"),
    ("identity mean (mapped)", "mean_identity", ".4f"),
    ("identity median (unmapped = 0)", "median_identity_all", ".4f"),
    ("identity mean (unmapped = 0)", "mean_identity_all", ".4f"),
    ("mismatches / column", "mismatch_rate", ".4f"),
    ("insertions / column", "insertion_rate", ".4f"),
    ("deletions / column", "deletion_rate", ".4f"),
    (f"homopolymer (>= {HOMOPOLYMER_MIN}) error rate", "homopolymer_error_rate", ".4f"),
    ("homopolymers scored", "n_homopolymers", "d"),
]


def format_table(summaries: dict[str, Summary]) -> str:
    """A plain-text table: one row per metric, one column per call set."""
    rows = [["", *summaries]]
    for label, field, spec in _TABLE_ROWS:
        values = (getattr(summary, field) for summary in summaries.values())
        rows.append([label, *("-" if value is None else format(value, spec) for value in values)])
    presets = (", ".join(f"{name} {n}" for name, n in summary.presets.items()) for summary in summaries.values())
    rows.append(["preset (reads)", *presets])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join([row[0].ljust(widths[0]), *map(str.rjust, row[1:], widths[1:])]) for row in rows)
    return "\n".join(line.rstrip() for line in lines)
