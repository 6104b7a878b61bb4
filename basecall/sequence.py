"""Sequence facts, one home each: base codes, reverse complement, FASTA files and Phred qualities.

Codes are the CTC classes of `basecall.config.ALPHABET` ("NACGT"): A, C, G, T = 1, 2, 3, 4, and 0 for anything else
(N, IUPAC codes; the CTC blank) — what training labels, chunk folders and the decoders use. FASTA (and FASTQ) files
are read with dnaio, plain or compressed. Qualities are Phred scores, ``Q = -10 log10(p_error)``, written in FASTQ as
ASCII ``Q + 33``. Light on purpose (numpy and dnaio only): the command line imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from basecall.config import ALPHABET
from basecall.errors import InputError, one_line

BASES = ALPHABET[1:]  # "ACGT": the code of a base is its index here + 1
MAX_FASTQ_QUALITY = 93  # the highest Phred a FASTQ quality character can hold ('~')
PHRED_OFFSET = 33  # FASTQ (Sanger / Illumina 1.8+): quality character = chr(Q + 33)

_CODES = np.zeros(256, np.uint8)  # ASCII → code; lower case too (soft-masked references)
_CODES[np.frombuffer(BASES.encode(), np.uint8)] = np.arange(1, 5)
_CODES[np.frombuffer(BASES.lower().encode(), np.uint8)] = np.arange(1, 5)
_LETTERS = np.frombuffer(ALPHABET.encode(), np.uint8)  # code → ASCII: 0 → N
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")
_COMPLEMENT_CODES = np.array([0, 4, 3, 2, 1], np.uint8)  # indexed by code: A↔T, C↔G, 0 stays 0


# --- bases ----------------------------------------------------------------------------------------------------------


def encode(sequence: str | bytes) -> np.ndarray:
    """Bases → codes 1-4 = ACGT (either case), 0 for any other character. Returns (n_bases,) uint8."""
    data = sequence.encode("ascii", errors="replace") if isinstance(sequence, str) else sequence
    return _CODES[np.frombuffer(data, np.uint8)]


def decode(codes: np.ndarray) -> str:
    """Codes 1-4 → bases ACGT, 0 → N: the inverse of `encode` on upper-case ACGT. codes: (n_bases,) integers 0-4."""
    return _LETTERS[np.asarray(codes, np.intp)].tobytes().decode("ascii")


def reverse_complement(sequence: str) -> str:
    """The other strand, read 5'→3': A↔T, C↔G (case kept), N stays N; other characters are kept as they are."""
    return sequence.translate(_COMPLEMENT)[::-1]


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """`reverse_complement` of codes: (n,) uint8 1-4 (0 stays 0) → a new (n,) uint8 array."""
    return _COMPLEMENT_CODES[np.asarray(codes, np.intp)[::-1]]


# --- FASTA ----------------------------------------------------------------------------------------------------------


def read_fasta(path: str | Path) -> dict[str, str]:
    """The sequences of a FASTA file (plain, gzip, bzip2 or xz) by name (the header's first word), upper-cased.

    Raises InputError naming the file when it cannot be read, is not FASTA, repeats a name, has a record without a
    name, or holds no sequence at all.
    """
    import dnaio

    records: dict[str, str] = {}
    try:
        with dnaio.open(path, fileformat="fasta") as reader:
            for record in reader:
                name = (record.name.split() or [""])[0]
                if not name or name in records:
                    raise InputError(f"{path}: a record with {'a repeated' if name else 'no'} name {name!r}")
                records[name] = record.sequence.upper()
    except OSError as e:
        raise InputError(f"{path}: cannot read this FASTA file: {e.strerror or one_line(e)}") from e
    except (ValueError, EOFError, dnaio.exceptions.FileFormatError, dnaio.exceptions.UnknownFileFormat) as e:
        raise InputError(f"{path}: not a FASTA file: {one_line(e)}") from e
    if not any(records.values()):
        raise InputError(f"{path}: no FASTA records with sequence")
    return records


def write_fasta(records: Iterable[tuple[str, str]], path: str | Path, width: int = 80) -> Path:
    """Write (header, sequence) records to a new FASTA file at `path`, `width` bases a line; return the path."""
    path = Path(path)
    with open(path, "x") as handle:
        for header, sequence in records:
            handle.write(f">{header}\n")
            handle.writelines(sequence[i : i + width] + "\n" for i in range(0, len(sequence), width))
    return path


# --- Phred qualities ------------------------------------------------------------------------------------------------


def phred(p_error):
    """Error probability → Phred quality ``-10 log10(p)``, unrounded (p = 0 gives inf).

    Takes a float, a numpy array or a torch tensor (on its device) and gives back the same kind.
    """
    if isinstance(p_error, (int, float)):
        return -10.0 * math.log10(p_error) if p_error > 0 else math.inf
    log10 = getattr(p_error, "log10", None)  # a torch tensor: stay on its device
    with np.errstate(divide="ignore"):
        return -10.0 * (log10() if log10 is not None else np.log10(p_error))


def error_probability(quality):
    """Phred quality → error probability ``10^(-Q / 10)``: the inverse of `phred`. A float or a numpy array."""
    if isinstance(quality, (int, float)):
        return 10.0 ** (-quality / 10.0)
    return np.power(10.0, -np.asarray(quality, np.float64) / 10.0)


def mean_qscore(qualities: np.ndarray) -> float:
    """A read's mean qscore: the Phred of the mean per-base error probability (as Dorado and Guppy report it), at
    most 100; 0 for no bases. qualities: (n_bases,) Phred."""
    if qualities.size == 0:
        return 0.0
    return phred(max(float(np.mean(error_probability(qualities))), 1e-10))


def quality_text(qualities: np.ndarray) -> str:
    """(n_bases,) Phred (0-93) → the FASTQ quality line (Phred+33 ASCII)."""
    return (np.asarray(qualities, np.uint8) + PHRED_OFFSET).astype(np.uint8).tobytes().decode("ascii")


def quality_values(text: str) -> np.ndarray:
    """A FASTQ quality line (Phred+33 ASCII) → (n_bases,) uint8 Phred: the inverse of `quality_text`."""
    return np.frombuffer(text.encode("ascii"), np.uint8) - np.uint8(PHRED_OFFSET)
