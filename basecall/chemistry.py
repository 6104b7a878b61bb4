"""A read's pore chemistry from what its file says, and the shipped model that fits it: the one place for both.

What a file says, most trusted first:
1. the flow cell product code (FLO-MIN106 → r9.4.1, FLO-PRO112 → r10.4, FLO-PRO114M → r10.4.1, …);
2. the sequencing kit: kit 14 (SQK-LSK114, SQK-RBK114-96, …) is sold for R10.4.1 only, kit 12 (SQK-LSK112, SQK-Q20EA)
   for R10.4 only; older kits (SQK-LSK109, SQK-RAD004, …) ran on several pores and say nothing;
3. only when neither says, the sample rate: 5 kHz is R10.4.1 (no other chemistry is sampled at 5 kHz); 4 kHz is
   probably R9.4.1, but R10.4 and R10.4.1 before 2023 ran at 4 kHz too, so that is a guess, said in a warning.

A run uses one model. Without ``--model`` it is the shipped model that fits the first read one fits, and every read
that model does not fit is refused as a Failure saying why (`choose_model`); with ``--model`` every read is called,
with one warning per kind of read the model is not for (`check_fit`).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from basecall.config import InfoConfig, load_config
from basecall.records import Failure, Read

log = logging.getLogger(__name__)

FLOW_CELLS = {
    "FLO-MIN106": "r9.4.1", "FLO-MIN106D": "r9.4.1", "FLO-FLG001": "r9.4.1", "FLO-PRO002": "r9.4.1",
    "FLO-MIN111": "r10.3",
    "FLO-MIN112": "r10.4", "FLO-PRO112": "r10.4",
    "FLO-MIN114": "r10.4.1", "FLO-FLG114": "r10.4.1", "FLO-PRO114": "r10.4.1", "FLO-PRO114M": "r10.4.1",
}  # fmt: skip
KITS = {"SQK-Q20EA": "r10.4"}
KIT_GENERATIONS = {"112": "r10.4", "114": "r10.4.1"}  # SQK-<kind><generation>[-<variant>], e.g. SQK-NBD114-24
SAMPLE_RATES = {5000: "r10.4.1", 4000: "r9.4.1"}  # only when flow cell and kit say nothing
GUESSED_RATE = 4000  # the chemistry SAMPLE_RATES gives for it is a guess
LOOKAHEAD = 10_000  # reads refused while the model is still to be chosen, held (without signal, ~1 kB each) till then


@dataclass(frozen=True)
class Chemistry:
    """A read's pore chemistry, as far as its file tells."""

    name: str | None  # r9.4.1, r10.3, r10.4, r10.4.1; None: the file does not say and the sample rate does not tell
    guessed: bool = False  # from a 4 kHz sample rate alone


def chemistry_of(read: Read) -> Chemistry:
    """The read's chemistry from its flow cell, else its kit, else its sample rate."""
    said = FLOW_CELLS.get((read.flow_cell_product_code or "").upper()) or _kit_chemistry(read.sequencing_kit)
    if said:
        return Chemistry(said)
    rate = round(read.sample_rate_hz)
    return Chemistry(SAMPLE_RATES.get(rate), guessed=rate == GUESSED_RATE)


def _kit_chemistry(kit: str | None) -> str | None:
    code = (kit or "").upper()
    generation = re.fullmatch(r"SQK-[A-Z]+(\d{3})(-[A-Z0-9]+)*", code)
    return KITS.get(code) or (KIT_GENERATIONS.get(generation.group(1)) if generation else None)


def describe(read: Read) -> str:
    """The read's chemistry and what tells it, for messages: 'r10.4 reads (FLO-PRO112, SQK-Q20EA, 4000 Hz)'."""
    chemistry = chemistry_of(read)
    what = f"{chemistry.name} reads" if chemistry.name else "reads of unknown chemistry"
    what = f"probably {what}" if chemistry.guessed else what
    said = [code.upper() for code in (read.flow_cell_product_code, read.sequencing_kit) if code]
    return f"{what} ({', '.join(said or ['no flow cell or kit recorded'])}, {read.sample_rate_hz:g} Hz)"


def fits(info: InfoConfig, read: Read) -> bool:
    """Whether a model for `info`'s chemistry and sample rate is one for this read."""
    return info.chemistry == chemistry_of(read).name and info.sample_rate_hz == round(read.sample_rate_hz)


def shipped_infos() -> dict[str, InfoConfig]:
    """What each shipped model is for, by name."""
    from basecall.model import shipped_models  # imports torch: only when a model is chosen

    return {name: load_config(path / "config.toml").info for name, path in shipped_models().items()}


def select_model(read: Read, shipped: Mapping[str, InfoConfig] | None = None) -> str | None:
    """The shipped model for this read's chemistry and sample rate, preferring one named ``…-accurate``; None if
    no shipped model fits. `shipped`: `shipped_infos()`, passed in to read the model configs once per run."""
    shipped = shipped_infos() if shipped is None else shipped
    matches = [name for name, info in shipped.items() if fits(info, read)]
    return min(matches, key=lambda name: (not name.endswith("-accurate"), name), default=None)


def choose_model(items: Iterable[Read | Failure]) -> tuple[str | None, Iterator[Read | Failure]]:
    """The shipped model for the run, chosen by the first read one fits, and `items`, in order, with each read that
    model does not fit made a Failure saying why. None, and every read refused, when none of the first `LOOKAHEAD`
    reads fits a shipped model (the reads before the first that fits are held in memory, so they are bounded).

    One model per run, as Dorado: a run's output then comes from one model (its name is in every record), and reads
    of another chemistry are named in the summary to be called in a run of their own.
    """
    shipped = shipped_infos()
    items = iter(items)
    before: list[Read | Failure] = []
    n_refused = 0
    for item in items:
        name = select_model(item, shipped) if isinstance(item, Read) else None
        if name is not None:
            log.info("no --model given: using %s, the shipped model for %s like %s", name, describe(item), item.read_id)
            return name, itertools.chain(before, [item], _refuse_unfit(items, name, shipped))
        before.append(_refusal(item, None, None) if isinstance(item, Read) else item)
        n_refused += isinstance(item, Read)
        if n_refused == LOOKAHEAD:
            break
    return None, itertools.chain(before, _refuse_unfit(items, None, shipped))


def _refuse_unfit(items: Iterator[Read | Failure], chosen: str | None, shipped: Mapping[str, InfoConfig]) -> Iterator:
    for item in items:
        if isinstance(item, Read):
            fitting = select_model(item, shipped)
            if fitting is None or fitting != chosen:
                item = _refusal(item, fitting, chosen)
        yield item


def _refusal(read: Read, fitting: str | None, chosen: str | None) -> Failure:
    """The Failure for a read the run's model (`chosen`, None for none) does not fit; `fitting` is the shipped model
    that would."""
    if fitting is None:
        reason = f"no shipped model for {describe(read)}; pass --model"
    elif chosen is None:
        reason = (
            f"{describe(read)} need {fitting}, but this run calls no read (none of its first {LOOKAHEAD:,} reads fits "
            f"a shipped model): call them in a run of their own"
        )
    else:
        reason = (
            f"{describe(read)} need {fitting}, but this run uses {chosen} (one model per run): "
            f"call them in a run of their own"
        )
    return Failure(read.path, reason, read.read_id, read.without_signal(), read.n_samples)


def check_fit(items: Iterable[Read | Failure], name: str, info: InfoConfig) -> Iterator[Read | Failure]:
    """Pass `items` through, warning once per kind of read the model `name` (for `info`) is not for, naming both, and
    once when a read's chemistry is only guessed from a 4 kHz sample rate."""
    warned: set[str] = set()
    for item in items:
        if isinstance(item, Read):
            key, message = _doubt(item, name, info)
            if key and key not in warned:
                warned.add(key)
                log.warning("%s: %s", item.path, message)
        yield item


def _doubt(read: Read, name: str, info: InfoConfig) -> tuple[str | None, str]:
    """(kind, message) of what is doubtful about calling `read` with the model, or (None, '')."""
    if not fits(info, read):
        kind = describe(read)
        return kind, f"{kind}, but the model {name} is for {info.chemistry} reads at {info.sample_rate_hz} Hz"
    if chemistry_of(read).guessed:
        return "guessed", (
            f"{describe(read)}: the chemistry is guessed from the sample rate (R10.4 and early R10.4.1 runs were "
            f"sampled at {GUESSED_RATE} Hz too); if these are not {info.chemistry} reads, pass --model"
        )
    return None, ""
