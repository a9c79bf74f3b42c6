"""What the MMMU notebook shows: rows for its tables, PNG charts, and HTML galleries of answers.

The functions return rows, PNG bytes or HTML strings from a scored run (kit.mmmu.outcome);
the notebook shows them with kit.report.display's ``show_*`` helpers. Both scorings are shown
side by side, with the questions they judge differently. Responses are cut to
``RESPONSE_SHOWN`` characters, and what comes from the model or the dataset is escaped.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from kit.mmmu.answer import QuestionPlan
from kit.mmmu.dataset import ImageReader, decode_image
from kit.mmmu.outcome import Outcome
from kit.mmmu.questions import (
    GROUPS,
    SUBJECT_GROUP,
    index_to_answer,
    official_prompt,
    select_images,
)
from kit.mmmu.scoring import ScoreReport, differing_verdicts, recorded_parsed
from kit.mmmu.section import SCORING_NAMES
from kit.records.mmmu import Accuracy
from kit.report.figures import figure_png
from kit.report.html import escape, text_block

RESPONSE_SHOWN = 1000  # characters of a response the gallery and tables show

DIFFERING_SHOWN = 20  # questions listed where the two scorings disagree


def overall_rows(outcome: Outcome) -> list[dict[str, Any]]:
    """This run under both scorings, then each reference against the matching one."""
    rows: list[dict[str, Any]] = []
    for report in (outcome.report, outcome.vendor):
        o = report.overall
        rows.append(
            {
                "source": "this run",
                "accuracy": o.acc if o.n else None,
                "scoring": SCORING_NAMES[report.scoring],
                "this run - reference (points)": None,
                "note": f"{o.correct}/{o.n} correct",
            }
        )
    return rows + [dict(r) for r in outcome.section.references]


def deviation_rows(outcome: Outcome) -> list[dict[str, Any]]:
    return [{"difference from the vendor's run": d} for d in outcome.section.deviations or ()]


def _points(a: float | None, b: float | None) -> str | None:
    return None if a is None or b is None else f"{100 * (a - b):+.1f}"


def scoring_rows(official: ScoreReport, vendor: ScoreReport) -> list[dict[str, Any]]:
    """Overall and groups under both scorings, side by side."""
    pairs = [("Overall", official.overall, vendor.overall)]
    pairs += [(g, a, vendor.groups[g]) for g, a in official.groups.items() if g in vendor.groups]
    return [
        {
            "": name,
            "official": a.acc,
            "vendor-strict": b.acc,
            "vendor-strict - official (points)": _points(b.acc, a.acc),
            "n": a.n,
        }
        for name, a, b in pairs
    ]


def _shown(text: str | None, limit: int = RESPONSE_SHOWN) -> str:
    """A response as displayed: repr (whitespace visible), cut after `limit` characters."""
    if text is None:
        return "None"
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def differing_rows(outcome: Outcome, limit: int = DIFFERING_SHOWN) -> list[dict[str, Any]]:
    """The first `limit` questions the two scorings judge differently, with the response."""
    strict = {r.id: r for r in outcome.vendor.records}
    by_id = {r.id: r for r in outcome.report.records}
    rows = []
    for qid in differing_verdicts(outcome.report, outcome.vendor)[:limit]:
        official = by_id[qid]
        parsed, _ = recorded_parsed(official.parsed)
        rows.append(
            {
                "id": qid,
                "response": _shown(outcome.lines.get(qid, {}).get("response")),
                "gold": official.gold,
                "official parse": parsed,
                "official": "right" if official.correct else "wrong",
                "vendor-strict": "right" if strict[qid].correct else "wrong",
                "random fallback": official.used_fallback,
            }
        )
    return rows


def group_rows(report: ScoreReport, vendor: ScoreReport | None = None) -> list[dict[str, Any]]:
    rows = []
    for g, a in report.groups.items():
        row = {"group": g, "accuracy": a.acc, "correct": a.correct, "n": a.n}
        if vendor is not None and g in vendor.groups:
            row["vendor-strict accuracy"] = vendor.groups[g].acc
        rows.append(row)
    return rows


def subject_rows(report: ScoreReport, vendor: ScoreReport | None = None) -> list[dict[str, Any]]:
    rows = []
    for s, a in report.subjects.items():
        row = {
            "subject": s,
            "group": SUBJECT_GROUP.get(s, ""),
            "accuracy": a.acc,
            "correct": a.correct,
            "n": a.n,
        }
        if vendor is not None and s in vendor.subjects:
            row["vendor-strict accuracy"] = vendor.subjects[s].acc
        rows.append(row)
    return rows


def breakdown_rows(acc_by: Mapping[str, Accuracy], name: str) -> list[dict[str, Any]]:
    return [{name: k, "accuracy": a.acc, "correct": a.correct, "n": a.n} for k, a in acc_by.items()]


def letter_rows(report: ScoreReport) -> list[dict[str, Any]]:
    from_fallback: dict[str, int] = {}
    for r in report.records:
        if r.used_fallback and isinstance(r.parsed, str):
            from_fallback[r.parsed] = from_fallback.get(r.parsed, 0) + 1
    letters_seen = sorted(set(report.predicted_letters) | set(report.gold_letters))
    return [
        {
            "letter": x,
            "predicted": report.predicted_letters.get(x, 0),
            "of which random fallback": from_fallback.get(x, 0),
            "gold": report.gold_letters.get(x, 0),
        }
        for x in letters_seen
    ]


def count_rows(outcome: Outcome) -> list[dict[str, Any]]:
    c = outcome.report.counts
    t = outcome.section.timing or {}
    rows = {
        "questions": c.questions,
        "answered": c.answered,
        "errors (counted wrong)": c.errors,
        "multiple-choice answers from the random fallback (seed 42)": c.fallbacks,
        "questions the two scorings judge differently": outcome.section.differing_questions,
        "answered in this attempt": t["answered"] + t["errors"],
        "answered in earlier attempts": t["previously_answered"],
        "answering wall time (s)": round(t["seconds"], 2),
        "questions/s (this attempt)": t["questions_per_s"],
        "output tokens (this attempt)": t["output_tokens"],
    }
    return [{"name": k, "value": v} for k, v in rows.items()]


def error_rows(outcome: Outcome) -> list[dict[str, Any]]:
    return [dict(q) for q in outcome.section.error_questions or ()]


def png_bytes(figure: Any) -> bytes:
    """A pyplot-free Figure as PNG (it needs a canvas attached first)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    return figure_png(figure)


def subject_chart(report: ScoreReport, references: Sequence[float] = ()) -> bytes:
    """Horizontal bars per subject (official order), coloured by group, with Overall."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    subjects = list(report.subjects)
    groups = list(GROUPS)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    fig = Figure(figsize=(8, 0.28 * max(len(subjects), 4) + 1.2))
    ax = fig.subplots()
    ys = list(range(len(subjects)))[::-1]
    accs = [report.subjects[s].acc or 0.0 for s in subjects]
    overall = report.overall.acc or 0.0
    cols = [colours[groups.index(SUBJECT_GROUP[s]) % 6] for s in subjects]
    ax.barh(ys, accs, color=cols)
    ax.set_yticks(ys, [f"{s} (n={report.subjects[s].n})" for s in subjects], fontsize=8)
    ax.axvline(overall, color="black", linestyle="--", linewidth=1)
    ax.text(overall, len(subjects) - 0.4, f" Overall {overall:.3f}")
    for ref in references:
        ax.axvline(ref, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title("MMMU accuracy by subject (colour = group; dotted = references)")
    handles = [
        Patch(color=colours[i], label=g)
        for i, g in enumerate(groups)
        if any(SUBJECT_GROUP[s] == g for s in subjects)
    ]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png_bytes(fig)


def letter_chart(report: ScoreReport) -> bytes:
    from matplotlib.figure import Figure

    rows = letter_rows(report)
    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["predicted"] for r in rows], 0.4, label="predicted")
    ax.bar([x + 0.2 for x in xs], [r["gold"] for r in rows], 0.4, label="gold")
    ax.set_xticks(list(xs), [r["letter"] for r in rows])
    ax.set_ylabel("multiple-choice questions")
    ax.set_title("Predicted vs gold letters")
    ax.legend()
    return png_bytes(fig)


def image_data_uri(image: Any, max_side: int = 200) -> str:
    thumb = image.copy()
    thumb.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


GALLERY_STYLE = (
    "<style>.mmmu-card{display:flex;gap:12px;border:1px solid #ddd;padding:8px;margin:6px 0}"
    ".mmmu-card img{max-width:200px;max-height:200px;flex:none}"
    ".mmmu-card pre{white-space:pre-wrap;margin:2px 0;font-size:0.9em}"
    ".mmmu-card .bad{color:#b22}.mmmu-card .ok{color:#272}</style>"
)


def gallery_html(plan: QuestionPlan, outcome: Outcome, limit: int) -> str:
    """Up to `limit` wrong answers (not errors): thumbnail, question, options, response, gold,
    and the vendor-strict verdict."""

    wrong = [r for r in outcome.report.records if not r.correct and not r.error][:limit]
    if not wrong:
        return "<p>No wrong answers to show.</p>"
    by_id = plan.by_id
    strict = {r.id: r.correct for r in outcome.vendor.records}
    reader = ImageReader()
    cards = []
    for r in wrong:
        q = by_id[r.id]
        line = outcome.lines.get(r.id, {})
        try:
            numbers = select_images(q, plan.params.image_policy) or q.image_refs[:1]
            img = decode_image(reader.image_bytes(q, numbers[0])) if numbers else None
            alt = f"{escape(q.id)} image_{numbers[0]}" if numbers else ""
            thumb = f'<img src="{image_data_uri(img)}" alt="{alt}">' if img else ""
        except Exception:
            thumb = "<p>(image not decodable)</p>"
        options = "".join(
            f"({escape(k)}) {escape(v)}\n" for k, v in index_to_answer(q.options).items()
        )
        parsed_value, _ = recorded_parsed(r.parsed)
        parsed = parsed_value if isinstance(parsed_value, str) else json.dumps(parsed_value)
        fallback = " (random fallback)" if r.used_fallback else ""
        vendor = "right" if strict.get(r.id) else "wrong"
        cards.append(
            '<div class="mmmu-card">'
            f"{thumb}<div><b>{escape(q.id)}</b> &middot; {escape(q.question_type)} &middot; "
            f"{escape(q.topic_difficulty)}"
            f"<pre>{escape(q.question)}</pre>"
            + (f"<pre>{options}</pre>" if options else "")
            + f'<div>response: <code class="bad">{escape(_shown(line.get("response")))}</code>'
            "</div>"
            f"<div>parsed: <code>{escape(parsed)}</code>{escape(fallback)}</div>"
            f'<div>gold: <code class="ok">{escape(r.gold)}</code></div>'
            f"<div>vendor-strict: {vendor}</div>"
            "</div></div>"
        )
    reader.close()
    return GALLERY_STYLE + "".join(cards)


def example_html(plan: QuestionPlan) -> str:
    """The first question as the model sees it: the full chat prompt and its image(s)."""

    q = plan.questions[0]
    numbers = select_images(q, plan.params.image_policy)
    thumbs = []
    for k in numbers:
        try:
            img = decode_image(plan.reader.image_bytes(q, k))
            thumbs.append(f'<img src="{image_data_uri(img)}" alt="{escape(q.id)} image_{k}">')
        except Exception as exc:
            thumbs.append(f"<p>image_{k} does not decode: {escape(exc)}</p>")
    prompt = plan.family.prompt(official_prompt(q), len(numbers))
    return (
        f"<p>Example: <b>{escape(q.id)}</b>, images sent: {escape(numbers)}</p>"
        + "".join(thumbs)
        + text_block(prompt)
    )
