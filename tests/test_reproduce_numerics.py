"""reproduce with a reference device's numerics run (``numerics_reference``): one more child,
``kit run numerics``, planned with the reference and the model, its problems refused before
anything runs, and its verdict beside the demo's text comparison. Children are faked with
hand-made results.json documents; no engine starts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kit.core.params import ParameterError
from kit.numerics.params import NumericsParams
from kit.numerics.prompts import DEFAULT_PROMPT_SET
from kit.records.numerics import NUMERICS_FILE
from kit.records.results import RunRecord
from kit.reproduce.params import ReproduceParams, plan_children, resolve_params_file
from kit.reproduce.report import build_report
from kit.reproduce.verdict_table import LEGEND
from kit.reproduce.verdicts import (
    CONSISTENT,
    INCOMPLETE,
    MATCHES,
    NO_REFERENCE,
    NOT_APPLICABLE,
    NOT_CONSISTENT,
    NOT_MEASURED,
    numerics_verdict,
)
from kit.runs.parameters import RunRequest, merge_parameters
from kit.runs.runner import execute

from .test_reproduce import REFS, FakeExecute, params, reproduction

# A valid numerics.jsonl line (kit.records.numerics.PromptNumerics)
LINE = {
    "id": "text-capital",
    "kind": "text",
    "num_images": 0,
    "prompt_tokens": 12,
    "generated": [{"token": 5, "text": "a", "logprob": -0.1, "rank": 1, "top_k": [[5, -0.1]]}],
    "forced": None,
    "forced_on": None,
    "generated_text": "a",
}


def reference_run(folder: Path, digest: str | None = None) -> Path:
    """A numerics run folder as copied from the reference device."""
    folder.mkdir(parents=True)
    (folder / NUMERICS_FILE).write_text(json.dumps(LINE) + "\n")
    if digest is not None:
        document = {
            "schema_version": 2,
            "notebook": "numerics",
            "status": "ok",
            "numerics_run": {"prompt_set": DEFAULT_PROMPT_SET, "prompt_set_digest": digest},
        }
        (folder / "results.json").write_text(json.dumps(document))
    return folder


# ----------------------------------------------------------------------------------------
# Parameters and the plan
# ----------------------------------------------------------------------------------------


def test_the_numerics_child_is_planned_only_with_a_reference(tmp_path):
    assert "numerics" not in [c.key for c in plan_children(params())]
    reference = reference_run(tmp_path / "20261205-110000-numerics-bbbbbb")
    p = params(numerics_reference=str(reference), overrides={"numerics": {"top_k": 3}})
    plans = plan_children(p)
    assert [c.key for c in plans] == ["model", "demo", "numerics", "mmmu", "perf:smoke-perf"]
    child = plans[2]
    assert (child.section, child.notebook) == ("numerics", "numerics")
    assert child.files == (str(resolve_params_file("params/smoke-numerics.yaml", "x")),)
    assert child.values == {"model": "smoke", "reference": str(reference), "top_k": 3}
    request = child.request()
    assert request.notebook == "numerics" and request.schema is NumericsParams
    merged = merge_parameters(request)  # the file, then the reference and the model
    assert merged["reference"] == str(reference) and merged["model"] == "smoke"
    assert merged["dtype"] == "float32"  # from params/smoke-numerics.yaml
    assert "-y 'reference: " in child.describe()
    # sections do not choose it: numerics_reference does
    only = plan_children(params(sections=["perf"], numerics_reference=str(reference)))
    assert [c.key for c in only] == ["numerics", "perf:smoke-perf"]


def test_a_relative_reference_is_made_absolute_for_the_child(tmp_path, monkeypatch):
    reference = reference_run(tmp_path / "copied" / "ref")
    monkeypatch.chdir(tmp_path)
    given = str(Path("copied") / "ref" / NUMERICS_FILE)  # the file itself also does
    (child,) = [c for c in plan_children(params(numerics_reference=given)) if c.key == "numerics"]
    assert child.values["reference"] == str(reference / NUMERICS_FILE)


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "a folder without numerics.jsonl"),
    ],
)
def test_a_missing_reference_is_refused_before_anything_runs(tmp_path, outputs, make, expected):
    value = str(make(tmp_path))
    with pytest.raises(ParameterError, match=re.escape("Parameter 'numerics_reference'")) as e:
        params(numerics_reference=value)
    assert expected in str(e.value)
    # through kit run: refused before a run folder exists, let alone a child
    request = RunRequest("reproduce", ReproduceParams, raw_params=[("numerics_reference", value)])
    with pytest.raises(ParameterError, match="numerics_reference"):
        execute(request)
    assert not outputs.exists() or not any(outputs.iterdir())


def test_numerics_is_not_a_section_and_may_have_overrides(tmp_path):
    with pytest.raises(ParameterError, match="numerics is not a section.*numerics_reference"):
        params(sections=["model", "numerics"])
    with pytest.raises(ParameterError, match="'numerics_params'"):
        params(numerics_params=["params/nope.yaml"])
    params(overrides={"numerics": {"max_tokens": 8}})  # a child section's overrides


def test_the_numerics_child_is_preflighted_with_the_others(tmp_path):
    """A reference made with another prompt set is refused, naming the child, before the
    first child starts."""
    reference = reference_run(tmp_path / "ref", digest="0" * 64)
    p = params(sections=["model"], numerics_reference=str(reference))
    with pytest.raises(ParameterError, match=r"section 'numerics'.*another prompt set"):
        p.preflight()


def test_resume_refuses_another_reference(tmp_path):
    first = reference_run(tmp_path / "first")
    other = reference_run(tmp_path / "other")
    run = tmp_path / "run"
    run.mkdir()
    (run / "parameters.yaml").write_text(f"numerics_reference: {first}\n")
    params(numerics_reference=str(first / NUMERICS_FILE)).check_resume(run)  # the same run
    with pytest.raises(ParameterError, match="numerics_reference differ"):
        params(numerics_reference=str(other)).check_resume(run)
    (run / "parameters.yaml").write_text("numerics_params: [params/smoke-numerics.yaml]\n")
    with pytest.raises(ParameterError, match="numerics_params differ"):
        params(numerics_params=["params/smoke-demo.yaml"]).check_resume(run)


# ----------------------------------------------------------------------------------------
# The verdict
# ----------------------------------------------------------------------------------------

REFERENCE = "20261205-110000-numerics-bbbbbb"


def comparison(verdict: str, prompts=(), mean=0.0161, largest=0.0625) -> dict:
    counts: dict[str, int] = {"identical": 0, "close": 0, "incomplete": 0, "diverged": 0}
    for _, word, _ in prompts:
        counts[word] += 1
    return {
        "reference": REFERENCE,
        "verdict": verdict,
        "counts": counts,
        "positions": 192,
        "mean_abs_delta": mean,
        "max_abs_delta": largest,
        "prompts": [{"id": i, "verdict": w, "reason": r} for i, w, r in prompts],
    }


CLOSE = (("text-capital", "close", None), ("images-two", "identical", None))


def numerics_run(section: dict | None, weights: str = "checkpoint") -> RunRecord:
    document = {"schema_version": 2, "notebook": "numerics", "status": "ok"}
    document["engine"] = {"weights": weights}
    if section is not None:
        document["numerics"] = section
    return RunRecord.of(document)


def test_numerics_verdict_rules():
    close = numerics_verdict(REFERENCE, numerics_run(comparison("close", CLOSE)), link="../n")
    assert (close.section, close.claim) == ("numerics", "numerics against the reference")
    assert close.verdict == CONSISTENT and "within the thresholds" in close.why
    assert close.document == f"the reference run {REFERENCE}: its greedy tokens and logprobs"
    assert close.measured == (
        "close: 1 identical, 1 close; 192 teacher-forced positions, mean |Δ logprob| 0.0161, "
        "max 0.0625"
    )
    assert close.link == "../n"
    assert close.numbers["max_abs_delta"].value == 0.0625
    assert close.numbers["max_abs_delta"].n == 192
    assert close.numbers["prompts_close"].value == 1 and close.numbers["prompts_close"].n == 2
    identical = comparison("identical", (("a", "identical", None),), 0.0, 0.0)
    assert numerics_verdict(REFERENCE, numerics_run(identical)).verdict == MATCHES
    diverged = comparison(
        "diverged",
        (
            ("text-capital", "close", None),
            ("long-8k", "diverged", "|Δ logprob| 0.41 > 0.25 at position 7"),
            ("images-two", "diverged", "greedy check failed at position 3"),
        ),
    )
    verdict = numerics_verdict(REFERENCE, numerics_run(diverged))
    assert verdict.verdict == NOT_CONSISTENT
    assert verdict.why == (
        "2 prompt(s) diverged from the reference: long-8k: |Δ logprob| 0.41 > 0.25 at "
        "position 7; images-two: greedy check failed at position 3"
    )
    incomplete = comparison("incomplete", (("a", "close", None), ("b", "incomplete", "missing")))
    verdict = numerics_verdict(REFERENCE, numerics_run(incomplete))
    assert verdict.verdict == INCOMPLETE and "1 prompt(s) could not be judged: b: missing" in (
        verdict.why
    )
    dummy = numerics_verdict(REFERENCE, numerics_run(comparison("close", CLOSE), "dummy"))
    assert dummy.verdict == NOT_APPLICABLE and "dummy" in dummy.why
    failed = numerics_verdict("ref", None, "child failed: no engine")
    assert (failed.verdict, failed.why, failed.measured) == (
        NOT_MEASURED,
        "child failed: no engine",
        "–",
    )
    assert "the reference run ref" in failed.document
    nothing = numerics_verdict("ref", numerics_run(None))
    assert nothing.verdict == NOT_MEASURED and "recorded no comparison" in nothing.why


def test_incomplete_is_in_the_one_legend():
    (missing,) = [words for kind, _, words in LEGEND if kind == "missing"]
    assert "incomplete" in missing and len(LEGEND) == 4


# ----------------------------------------------------------------------------------------
# The report: the verdict beside the demo's, the child linked
# ----------------------------------------------------------------------------------------


def finished(tmp_path: Path, section: dict | None, statuses=None, **values):
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    sections = {} if section is None else {"numerics": {"numerics": section}}
    r = reproduction(parent, FakeExecute(statuses or {}, sections=sections), **values)
    r.run_children()
    return r, build_report(r, REFS)


def test_the_numerics_verdict_sits_beside_the_demos_with_its_run_linked(tmp_path):
    reference = reference_run(tmp_path / REFERENCE)
    hostile = (("<img src=x onerror=alert(1)>", "diverged", "<b>why</b>|"),)
    r, report = finished(
        tmp_path, comparison("diverged", hostile), numerics_reference=str(reference)
    )
    assert [v.section for v in report.verdicts][:4] == ["model", "demo", "demo", "numerics"]
    (verdict,) = report.section("numerics")
    assert verdict.verdict == NOT_CONSISTENT and verdict.link == r.records["numerics"].folder
    assert report.links["numerics"] == r.records["numerics"].folder
    html, md = report.demo_table()
    assert "Demo answers, and numerics against the reference run" in html
    assert html.count("<tr>") == 1 + 3  # the head, two demo answers, the numerics check
    assert '<span class="kit-verdict kit-verdict-bad">not consistent</span>' in html
    assert ">numerics run</a>" in html and "[numerics run](../" in md
    assert "<img" not in html and "<b>why" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;: &lt;b&gt;why&lt;/b&gt;|" in html
    assert "<img" not in md and "&lt;b&gt;why&lt;/b&gt;\\|" in md
    links = report.demo_links()
    assert [h for h, _ in links][1].startswith("<p>Report of the <a href=")
    assert ">numerics run</a>" in links[1][0] and "[numerics run](" in links[1][1]
    full, _ = report.verdict_table(legend=True)
    assert full.count('class="kit-legend"') == 1  # one legend, numerics included
    record = report.to_record().to_dict()
    json.dumps(record, allow_nan=False)
    saved = [v for v in record["verdicts"] if v["section"] == "numerics"]
    assert saved[0]["numbers"]["max_abs_delta"]["value"] == 0.0625
    assert record["verdict_counts"][NOT_CONSISTENT] == 1


def test_without_a_reference_nothing_changes(tmp_path):
    r, report = finished(tmp_path, None)
    assert "numerics" not in r.records and "numerics" not in report.links
    assert report.section("numerics") == []
    html, _ = report.demo_table()
    assert "<caption>Demo answers</caption>" in html
    assert html.count("<tr>") == 1 + len(report.section("demo"))
    assert len(report.demo_links()) == 1


def test_a_failed_numerics_child_is_not_measured(tmp_path):
    reference = reference_run(tmp_path / REFERENCE)
    _, report = finished(tmp_path, None, {"numerics": "failed"}, numerics_reference=str(reference))
    (verdict,) = report.section("numerics")
    assert verdict.verdict == NOT_MEASURED and verdict.why == "child failed: numerics broke"
    assert verdict.document.startswith(f"the reference run {REFERENCE}")


def test_another_model_keeps_its_numerics_verdict(tmp_path):
    """No claim of the document is about another model, but the check against the
    reference run is."""
    reference = reference_run(tmp_path / REFERENCE)
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    fake = FakeExecute(
        {}, ["MiniCPMV"], sections={"numerics": {"numerics": comparison("close", CLOSE)}}
    )
    r = reproduction(parent, fake, numerics_reference=str(reference))
    r.run_children()
    report = build_report(r, REFS)
    assert report.section("numerics")[0].verdict == CONSISTENT
    assert report.section("demo")[0].verdict == NO_REFERENCE
