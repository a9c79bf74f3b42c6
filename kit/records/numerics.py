"""``numerics.jsonl`` (a numerics run's tokens and logprobs, one line per prompt) and the
``numerics`` section of results.json (that run compared with a reference run).

A line holds a prompt's greedy continuation, each token with its logprob, rank and top-k,
and the prompt logprobs of a continuation the run was made to read (teacher forcing), so
that a comparison can score one run on another's tokens, where one early difference cannot
cascade. The file is read strictly: a line that is not JSON or lacks a field is an error
naming the file and line, since a comparison on half a record would be wrong, not partial.
The results.json section is read tolerantly, like every other section (kit.records.base).
kit.numerics.compare computes the section; docs state the thresholds it is judged by.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.core.files import write_atomic
from kit.records.base import known_fields, mapping

NUMERICS_FILE = "numerics.jsonl"

#: Per-prompt and overall verdicts, best first: the overall verdict is the worst prompt's.
#: "incomplete": the prompt could not be judged (missing on a side, no teacher-forced part).
VERDICTS = ("identical", "close", "incomplete", "diverged")


# --- numerics.jsonl ---------------------------------------------------------------------


def _need(record: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in record:
        raise ValueError(f'{where}: no "{name}"')
    return record[name]


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {value!r} is not an integer")
    return value


def _logprob(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    return float(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: {value!r} is not a string")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: not a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: not a list")
    return list(value)


def ranked(pairs: Iterable[tuple[int, float]]) -> tuple[tuple[int, float], ...]:
    """(token id, logprob) pairs most likely first, ties by token id: the order of every
    top-k list the kit writes or reads, whichever engine made it."""
    return tuple(sorted(pairs, key=lambda pair: (-pair[1], pair[0])))


@dataclass(frozen=True)
class Position:
    """One token of a continuation: its id, decoded piece ("" where none), logprob, rank
    (1 = most likely; None where the engine did not say) and the top-k alternatives as
    (token id, logprob), most likely first. ``top_k`` holds ranks 1..k only: a token
    outside them (a forced one) has its own logprob here but no entry there."""

    token: int
    text: str
    logprob: float
    rank: int | None
    top_k: tuple[tuple[int, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "text": self.text,
            "logprob": self.logprob,
            "rank": self.rank,
            "top_k": [[token, logprob] for token, logprob in self.top_k],
        }

    @classmethod
    def of(cls, record: Any, where: str = "position") -> Position:
        """Strict: ValueError naming ``where`` and the field for anything missing or of the
        wrong type. The top-k is sorted most likely first (ties by token id)."""
        record = _object(record, where)
        rank = _need(record, "rank", where)
        pairs = []
        for i, pair in enumerate(_list(_need(record, "top_k", where), f"{where}.top_k")):
            at = f"{where}.top_k[{i}]"
            pair = _list(pair, at)
            if len(pair) != 2:
                raise ValueError(f"{at}: not a [token, logprob] pair")
            pairs.append((_int(pair[0], at), _logprob(pair[1], at)))
        return cls(
            token=_int(_need(record, "token", where), f"{where}.token"),
            text=_str(_need(record, "text", where), f"{where}.text"),
            logprob=_logprob(_need(record, "logprob", where), f"{where}.logprob"),
            rank=None if rank is None else _int(rank, f"{where}.rank"),
            top_k=ranked(pairs),
        )


def _positions(value: Any, where: str) -> tuple[Position, ...]:
    return tuple(Position.of(p, f"{where}[{i}]") for i, p in enumerate(_list(value, where)))


@dataclass(frozen=True)
class PromptNumerics:
    """One line of numerics.jsonl: a prompt's greedy continuation and, where recorded, the
    prompt logprobs of the continuation named by ``forced_on`` ("self", or the label of the
    reference whose continuation the run was made to read)."""

    id: str
    kind: str  # "text", "image", "images", "long", ...
    num_images: int
    prompt_tokens: int
    generated: tuple[Position, ...]
    forced: tuple[Position, ...] | None = None
    forced_on: str | None = None
    generated_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "num_images": self.num_images,
            "prompt_tokens": self.prompt_tokens,
            "generated": [p.to_dict() for p in self.generated],
            "forced": None if self.forced is None else [p.to_dict() for p in self.forced],
            "forced_on": self.forced_on,
            "generated_text": self.generated_text,
        }

    @classmethod
    def of(cls, record: Any) -> PromptNumerics:
        """Strict, as :meth:`Position.of`: ValueError naming the field."""
        if not isinstance(record, Mapping):
            raise ValueError("not a JSON object")
        if "id" not in record:
            raise ValueError('no "id"')
        pid = _str(record["id"], "id")
        forced = _need(record, "forced", pid)
        forced_on = _need(record, "forced_on", pid)
        return cls(
            id=pid,
            kind=_str(_need(record, "kind", pid), f"{pid}: kind"),
            num_images=_int(_need(record, "num_images", pid), f"{pid}: num_images"),
            prompt_tokens=_int(_need(record, "prompt_tokens", pid), f"{pid}: prompt_tokens"),
            generated=_positions(_need(record, "generated", pid), f"{pid}: generated"),
            forced=None if forced is None else _positions(forced, f"{pid}: forced"),
            forced_on=None if forced_on is None else _str(forced_on, f"{pid}: forced_on"),
            generated_text=_str(_need(record, "generated_text", pid), f"{pid}: generated_text"),
        )


def write_numerics_jsonl(path: Path, records: Iterable[PromptNumerics]) -> Path:
    """The whole file at once, whole or not at all (kit.core.files); ASCII, so a token piece
    holding a line separator or half a character cannot break a line. ValueError on NaN."""
    lines = [jsonio.dumps(record.to_dict()) + "\n" for record in records]
    return write_atomic(Path(path), "".join(lines))


def read_numerics_jsonl(path: Path) -> list[PromptNumerics]:
    """Every line, in order; ValueError naming the file and the line for one that is not
    UTF-8, not JSON, lacks a field or repeats an id (prompts are matched by id). Lines end
    at a newline only; blank lines are skipped. OSError if the file cannot be read."""
    path = Path(path)
    out: list[PromptNumerics] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            record = PromptNumerics.of(json.loads(raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path} line {number}: not UTF-8 ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} line {number}: not JSON ({exc.msg})") from None
        except ValueError as exc:
            raise ValueError(f"{path} line {number}: {exc}") from None
        if record.id in seen:
            raise ValueError(
                f"{path} line {number}: id {record.id!r} again (first on line {seen[record.id]})"
            )
        seen[record.id] = number
        out.append(record)
    return out


# --- the numerics section of results.json -------------------------------------------------


@dataclass(frozen=True)
class GreedyCheck:
    """vLLM's check_logprobs_close on two greedy continuations: up to the shorter length the
    tokens match; at the first that differs (``divergence``), each side's token must be in
    the other's top-k, and the check stops there. Ranks are 1-based within the other side's
    top-k list, None where absent."""

    passed: bool
    compared: int  # positions compared: the shorter continuation's length
    run_length: int
    ref_length: int
    divergence: int | None = None
    run_token: int | None = None
    run_text: str | None = None
    ref_token: int | None = None
    ref_text: str | None = None
    run_rank_in_ref: int | None = None  # the run's token in the reference's top-k
    ref_rank_in_run: int | None = None  # the reference's token in the run's top-k

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> GreedyCheck | None:
        section = mapping(section)
        if "passed" not in section:
            return None
        return cls(
            **{"compared": 0, "run_length": 0, "ref_length": 0, **known_fields(cls, section)}
        )


@dataclass(frozen=True)
class ForcedStats:
    """The run teacher-forced on the reference's continuation, position by position against
    the reference: |Δ logprob| of the reference's token, top-1 agreement (share of positions
    whose top-k lists have the same most likely token), mean top-k overlap (share of token
    ids in common) and KL(ref || run) estimated over the reference's top-k, a lower bound
    where a reference token is missing from the run's top-k (``kl_missing`` such terms).
    Every value None where no position was compared."""

    positions: int
    mean_abs_delta: float | None = None
    p99_abs_delta: float | None = None
    max_abs_delta: float | None = None
    max_delta_position: int | None = None  # the first position of the largest |Δ| (if > 0)
    first_delta_position: int | None = None  # the first position where Δ != 0
    top1_agreement: float | None = None
    topk_overlap: float | None = None
    kl_mean: float | None = None
    kl_max: float | None = None
    kl_missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, section: Any) -> ForcedStats | None:
        section = mapping(section)
        if "positions" not in section:
            return None
        return cls(**known_fields(cls, section))


@dataclass(frozen=True)
class PromptVerdict:
    """One prompt judged: its verdict (one of VERDICTS) and why, where the greedy tokens
    first differ, vLLM's greedy check and the teacher-forced statistics (None where they
    could not be computed: the reason says why). ``forced_against`` names the reference
    side the forced logprobs were compared with: the reference's own forced pass
    ("forced", a prefill against a prefill) or its generated tokens ("generated")."""

    id: str
    verdict: str
    reason: str | None = None
    kind: str | None = None
    first_divergence: int | None = None
    greedy: GreedyCheck | None = None
    forced: ForcedStats | None = None
    forced_against: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verdict": self.verdict,
            "reason": self.reason,
            "kind": self.kind,
            "first_divergence": self.first_divergence,
            "greedy": None if self.greedy is None else self.greedy.to_dict(),
            "forced": None if self.forced is None else self.forced.to_dict(),
            "forced_against": self.forced_against,
        }

    @classmethod
    def of(cls, section: Any) -> PromptVerdict:
        section = mapping(section)
        return cls(
            id=str(section.get("id")),
            verdict=str(section.get("verdict")),
            reason=section.get("reason"),
            kind=section.get("kind"),
            first_divergence=section.get("first_divergence"),
            greedy=GreedyCheck.of(section.get("greedy")),
            forced=ForcedStats.of(section.get("forced")),
            forced_against=section.get("forced_against"),
        )


@dataclass(frozen=True)
class NumericsComparison:
    """A run against a reference run (``reference``: its label or path): the overall verdict
    (the worst prompt's), the thresholds it was judged by, each prompt's verdict, the count
    of each verdict, the prompts found on one side only, and |Δ logprob| over every
    teacher-forced position of every prompt."""

    reference: str
    verdict: str
    thresholds: Mapping[str, float] = field(default_factory=dict)
    prompts: Sequence[PromptVerdict] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    missing_from_run: Sequence[str] = ()
    missing_from_reference: Sequence[str] = ()
    positions: int = 0
    mean_abs_delta: float | None = None
    max_abs_delta: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "verdict": self.verdict,
            "thresholds": dict(self.thresholds),
            "counts": dict(self.counts),
            "missing_from_run": list(self.missing_from_run),
            "missing_from_reference": list(self.missing_from_reference),
            "positions": self.positions,
            "mean_abs_delta": self.mean_abs_delta,
            "max_abs_delta": self.max_abs_delta,
            "prompts": [p.to_dict() for p in self.prompts],
        }

    @classmethod
    def of(cls, section: Any) -> NumericsComparison | None:
        section = mapping(section)
        if not section:
            return None
        return cls(
            reference=str(section.get("reference")),
            verdict=str(section.get("verdict")),
            thresholds=dict(mapping(section.get("thresholds"))),
            prompts=tuple(PromptVerdict.of(p) for p in section.get("prompts") or ()),
            counts=dict(mapping(section.get("counts"))),
            missing_from_run=tuple(section.get("missing_from_run") or ()),
            missing_from_reference=tuple(section.get("missing_from_reference") or ()),
            positions=section.get("positions") or 0,
            mean_abs_delta=section.get("mean_abs_delta"),
            max_abs_delta=section.get("max_abs_delta"),
        )

    def prompt(self, prompt_id: str) -> PromptVerdict | None:
        return next((p for p in self.prompts if p.id == prompt_id), None)


# --- the numerics_run section of results.json ----------------------------------------------


@dataclass(frozen=True)
class NumericsRunRecord:
    """What a numerics run recorded: the prompt set (its version and digest: a reference and
    the run checked against it must share them), top-k and length, whose continuation the
    teacher-forced pass read (``forced_on``: "self" or the reference), why a prompt has no
    forced part (``forced_problems``, by id), and the seconds each phase took."""

    prompt_set: str
    prompt_set_version: int | None = None
    prompt_set_digest: str | None = None
    prompts: int = 0
    top_k: int = 0
    max_tokens: int = 0
    backend: str | None = None
    dtype: str | None = None
    forced_on: str = "self"
    reference: str | None = None
    forced_problems: Mapping[str, str] = field(default_factory=dict)
    seconds: Mapping[str, float] = field(default_factory=dict)
    generated_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "forced_problems": dict(self.forced_problems)}

    @classmethod
    def of(cls, section: Any) -> NumericsRunRecord | None:
        section = mapping(section)
        if "prompt_set" not in section:
            return None
        return cls(**known_fields(cls, section))
