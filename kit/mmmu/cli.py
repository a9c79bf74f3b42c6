"""``python -m kit mmmu-score``: score MMMU responses produced anywhere, both ways.

Input: a JSONL file, one ``{"id": "validation_Art_1", "response": "..."}`` per line (the
notebook's ``predictions.jsonl`` qualifies; a ``null`` response counts as unanswered), read by
the notebook's own reader (``kit.mmmu.predictions.read_predictions``). The questions are every
question of the split in the dataset folder; responses are scored exactly as in the notebook:
with the official rules (one ``random.Random(42)`` consumed in official order) and with the
vendor's strict rule (a multiple-choice answer counts only when ``response.strip()`` is the
gold letter). Both Overalls are printed and written (``mmmu.overall`` and ``mmmu.scoring``,
see kit.mmmu.section).

Nothing is skipped silently: malformed lines, ids the dataset does not have, duplicate ids
and questions without a response are listed on stderr and in the output JSON; missing
answers are scored as wrong, so the Overall stays over the whole split. Each record holds the
response once; its ``parsed`` strings are cut to 200 characters (``parsed_truncated``).

Exit status: 0 scored cleanly; 1 scored, with problems listed; 2 nothing scored, or the
output could not be written (bad dataset, split, predictions file or --out path: one
paragraph on stderr says which and what to do).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.core.files import NO_ROOM, write_atomic
from kit.core.params import ParameterError
from kit.mmmu.dataset import (
    DOWNLOAD_HINT,
    DatasetError,
    check_dataset,
    check_split,
    load_split,
    present_subjects,
    resolve_dataset,
)
from kit.mmmu.predictions import LoadedPredictions, read_predictions
from kit.mmmu.questions import SUBJECTS, VENDOR_STRICT, Question
from kit.mmmu.scoring import (
    ScoreReport,
    recorded_parsed,
    score_predictions,
    score_predictions_vendor,
)
from kit.mmmu.section import mmmu_section

SHOW = 10  # examples printed per kind of problem


def load_questions(dataset: str, split: str) -> tuple[Path, list[Question], list[str]]:
    """Every question of the split in the dataset; also the subjects the folder lacks."""
    check_split(split)
    try:
        root = resolve_dataset(dataset, split, None)
        subjects = present_subjects(root, split)
        check_dataset(root, split, subjects or None)
        questions = load_split(root, split, subjects, lazy_images=True)
    except OSError as exc:  # permissions, a vanished mount, ...
        raise DatasetError(
            f"--dataset {dataset!r} cannot be read ({_os_reason(exc)}). Check that the folder "
            f"and its parquet files are readable by you (ls -l), or copy them somewhere they "
            f"are; to get a fresh copy, {DOWNLOAD_HINT}."
        ) from exc
    return root, questions, [s for s in SUBJECTS if s not in subjects]


def _os_reason(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{type(exc).__name__}: {exc.strerror or exc}{where}"


def load_predictions(path: Path) -> LoadedPredictions:
    """The predictions file, or a ParameterError that says what is wrong with it."""
    try:
        check_predictions(path)
        check_json_lines(path)
        return read_predictions(path)
    except OSError as exc:
        raise ParameterError(
            f"--predictions {str(path)!r} cannot be read ({_os_reason(exc)}). Make it "
            "readable by you (ls -l; chmod u+r), or copy it somewhere readable and pass that."
        ) from exc


def check_json_lines(path: Path) -> None:
    """A whole file that is one JSON array, or one object of id -> answer (the official MMMU
    script's form), would otherwise be read as that many malformed lines."""
    try:
        whole = json.loads(path.read_bytes())
    except ValueError:  # JSON Lines of more than one line, or not JSON at all
        return
    name, quoted = str(path), shlex.quote(str(path))
    if isinstance(whole, list):
        raise ParameterError(
            f"--predictions {name!r} is one JSON array, not JSON Lines (one "
            '{"id": ..., "response": ...} object per line). Convert it: '
            f"jq -c '.[]' {quoted} > predictions.jsonl"
        )
    answers = isinstance(whole, dict) and not {"id", "response"} & whole.keys()
    if answers and all(isinstance(v, str | None) for v in whole.values()):
        raise ParameterError(
            f"--predictions {name!r} is one JSON object of id -> answer, not JSON Lines (one "
            '{"id": ..., "response": ...} object per line). Convert it: '
            f"jq -c 'to_entries[] | {{id: .key, response: .value}}' {quoted} > predictions.jsonl"
        )


def check_predictions(path: Path) -> None:
    if path.is_dir():
        raise ParameterError(
            f"--predictions {str(path)!r} is a folder; give the JSONL file inside it "
            "(a notebook run folder holds predictions.jsonl)."
        )
    if not path.is_file():
        raise ParameterError(
            f"--predictions {str(path)!r} does not exist. Give a JSONL file with one "
            '{"id": ..., "response": ...} per line, such as a run folder\'s predictions.jsonl.'
        )


def score(
    dataset: str, predictions: Path, split: str = "validation"
) -> tuple[dict[str, Any], ScoreReport]:
    """The output document and the official score report; raises ParameterError when nothing
    can be scored."""
    read = load_predictions(predictions)
    root, questions, absent = load_questions(dataset, split)
    responses = read.responses
    ids = [q.id for q in questions]
    known = set(ids)
    unknown = [i for i in responses if i not in known]
    missing = [i for i in ids if i not in responses]
    report = score_predictions(questions, responses)
    vendor = score_predictions_vendor(questions, responses, report)
    problems = {
        "malformed_lines": read.malformed_lines(),
        "unknown_ids": unknown,
        "missing_ids": missing,
        "duplicate_ids": read.duplicates,
        "null_responses": [i for i, r in responses.items() if r is None and i in known],
        "dataset_missing_subjects": absent,
    }
    parameters = {
        "dataset": dataset,
        "dataset_path": str(root),
        "split": split,
        "subjects": sorted({q.subject for q in questions}, key=SUBJECTS.index),
        "predictions": str(predictions),
        "prediction_lines": read.line_count,
    }
    strict = {r.id: r.correct for r in vendor.records}
    records = []
    for r in report.records:
        record = r.to_dict()
        record["parsed"], cut = recorded_parsed(r.parsed)
        if cut:
            record["parsed_truncated"] = True
        record["vendor_strict_correct"] = strict[r.id]
        record["response"] = responses.get(r.id)
        record["missing"] = r.id not in responses
        records.append(record)
    document = {
        "mmmu": mmmu_section(
            report, vendor, parameters, source="python -m kit mmmu-score"
        ).to_dict(),
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
            f"To get them, {DOWNLOAD_HINT}.",
            file=file,
        )
    return kinds


def check_out(out: Path, predictions: Path) -> None:
    """Fail before scoring when --out cannot be written, or would replace the answers."""
    fix = "Give a file in a folder you can write, e.g. --out outputs/mmmu-scores.json."
    if out.exists() and predictions.exists() and out.resolve() == predictions.resolve():
        raise ParameterError(
            f"--out {str(out)!r} is the predictions file: the scores would replace the "
            "answers. Give another file, e.g. --out outputs/mmmu-scores.json."
        )
    if out.is_dir():
        raise ParameterError(f"--out {str(out)!r} is a folder. {fix}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(
            f"--out {str(out)!r}: its folder cannot be created ({_os_reason(exc)}). {fix}"
        ) from exc
    target = out if out.exists() else out.parent
    if not os.access(target, os.W_OK):
        raise ParameterError(f"--out {str(out)!r} is not writable by you. {fix}")


def write_document(out: Path, document: dict[str, Any]) -> None:
    """Strict JSON, UTF-8; a file whole or not at all, anything else (--out may be
    /dev/stdout) in place. A lone surrogate from a "\\ud800" escape in the input is written
    back as that escape."""
    text = jsonio.dumps(document, indent=2, ensure_ascii=False) + "\n"
    plain_file = not out.exists() or (out.is_file() and not out.is_symlink())
    try:
        if plain_file and os.access(out.parent, os.W_OK):  # renaming needs the folder
            write_atomic(out, text, errors="backslashreplace")
        else:
            with out.open("w", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(text)
    except OSError as exc:
        if exc.errno in NO_ROOM:  # not a bad input: kit's main names the file and the fix
            raise OSError(exc.errno, exc.strerror, str(out)) from None
        raise ParameterError(
            f"--out {str(out)!r} cannot be written ({_os_reason(exc)}). Give a file in a "
            "folder you can write, on a disk with room for it, e.g. "
            "--out outputs/mmmu-scores.json."
        ) from exc


def score_main(args: Any) -> int:
    """Entry point of ``python -m kit mmmu-score`` (args: dataset, predictions, split, out)."""
    out = Path(args.out) if args.out is not None else None
    try:
        if out is not None:
            check_out(out, Path(args.predictions))
        document, report = score(args.dataset, Path(args.predictions), args.split)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kinds = print_problems(document["problems"])
    o = report.overall
    strict = document["mmmu"]["scoring"][VENDOR_STRICT]["overall"]
    print(f"MMMU {args.split}: Overall {o.acc:.3f} ({o.correct}/{o.n} correct), official scoring")
    print(
        f"MMMU {args.split}: Overall {strict['acc']:.3f} ({strict['correct']}/{strict['n']} "
        "correct), vendor-strict scoring (multiple choice right only when the stripped "
        "response is the gold letter)"
    )
    for group, acc in report.groups.items():
        print(f"  {group:<32} {acc.acc:.3f}  (n={acc.n}, official)")
    print(
        f"random fallback (seed {report.seed}): {report.counts.fallbacks} multiple-choice "
        f"answer(s); unanswered (scored wrong): {report.counts.errors}; judged differently "
        f"by the two scorings: {document['mmmu']['scoring']['differing_questions']}"
    )
    if out is not None:
        try:
            write_document(out, document)
        except ParameterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {out}")
    return 1 if kinds else 0
