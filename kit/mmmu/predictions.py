"""``predictions.jsonl``: a run's answers, one JSON line per question, and the parameters used.

The file is appended and fsynced as each chunk returns, and never rewritten except to set a
torn last line (a killed run) aside in ``predictions.jsonl.torn``. Its lines are parsed in one
place (:func:`parse_predictions`), also for ``python -m kit mmmu-score``: the first line of an
id wins, later ones are duplicates, malformed lines are listed with the reason, and lines end
at a newline only, since a response may hold other line separators.
``predictions.meta.json`` keeps the parameters the answers were made with, so a resumed run
cannot mix answers made with others.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.core.files import write_atomic
from kit.core.params import ParameterError

PREDICTIONS_FILE = "predictions.jsonl"

PREDICTIONS_META_FILE = "predictions.meta.json"


@dataclass
class LoadedPredictions:
    """The lines of a predictions file: the first line of each id, and what was wrong."""

    lines: dict[str, dict[str, Any]]  # id -> record, first occurrence
    duplicates: list[str] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)  # 1-based line numbers
    reasons: dict[int, str] = field(default_factory=dict)  # line number -> why malformed
    line_count: int = 0
    torn_tail: str | None = None  # an unterminated last line, removed from the file

    @property
    def responses(self) -> dict[str, str | None]:
        """id -> response (None: unanswered)."""
        return {qid: record["response"] for qid, record in self.lines.items()}

    def malformed_lines(self) -> list[dict[str, Any]]:
        return [{"line": n, "reason": self.reasons[n]} for n in self.malformed]


def _line_problem(record: Any) -> str | None:
    """Why a decoded line is not a prediction, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    qid = record.get("id")
    if not isinstance(qid, str) or not qid:
        return 'no string "id"'
    if "response" not in record:
        return f'{qid}: no "response"'
    response = record["response"]
    if response is not None and not isinstance(response, str):
        return f'{qid}: "response" is {type(response).__name__}, not a string or null'
    return None


def parse_predictions(data: bytes | str) -> LoadedPredictions:
    """One ``{"id", "response", ...}`` object per line. The first line of an id wins; later
    ones are duplicates; lines that are not such objects are malformed, with the reason (a
    line that is not UTF-8 too: its answer is never guessed at). Lines end at a newline only:
    a response may hold U+2028 and other line separators."""
    raw_data = data.encode("utf-8") if isinstance(data, str) else data
    pieces = raw_data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    out = LoadedPredictions({}, line_count=len(pieces))
    for number, raw in enumerate(pieces, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problem: str | None = f"not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})"
        except ValueError as exc:
            problem = f"not JSON ({getattr(exc, 'msg', exc)})"
        else:
            problem = _line_problem(record)
        if problem is not None:
            out.malformed.append(number)
            out.reasons[number] = problem
            continue
        if record["id"] in out.lines:
            out.duplicates.append(record["id"])
            continue
        out.lines[record["id"]] = record
    return out


def read_predictions(path: Path) -> LoadedPredictions:
    """A predictions file as it is (never modified); OSError if it cannot be read."""
    return parse_predictions(path.read_bytes())


class PredictionLog:
    """``predictions.jsonl``: one JSON object per answered question, appended and fsynced
    as each chunk returns; never rewritten except to drop a torn last line after a kill."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> LoadedPredictions:
        if not self.path.is_file():
            return LoadedPredictions({})
        data = self.path.read_bytes()
        torn = None
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            torn = data[cut:].decode("utf-8", "replace")
            aside = self.path.with_name(self.path.name + ".torn")
            with aside.open("ab") as fh:
                fh.write(data[cut:] + b"\n")
            with self.path.open("r+b") as fh:
                fh.truncate(cut)
            data = data[:cut]
        out = parse_predictions(data)
        out.torn_tail = torn
        return out

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        text = "".join(jsonio.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not text:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def write_fingerprint(meta_path: Path, fingerprint: dict[str, Any]) -> None:
    """The parameters the answers in predictions.jsonl are made with."""
    write_atomic(meta_path, jsonio.dumps(fingerprint, indent=2) + "\n")


def check_same_parameters(meta_path: Path, fingerprint: dict[str, Any]) -> None:
    """A resumed run must answer with the parameters the earlier answers were made with."""
    if not meta_path.is_file():
        write_fingerprint(meta_path, fingerprint)
        return
    refuse_changed_answers(meta_path, fingerprint)


def refuse_changed_answers(meta_path: Path, current: dict[str, Any]) -> None:
    """ParameterError when ``current`` (an answer fingerprint) differs from the saved one."""
    try:
        saved = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(
            f"--resume: {str(meta_path)!r} cannot be read ({exc}), so the parameters the "
            "earlier answers were made with are unknown. Start a new run."
        ) from exc
    changed = {k: (saved.get(k), v) for k, v in current.items() if k in saved and saved[k] != v}
    if changed:
        detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise ParameterError(
            f"This run folder's predictions were made with other parameters ({detail}). "
            "Mixing them would give a meaningless score: resume without changing those "
            "parameters, or start a new run."
        )
