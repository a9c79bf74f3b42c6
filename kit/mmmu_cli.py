"""``python -m kit mmmu-score``: score MMMU responses produced anywhere with the official rules.

Input: a JSONL file, one ``{"id": "validation_Art_1", "response": "..."}`` per line (the
notebook's ``predictions.jsonl`` qualifies; a ``null`` response counts as unanswered). The
questions are every question of the split in the dataset folder; responses are parsed and
scored exactly as in the notebook (one ``random.Random(42)`` consumed in official order).

Nothing is skipped silently: malformed lines, ids the dataset does not have, duplicate ids
and questions without a response are listed on stderr and in the output JSON; missing
answers are scored as wrong, so the Overall stays over the whole split.

Exit status: 0 scored cleanly; 1 scored, with problems listed; 2 nothing scored (bad
dataset, split or predictions file).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import mmmu as M
from kit.params import ParameterError

SHOW = 10  # examples printed per kind of problem


@dataclass
class ReadPredictions:
    responses: dict[str, str | None] = field(default_factory=dict)
    malformed: list[dict[str, Any]] = field(default_factory=list)  # {"line", "reason"}
    duplicates: list[str] = field(default_factory=list)
    lines: int = 0


def read_predictions(path: Path) -> ReadPredictions:
    """Parse the JSONL; the first line of an id wins, later ones are reported as duplicates."""
    out = ReadPredictions()
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            out.lines = number
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                out.malformed.append({"line": number, "reason": f"not JSON ({exc.msg})"})
                continue
            if not isinstance(record, dict):
                out.malformed.append({"line": number, "reason": "not a JSON object"})
                continue
            qid = record.get("id")
            if not isinstance(qid, str) or not qid:
                out.malformed.append({"line": number, "reason": 'no string "id"'})
                continue
            if "response" not in record:
                out.malformed.append({"line": number, "reason": f'{qid}: no "response"'})
                continue
            response = record["response"]
            if response is not None and not isinstance(response, str):
                out.malformed.append(
                    {
                        "line": number,
                        "reason": f'{qid}: "response" is {type(response).__name__}, '
                        "not a string or null",
                    }
                )
                continue
            if qid in out.responses:
                out.duplicates.append(qid)
                continue
            out.responses[qid] = response
    return out


def load_questions(dataset: str, split: str) -> tuple[Path, list[M.Question], list[str]]:
    """Every question of the split in the dataset; also the subjects the folder lacks."""
    from kit.mmmu_run import resolve_dataset

    M.check_split(split)
    root = resolve_dataset(dataset, split, None)
    M.check_dataset(root, split, M.present_subjects(root, split) or None)
    subjects = M.present_subjects(root, split)
    questions = M.load_split(root, split, subjects, lazy_images=True)
    return root, questions, [s for s in M.SUBJECTS if s not in subjects]


def score(
    dataset: str, predictions: Path, split: str = "validation"
) -> tuple[dict[str, Any], M.ScoreReport]:
    """The output document and the score report; raises ParameterError when nothing can be
    scored."""
    from kit.mmmu_run import mmmu_section

    if not predictions.is_file():
        raise ParameterError(f"--predictions {str(predictions)!r} does not exist.")
    root, questions, absent = load_questions(dataset, split)
    read = read_predictions(predictions)
    ids = [q.id for q in questions]
    known = set(ids)
    unknown = [i for i in read.responses if i not in known]
    missing = [i for i in ids if i not in read.responses]
    report = M.score_predictions(questions, read.responses)
    problems = {
        "malformed_lines": read.malformed,
        "unknown_ids": unknown,
        "missing_ids": missing,
        "duplicate_ids": read.duplicates,
        "null_responses": [i for i, r in read.responses.items() if r is None and i in known],
        "dataset_missing_subjects": absent,
    }
    parameters = {
        "dataset": dataset,
        "dataset_path": str(root),
        "split": split,
        "subjects": sorted({q.subject for q in questions}, key=M.SUBJECTS.index),
        "predictions": str(predictions),
        "prediction_lines": read.lines,
    }
    records = []
    for r in report.records:
        record = r.to_dict()
        record["response"] = read.responses.get(r.id)
        record["missing"] = r.id not in read.responses
        records.append(record)
    document = {
        "mmmu": mmmu_section(report, parameters, {"source": "python -m kit mmmu-score"}),
        "problems": problems,
        "records": records,
    }
    return document, report


def _examples(items: list[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:SHOW])
    return shown + (f", ... ({len(items) - SHOW} more)" if len(items) > SHOW else "")


def print_problems(problems: dict[str, Any], file: Any = None) -> int:
    """Warnings on stderr; returns how many kinds of problem there are."""
    file = file or sys.stderr
    kinds = 0
    if problems["malformed_lines"]:
        kinds += 1
        lines = [f"line {m['line']}: {m['reason']}" for m in problems["malformed_lines"]]
        print(
            f"warning: {len(lines)} malformed line(s), not scored: {_examples(lines)}",
            file=file,
        )
    if problems["unknown_ids"]:
        kinds += 1
        print(
            f"warning: {len(problems['unknown_ids'])} id(s) not in the dataset's split, not "
            f"scored: {_examples(problems['unknown_ids'])}",
            file=file,
        )
    if problems["duplicate_ids"]:
        kinds += 1
        print(
            f"warning: {len(problems['duplicate_ids'])} duplicate id(s), first line kept: "
            f"{_examples(problems['duplicate_ids'])}",
            file=file,
        )
    if problems["missing_ids"]:
        kinds += 1
        print(
            f"warning: {len(problems['missing_ids'])} question(s) have no line, scored as "
            f"wrong: {_examples(problems['missing_ids'])}",
            file=file,
        )
    if problems["null_responses"]:
        kinds += 1
        print(
            f"warning: {len(problems['null_responses'])} question(s) have a null response, "
            f"scored as wrong: {_examples(problems['null_responses'])}",
            file=file,
        )
    if problems["dataset_missing_subjects"]:
        kinds += 1
        print(
            f"warning: the dataset folder lacks {len(problems['dataset_missing_subjects'])} "
            f"subject(s), not scored: {_examples(problems['dataset_missing_subjects'])}. "
            f"To get them, {M.DOWNLOAD_HINT}.",
            file=file,
        )
    return kinds


def score_main(args: Any) -> int:
    """Entry point of ``python -m kit mmmu-score`` (args: dataset, predictions, split, out)."""
    try:
        document, report = score(args.dataset, Path(args.predictions), args.split)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kinds = print_problems(document["problems"])
    o = report.overall
    print(f"MMMU {args.split}: Overall {o.acc:.3f} ({o.correct}/{o.n} correct)")
    for group, acc in report.groups.items():
        print(f"  {group:<32} {acc.acc:.3f}  (n={acc.n})")
    print(
        f"random fallback (seed {report.seed}): {report.counts.fallbacks} multiple-choice "
        f"answer(s); unanswered (scored wrong): {report.counts.errors}"
    )
    if args.out is not None:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out}")
    return 1 if kinds else 0
