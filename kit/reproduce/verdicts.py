"""The verdict rules of the reproduce notebook: one claim of the vendor's document, the
kit's measurement beside it, and the word that judges them.

Every rule is a pure function of the document's reference (kit.records.references) and what
a child run recorded (kit.records.results), so tests check each one without an engine and
docs/reproduce.md can say exactly when each verdict is given. Reading the children and laying
out the report is kit.reproduce.report's work; running them is kit.reproduce.reproduction's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kit.compare.agreement import TextAgreement
from kit.compare.numerics import counts_text
from kit.core.devices import device_key
from kit.core.intervals import Interval, mean_interval, wilson
from kit.models.registry import TINY_MODEL, is_tiny_model
from kit.records.caches import served_from_cache
from kit.records.perf import PerfPointRecord, point_label
from kit.records.references import (
    PERF_METRICS,
    AccuracyReference,
    DemoReference,
    EnvironmentReference,
    ModelIdentity,
    ReferenceRow,
)
from kit.records.reproduce import Measured, Verdict
from kit.records.results import RunRecord
from kit.reproduce.model_check import ModelCheck

# Verdicts (docs/reproduce.md says when each is given)
MATCHES = "matches"

DIFFERS = "differs"

CONSISTENT = "consistent"

NOT_CONSISTENT = "not consistent"

NOT_COMPARABLE = "not comparable"

NOT_APPLICABLE = "not applicable"

NOT_MEASURED = "not measured"

NOT_VERIFIED = "not verified"

COMPARED = "compared"

NOT_REPRODUCED = "not reproduced"

NO_REFERENCE = "no reference"

INCOMPLETE = "incomplete"  # numerics: nothing diverged, but some prompts could not be judged


def no_reference(verdict: Verdict, architectures: Sequence[str], documented: str) -> Verdict:
    """A claim about another model: the measurement stays, the document has nothing for it."""
    return replace(
        verdict,
        verdict=NO_REFERENCE,
        why=f"the document's figures are {documented}'s; this run's model is "
        f"{', '.join(architectures)}, for which it gives no reference",
    )


METRIC_NAMES = {
    "ttft_ms": "TTFT (ms)",
    "tps": "TPS (tokens/s)",
    "prefill_ms": "prefill latency (ms)",
    "decode_ms_per_token": "decode latency (ms/token)",
}

MMMU_FULL_VALIDATION = 900


def ran_tiny_model(run: RunRecord) -> bool:
    """The kit's tiny random-weight model ran (by name, or a folder the kit built)."""
    return is_tiny_model(run.parameters.get("model")) or run.environment.model_files.built_by_kit


def reproduced(tolerance: float) -> str:
    return f"reproduced within ±{tolerance:.0%}"


def model_verdict(
    reference: ModelIdentity, check: ModelCheck | None, child_problem: str | None = None
) -> Verdict:
    """The manifest's resolved commit against the document's (ModelScope, commit prefix)."""
    document = reference.text()

    def verdict(measured: str, word: str, why: str) -> Verdict:
        return Verdict("model", "model revision", document, measured, word, why)

    if child_problem is not None or check is None:
        return verdict("–", NOT_MEASURED, child_problem or "the model was not checked")
    if check.kind == "smoke":
        return verdict(
            f"the kit's tiny model ({check.model})",
            NOT_APPLICABLE,
            "the tiny random-weight model the kit builds itself: it has no download manifest "
            "and is not Phi-3.5-vision-instruct",
        )
    if check.kind == "dummy":
        return verdict(
            f"{check.model} (random weights)",
            NOT_APPLICABLE,
            "a folder without weights (dummy weights): there is no checkpoint to identify",
        )
    if check.kind == "hub id":
        return verdict(
            check.model,
            NOT_VERIFIED,
            "a hub id, fetched by vLLM at start: no local folder and manifest to check. "
            "Download it first (params/download-phi35v-modelscope.yaml) and pass the folder",
        )
    if check.manifest is None:
        return verdict(
            f"folder {check.path}",
            NOT_VERIFIED,
            "the folder has no manifest.json, so its revision is unknown: download it with "
            "python -m kit run download -f params/download-phi35v-modelscope.yaml",
        )
    m = check.manifest
    measured = f"{m.get('source')} {m.get('repo_id')}@{m.get('commit') or m.get('revision')}"
    files = (
        f"{check.files} files verified against the manifest (size and sha256)"
        if check.hashed
        else f"{check.files} files checked by size only (verify_hashes: false)"
    )
    if not reference.matches(m.get("source"), m.get("repo_id"), m.get("commit")):
        return verdict(
            measured,
            DIFFERS,
            f"the manifest records another revision than the document's {document}; the "
            "weights may still be equal, which only a file-by-file sha256 comparison shows",
        )
    if check.problems:
        shown = "; ".join(check.problems[:3]) + ("; ..." if len(check.problems) > 3 else "")
        return verdict(
            measured,
            DIFFERS,
            f"the manifest names the document's commit, but {len(check.problems)} problem(s) "
            f"with the files: {shown}",
        )
    return verdict(
        measured, MATCHES, f"the resolved commit starts with {reference.commit}; {files}"
    )


def demo_settings_problems(parameters: Mapping[str, Any], reference: DemoReference) -> list[str]:
    """Settings of a demo run that differ from the document's demo (prompt, decoding)."""
    problems = []
    if str(parameters.get("prompt", "")).strip() != reference.prompt.strip():
        problems.append(f"prompt {parameters.get('prompt')!r} (document: {reference.prompt!r})")
    if parameters.get("max_output_len") != reference.max_output_len:
        problems.append(
            f"max_output_len {parameters.get('max_output_len')} "
            f"(document: {reference.max_output_len})"
        )
    if float(parameters.get("temperature") or 0.0) != reference.temperature:
        problems.append(f"temperature {parameters.get('temperature')} (document: greedy)")
    dtype = parameters.get("dtype")
    if reference.dtype and dtype not in (None, "auto", reference.dtype):
        problems.append(f"dtype {dtype} (document: {reference.dtype})")
    return problems


def uses_kit_picture(parameters: Mapping[str, Any]) -> bool:
    return list(parameters.get("image") or ["demo"]) == ["demo"]


def demo_verdict(
    device: str,
    reference: DemoReference,
    run: RunRecord | None,
    agreement: TextAgreement | None,
    vendor_pair: TextAgreement,
    child_problem: str | None = None,
    link: str | None = None,
) -> Verdict:
    """The measured answer against one device's answer; the scale is how long the two
    vendor answers agree with each other (``vendor_pair``)."""
    claim = f"demo answer ({device})"
    document = (
        f"{device}'s answer, {len(reference.answers[device].split())} words; S60 and L40s "
        f"agree for {vendor_pair.words.common} words"
    )

    numbers: dict[str, Measured] = {}

    def verdict(measured: str, word: str, why: str) -> Verdict:
        return Verdict("demo", claim, document, measured, word, why, link, numbers)

    if child_problem is not None or run is None or agreement is None:
        return verdict("–", NOT_MEASURED, child_problem or "no demo answer recorded")
    numbers = agreement_numbers(agreement, vendor_pair)
    measured = agreement.describe()
    if ran_tiny_model(run):
        return verdict(
            measured,
            NOT_APPLICABLE,
            f"the tiny random-weight model ({TINY_MODEL}): its answer is noise",
        )
    if run.engine is not None and run.engine.weights == "dummy":
        return verdict(measured, NOT_APPLICABLE, "dummy (random) weights: the answer is noise")
    problems = demo_settings_problems(run.parameters, reference)
    if problems:
        return verdict(measured, NOT_COMPARABLE, "other settings: " + "; ".join(problems))
    if uses_kit_picture(run.parameters):
        return verdict(
            measured,
            NOT_COMPARABLE,
            "the kit's own robot picture was used (image: demo); the vendor's image is not "
            "published, and an exact match needs it (-y 'overrides: {demo: {image: [path]}}')",
        )
    scale = vendor_pair.words.common
    if agreement.identical:
        return verdict(measured, MATCHES, f"identical to the {device} answer")
    if agreement.words.common >= scale:
        return verdict(
            measured,
            CONSISTENT,
            f"agrees for {agreement.words.common} words, at least as long as S60 and L40s agree "
            f"with each other ({scale} words): within the devices' numerical difference",
        )
    image = ", ".join(map(str, run.parameters.get("image") or []))
    return verdict(
        measured,
        DIFFERS,
        f"diverges after {agreement.words.common} words, earlier than S60 and L40s do ({scale} "
        f"words); if {image} is not the vendor's picture, a difference is expected",
    )


def agreement_numbers(agreement: TextAgreement, vendor_pair: TextAgreement) -> dict[str, Measured]:
    """The common prefix in words (and tokens) of the two answers, beside the vendor's two
    answers' own (the scale of a numerical difference between devices)."""
    numbers = {
        "common_words": Measured(
            value=agreement.words.common,
            n=agreement.words.length_b,
            reference=vendor_pair.words.common,
        )
    }
    if agreement.tokens is not None:
        numbers["common_tokens"] = Measured(
            value=agreement.tokens.common,
            n=agreement.tokens.length_b,
            reference=vendor_pair.tokens.common if vendor_pair.tokens else None,
        )
    return numbers


def mmmu_not_comparable(run: RunRecord) -> list[str]:
    """Why an MMMU run's accuracy cannot be held against the document's (empty: it can)."""
    reasons = []
    parameters = run.parameters
    if ran_tiny_model(run):
        reasons.append(f"the tiny random-weight model ({TINY_MODEL}): its accuracy is noise")
    if run.engine is not None and run.engine.weights == "dummy":
        reasons.append("dummy (random) weights")
    if parameters.get("dataset") == "fixture":
        reasons.append("the synthetic fixture, not MMMU")
    n = run.mmmu.official.n if run.mmmu else None
    if parameters.get("split", "validation") != "validation":
        reasons.append(f"split {parameters.get('split')}, not validation")
    elif n is not None and n != MMMU_FULL_VALIDATION:
        reasons.append(f"a subset: {n} of the {MMMU_FULL_VALIDATION} validation questions")
    return reasons


def mmmu_interval(run: RunRecord, scoring: str) -> Interval | None:
    """The Wilson interval of the Overall under ``scoring`` (vendor_strict or official)."""
    if run.mmmu is None:
        return None
    accuracy = run.mmmu.vendor_strict if scoring == "vendor_strict" else run.mmmu.official
    if accuracy is None or accuracy.n is None or accuracy.correct is None:
        return None
    return wilson(int(accuracy.correct), int(accuracy.n))


SCORING_LABEL = {"vendor_strict": "vendor-strict", "official": "official"}


def mmmu_verdict(
    reference: AccuracyReference,
    run: RunRecord | None,
    child_problem: str | None = None,
    link: str | None = None,
) -> Verdict:
    """The reference's accuracy inside (or not) the 95% Wilson interval of the same scoring."""
    scoring = reference.scoring or "official"
    claim = f"MMMU accuracy ({reference.device})"
    document = f"{reference.accuracy:.3f} ({SCORING_LABEL.get(scoring, scoring)} scoring)"

    numbers: dict[str, Measured] = {}

    def verdict(measured: str, word: str, why: str) -> Verdict:
        return Verdict("mmmu", claim, document, measured, word, why, link, numbers)

    if child_problem is not None or run is None:
        return verdict("–", NOT_MEASURED, child_problem or "no MMMU run")
    interval, mmmu = mmmu_interval(run, scoring), run.mmmu
    if interval is None or interval.estimate is None or mmmu is None:
        return verdict("–", NOT_MEASURED, f"the run recorded no {scoring} Overall")
    numbers = {"accuracy": Measured.of_interval(interval, reference.accuracy)}
    accuracy = mmmu.vendor_strict if scoring == "vendor_strict" else mmmu.official
    counts = f"{accuracy.correct}/{accuracy.n}, " if accuracy is not None else ""
    measured = f"{interval.text()} ({counts}95% Wilson)"
    reasons = mmmu_not_comparable(run)
    if reasons:
        return verdict(measured, NOT_COMPARABLE, "; ".join(reasons))
    inside = interval.contains(reference.accuracy)
    where = "inside" if inside else "outside"
    why = (
        f"{reference.accuracy:.3f} lies {where} the 95% Wilson interval of this run's "
        f"{SCORING_LABEL.get(scoring, scoring)} Overall"
    )
    deviations = [d for d in (mmmu.deviations or []) if not str(d).startswith("scoring")]
    if deviations:
        why += "; settings that differ from the vendor's: " + "; ".join(map(str, deviations))
    return verdict(measured, CONSISTENT if inside else NOT_CONSISTENT, why)


def device_class(name: str | None) -> str | None:
    """The vendor device class a device name belongs to: "S60" (Enflame), "L40s" (NVIDIA
    L40S), or None for any other device (CPU, H100, an L40 without the S, ...)."""
    text = device_key(name)
    if "l40s" in text:
        return "L40s"
    if "s60" in text:
        return "S60"
    return None


@dataclass(frozen=True)
class PerfMeasurement:
    """One measured perf point: each vendor column's mean and 95% interval, and the flags
    that qualify the comparison."""

    scenario: tuple[int, int, int]  # input_len, output_len, batch_size
    device: str
    columns: dict[str, Interval]  # PERF_METRICS
    flags: tuple[str, ...] = ()
    small_model: bool = False  # the tiny model: its timings say nothing about Phi-3.5-vision
    link: str | None = None
    cached: bool = False  # a cache served timed requests: the numbers are not cold ones

    @property
    def label(self) -> str:
        return point_label(*self.scenario)


def perf_measurement(
    run: RunRecord, point: PerfPointRecord, link: str | None = None
) -> PerfMeasurement:
    columns = {
        key: mean_interval(point.vendor.per_iteration.get(key) or _one(point.vendor.metrics()[key]))
        for key in PERF_METRICS
    }
    flags = []
    if served_from_cache(point.caches):
        flags.append(point.caches.describe())
    if point.schedule.staggered_beyond_budget:
        flags.append(
            "batches staggered beyond the token budget: not scheduled as the vendor's vLLM 0.6"
        )
    if run.engine is not None and run.engine.weights == "dummy":
        flags.append("dummy (random) weights: valid for speed and memory only")
    small = ran_tiny_model(run)
    cached = served_from_cache(point.caches)
    return PerfMeasurement(point.key, run.device, columns, tuple(flags), small, link, cached)


def _one(value: float | None) -> tuple[float, ...]:
    return () if value is None else (value,)


def column_within(mean: float | None, vendor: float | None, tolerance: float) -> bool | None:
    if mean is None or not vendor:
        return None
    return abs(mean / vendor - 1) <= tolerance


def perf_verdict(
    row: ReferenceRow,
    measurement: PerfMeasurement | None,
    tolerance: float,
    child_problem: str | None = None,
) -> Verdict:
    """A vendor row against the run's point of the same scenario. A verdict only when the
    run's device is the row's device class; otherwise the ratios are shown, "compared"."""
    scenario = point_label(row.input_len, row.output_len, row.num_prompts)
    claim = f"perf {scenario} ({row.device})"
    document = "; ".join(
        f"{METRIC_NAMES[k]} {v:g}" for k, v in row.metrics().items() if v is not None
    )

    numbers: dict[str, Measured] = {}

    def verdict(measured: str, word: str, why: str, link: str | None = None) -> Verdict:
        return Verdict("perf", claim, document, measured, word, why, link, numbers)

    if measurement is None:
        return verdict(
            "–",
            NOT_MEASURED,
            child_problem or f"no perf child ran {scenario} (parameter 'perf_params')",
        )
    metrics = row.metrics()
    parts, outside = [], []
    for key in PERF_METRICS:
        interval, vendor = measurement.columns[key], metrics[key]
        if interval.estimate is None:
            continue
        numbers[key] = Measured.of_interval(interval, vendor)
        ratio = f", ×{interval.estimate / vendor:.2f}" if vendor else ""
        parts.append(f"{METRIC_NAMES[key]} {interval.text(digits=2)}{ratio}")
        if vendor and column_within(interval.estimate, vendor, tolerance) is False:
            outside.append(f"{METRIC_NAMES[key]} {interval.estimate / vendor - 1:+.0%}")
    measured = "; ".join(parts) or "–"
    flags = list(measurement.flags)
    link = measurement.link
    if measurement.small_model:
        return verdict(
            measured,
            NOT_APPLICABLE,
            "; ".join(
                [f"the tiny model ({TINY_MODEL}): its timings say nothing about Phi-3.5-vision"]
                + flags
            ),
            link,
        )
    if measurement.cached:
        why = "a cache served part of the timed requests, so the numbers are not a cold run's"
        return verdict(measured, NOT_REPRODUCED, "; ".join([why, *flags]), link)
    run_class = device_class(measurement.device)
    if run_class != row.device:
        why = (
            f"the run's device is {measurement.device}, not the row's {row.device}: ratios "
            "are shown, without a verdict"
        )
        return verdict(measured, COMPARED, "; ".join([why, *flags]), link)
    if outside:
        why = f"outside ±{tolerance:.0%}: " + ", ".join(outside)
        return verdict(measured, NOT_REPRODUCED, "; ".join([why, *flags]), link)
    why = f"every column within ±{tolerance:.0%} of the {row.device} row"
    return verdict(measured, reproduced(tolerance), "; ".join([why, *flags]), link)


def unmatched_perf_verdict(measurement: PerfMeasurement) -> Verdict:
    """A measured point that is no row of the document (e.g. the smoke row)."""
    why = f"{measurement.label} is not a row of the document's table"
    if measurement.small_model:
        why += f"; the tiny model ({TINY_MODEL}): its timings say nothing about Phi-3.5-vision"
    measured = "; ".join(
        f"{METRIC_NAMES[k]} {measurement.columns[k].text(digits=2)}"
        for k in PERF_METRICS
        if measurement.columns[k].estimate is not None
    )
    return Verdict(
        "perf",
        f"perf {measurement.label} (no vendor row)",
        "–",
        measured or "–",
        NOT_APPLICABLE,
        "; ".join([why, *measurement.flags]),
        measurement.link,
        {
            key: Measured.of_interval(measurement.columns[key])
            for key in PERF_METRICS
            if measurement.columns[key].estimate is not None
        },
    )


NUMERICS_CLAIM = "numerics against the reference"
#: The numerics child's overall verdict (kit.records.numerics.VERDICTS) as a reproduce verdict
NUMERICS_WORDS = {
    "identical": MATCHES,
    "close": CONSISTENT,
    "diverged": NOT_CONSISTENT,
    "incomplete": INCOMPLETE,
}
SHOWN_PROMPTS = 3  # prompts named in the why, with their reasons


def numerics_verdict(
    reference: str, run: RunRecord | None, child_problem: str | None = None, link: str | None = None
) -> Verdict:
    """The numerics child against the reference device's numerics run (``reference``: how
    the report names it): identical -> matches, close -> consistent, diverged -> not
    consistent, incomplete -> incomplete. No claim of the document: the reference run
    stands where the document's value does (docs/numerics.md states the thresholds)."""
    comparison = run.numerics if run is not None else None
    name = comparison.reference if comparison is not None else reference
    document = f"the reference run {name}: its greedy tokens and logprobs"
    numbers: dict[str, Measured] = {}

    def verdict(measured: str, word: str, why: str) -> Verdict:
        return Verdict("numerics", NUMERICS_CLAIM, document, measured, word, why, link, numbers)

    if child_problem is not None or run is None or comparison is None:
        why = child_problem or "the numerics child recorded no comparison with the reference"
        return verdict("–", NOT_MEASURED, why)
    counts = {k: v for k, v in comparison.counts.items() if isinstance(v, int)}
    total = sum(counts.values())
    numbers = {f"prompts_{word}": Measured(value=n, n=total) for word, n in counts.items() if n} | {
        key: Measured(value=value, n=comparison.positions)
        for key, value in (
            ("mean_abs_delta", comparison.mean_abs_delta),
            ("max_abs_delta", comparison.max_abs_delta),
        )
        if value is not None
    }
    delta = "–" if comparison.max_abs_delta is None else f"{comparison.max_abs_delta:.4g}"
    mean = "–" if comparison.mean_abs_delta is None else f"{comparison.mean_abs_delta:.4g}"
    measured = (
        f"{comparison.verdict}: {counts_text(counts)}; {comparison.positions} teacher-forced "
        f"positions, mean |Δ logprob| {mean}, max {delta}"
    )
    word = NUMERICS_WORDS.get(comparison.verdict)
    if word is None:
        return verdict(measured, NOT_MEASURED, f"an unknown verdict {comparison.verdict!r}")
    if run.engine is not None and run.engine.weights == "dummy":
        why = "dummy (random) weights: two devices make different ones, so numerics differ"
        return verdict(measured, NOT_APPLICABLE, why)
    named = [p for p in comparison.prompts if p.verdict == comparison.verdict]
    shown = "; ".join(f"{p.id}: {p.reason or 'no reason recorded'}" for p in named[:SHOWN_PROMPTS])
    shown = shown or "no prompt was compared"
    more = f"; and {len(named) - SHOWN_PROMPTS} more" if len(named) > SHOWN_PROMPTS else ""
    why = {
        MATCHES: "the reference's greedy tokens, and Δ logprob 0 at every teacher-forced position",
        CONSISTENT: "every prompt passes vLLM's greedy check and its teacher-forced statistics "
        "are within the thresholds (docs/numerics.md): the devices differ by rounding",
        NOT_CONSISTENT: f"{len(named)} prompt(s) diverged from the reference: {shown}{more}",
        INCOMPLETE: f"nothing diverged, but {len(named)} prompt(s) could not be judged: "
        f"{shown}{more}",
    }[word]
    return verdict(measured, word, why)


def environment_verdict(
    reference: EnvironmentReference | None, measured: Mapping[str, Any]
) -> Verdict:
    """The document's test environment beside the run's: described, never a verdict."""
    stated = (reference.devices if reference else {}).get("S60", {})
    document = f"S60: {stated.get('software', '?')}, vLLM {stated.get('vllm', '?')}"
    if not measured:
        return Verdict(
            "environment",
            "test environment",
            document,
            "–",
            NOT_MEASURED,
            "no child recorded an environment",
        )
    text = f"{measured.get('device')}, vLLM {measured.get('vLLM')}, torch {measured.get('torch')}"
    return Verdict(
        "environment",
        "test environment",
        document,
        text,
        COMPARED,
        "stated for context: the kit runs current vLLM (V1) with scheduling: vendor "
        "(docs/vendor-reference.md, section 6); the L40s's software is not stated",
    )
