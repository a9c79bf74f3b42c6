"""``outputs/index.html``: every run, newest first, with its headline numbers and links."""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from kit.core.files import write_atomic
from kit.records.base import ResultsError
from kit.records.results import RESULTS_FILE, read_run
from kit.records.summary import RunSummary
from kit.report.html import TABLE_STYLE, escape, format_value
from kit.runs.record import mark_if_gone, outputs_dir


def collect_runs(root: Path) -> tuple[list[RunSummary], list[str]]:
    """Summaries of every run folder under ``root``, and the folders that could not be read.

    A record still "running" whose process is gone (killed with SIGKILL, a crashed machine)
    is marked "interrupted" on the way.
    """
    summaries, problems = [], []
    for path in sorted(root.glob(f"*/{RESULTS_FILE}")):
        mark_if_gone(path)
        try:
            summaries.append(RunSummary.of(read_run(path)))
        except ResultsError as exc:
            problems.append(str(exc))
    summaries.sort(key=lambda s: (s.started_at, s.folder), reverse=True)
    return summaries, problems


def _headline_text(summary: RunSummary) -> str:
    return "; ".join(f"{k}: {format_value(v)}" for k, v in summary.headline.items())


def index_html(summaries: list[RunSummary], problems: list[str], root: Path) -> str:
    rows = []
    for s in summaries:
        folder = Path(s.folder)
        report = folder / "report.html"
        link = (
            f'<a href="{html.escape(str(report.relative_to(root)), quote=True)}">report</a>'
            if report.is_file() and report.is_relative_to(root)
            else ""
        )
        status_colour = {"ok": "#2a7", "running": "#c80"}.get(s.status, "#c33")
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    escape(s.started_at[:19].replace("T", " ")),
                    escape(s.notebook),
                    escape(s.label),
                    escape(s.device),
                    escape(s.model),
                    escape(s.revision),
                    f'<span style="color:{status_colour}">{escape(s.status)}</span>',
                    escape(_headline_text(s)),
                    link,
                    escape(folder.name),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "started (UTC)",
            "notebook",
            "label",
            "device",
            "model",
            "model revision",
            "status",
            "headline",
            "report",
            "folder",
        )
    )
    unreadable = "".join(f"<li>{escape(p)}</li>" for p in problems)
    generated = datetime.now().isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Runs</title>'
        f"{TABLE_STYLE}<style>body{{font-family:sans-serif;margin:2em}}</style></head><body>"
        f"<h1>Runs</h1><p>{len(summaries)} runs in {escape(root)}, newest first "
        f"(generated {escape(generated)}).</p>"
        f'<table class="kit-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
        "</tbody></table>"
        + (f"<h2>Folders that could not be read</h2><ul>{unreadable}</ul>" if problems else "")
        + "</body></html>"
    )


def write_index(root: Path | None = None) -> Path:
    root = (root or outputs_dir()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    summaries, problems = collect_runs(root)
    target = root / "index.html"
    write_atomic(target, index_html(summaries, problems, root))
    return target
