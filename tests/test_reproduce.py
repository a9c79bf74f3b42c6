"""The reproduce notebook's logic without an engine: intervals, parameters, child planning,
recording and resuming children, and every verdict rule."""

from __future__ import annotations

import json
import math
import re
import signal
from pathlib import Path

import pytest

from kit.compare.agreement import compare_texts
from kit.core.files import file_digest
from kit.core.intervals import mean_interval, t_quantile, wilson
from kit.core.params import ParameterError, build
from kit.records.references import AccuracyReference, ReferenceRow, load_references
from kit.records.results import RunRecord
from kit.reproduce.children import CHILDREN_FILE, children_to_run, read_children
from kit.reproduce.model_check import ModelCheck, check_model
from kit.reproduce.params import ReproduceParams, plan_children
from kit.reproduce.report import build_report, environment_rows, perf_detail_rows
from kit.reproduce.reproduction import ChildrenFailed, Reproduction
from kit.reproduce.verdicts import (
    COMPARED,
    CONSISTENT,
    DIFFERS,
    MATCHES,
    NO_REFERENCE,
    NOT_APPLICABLE,
    NOT_COMPARABLE,
    NOT_CONSISTENT,
    NOT_MEASURED,
    NOT_REPRODUCED,
    NOT_VERIFIED,
    PerfMeasurement,
    demo_verdict,
    device_class,
    environment_verdict,
    mmmu_verdict,
    model_verdict,
    perf_measurement,
    perf_verdict,
)
from kit.runs.runner import RunOutcome

REFS = load_references()

# ----------------------------------------------------------------------------------------
# Intervals
# ----------------------------------------------------------------------------------------


def test_wilson_43_of_100():
    # z = 1.959964, z^2/n = 0.0384146; centre = (0.43 + 0.0192073) / 1.0384146 = 0.4325896;
    # half = 1.959964 / 1.0384146 * sqrt(0.43 * 0.57 / 100 + 3.841459 / 40000)
    #      = 1.8874585 * 0.0504682 = 0.0952566  ->  (0.33733, 0.52785)
    interval = wilson(43, 100)
    assert interval.estimate == 0.43
    assert interval.low == pytest.approx(0.337333, abs=1e-5)
    assert interval.high == pytest.approx(0.527846, abs=1e-5)
    assert interval.contains(0.43) and not interval.contains(0.30)


def test_wilson_edges():
    # 0 of 4: centre = half = (z^2/8) / (1 + z^2/4) = 0.480182 / 1.960365 -> (0, 0.48990)
    zero = wilson(0, 4)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.489900, abs=1e-5)
    assert wilson(4, 4).high == 1.0
    assert wilson(0, 0).estimate is None and not wilson(0, 0).has_interval
    with pytest.raises(ValueError, match=re.escape("need 0 <= successes <= n, got 5 of 4")):
        wilson(5, 4)


@pytest.mark.parametrize(
    "df,expected",  # two-sided 95% critical values from Student's table
    [(1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157), (29, 2.045230)],
)
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)


def test_mean_interval():
    # mean 2, s = 1, n = 3: half = 4.302653 / sqrt(3) = 2.484138
    interval = mean_interval([1.0, 2.0, 3.0])
    assert interval.estimate == 2.0
    assert interval.low == pytest.approx(2 - 2.484138, abs=1e-6)
    assert interval.high == pytest.approx(2 + 2.484138, abs=1e-6)
    assert interval.text(digits=2) == "2.00 [-0.48, 4.48]"


def test_one_iteration_has_no_interval_and_says_so():
    interval = mean_interval([5.0])
    assert interval.estimate == 5.0 and not interval.has_interval
    assert interval.note == "n=1, no interval" and interval.contains(5.0) is None
    assert interval.text() == "5.000 (n=1, no interval)"
    assert mean_interval([]).note == "not measured"


# ----------------------------------------------------------------------------------------
# Parameters and planning
# ----------------------------------------------------------------------------------------


def params(**values) -> ReproduceParams:
    return build(ReproduceParams, values)


@pytest.mark.parametrize(
    "values,expected",
    [
        ({"tolerance": 0}, "'tolerance'"),
        ({"tolerance": -0.1}, "'tolerance'"),
        ({"sections": "model,demos"}, "did you mean 'demo'"),
        ({"sections": []}, "'sections' is empty"),
        ({"overrides": {"mmlu": {"limit": 1}}}, "'overrides'"),
        ({"overrides": {"perf": 3}}, "'overrides'"),
        ({"perf_iterations": 0}, "'perf_iterations'"),
        ({"perf_params": ["params/nope.yaml"]}, "'perf_params'"),
        ({"perf_params": []}, "'perf_params' is empty"),
    ],
)
def test_bad_parameters_are_refused(values, expected):
    with pytest.raises(ParameterError, match=re.escape(expected)):
        params(**values)


def test_a_missing_model_folder_is_refused_before_any_child(tmp_path):
    p = params(model=str(tmp_path / "missing"), sections=["model"])
    with pytest.raises(ParameterError, match="Parameter 'model'"):
        p.preflight()


def test_a_bad_child_parameter_names_the_section(smoke_model):
    p = params(sections=["demo"], overrides={"demo": {"max_output_len": 0}})
    with pytest.raises(ParameterError, match=r"section 'demo'.*max_output_len"):
        p.preflight()


def test_plan_follows_the_documents_order(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    p = params(
        model=str(model),
        perf_params=["params/perf-phi35v-8192x1.yaml", "params/perf-phi35v-8192x4.yaml"],
        overrides={"perf": {"warmup": 0}},
        perf_iterations=4,
    )
    plans = plan_children(p)
    assert [c.key for c in plans] == [
        "model",
        "demo",
        "mmmu",
        "perf:perf-phi35v-8192x1",
        "perf:perf-phi35v-8192x4",
    ]
    assert plans[0].notebook is None
    perf = plans[3]
    assert perf.notebook == "perf" and Path(perf.files[0]).is_absolute()
    assert perf.values == {"model": str(model.resolve()), "iterations": 4, "warmup": 0}
    assert plans[2].values["dataset"] == "fixture"
    only = plan_children(params(sections=["perf"], perf_params=["params/smoke-perf.yaml"] * 2))
    assert [c.key for c in only] == ["perf:smoke-perf-1", "perf:smoke-perf-2"]


def test_resume_refuses_other_questions(tmp_path):
    (tmp_path / "parameters.yaml").write_text("model: smoke\nperf_iterations: 3\n")
    params(perf_iterations=3, tolerance=0.2).check_resume(tmp_path)  # tolerance may change
    with pytest.raises(ParameterError, match="perf_iterations"):
        params(perf_iterations=5).check_resume(tmp_path)


# ----------------------------------------------------------------------------------------
# Recording and resuming children (a stand-in for kit.runs.runner.execute)
# ----------------------------------------------------------------------------------------


class FakeExecute:
    """Writes the child's results.json with the status given per notebook (and the sections
    given per notebook in ``sections``)."""

    def __init__(
        self,
        statuses: dict[str, str],
        architectures: list[str] | None = None,
        sections: dict[str, dict] | None = None,
    ):
        self.statuses, self.calls, self.architectures = statuses, [], architectures
        self.sections = sections or {}

    def __call__(self, request):
        folder = request.resume
        self.calls.append((request.notebook, folder))
        status = self.statuses.get(request.notebook, "ok")
        error = None if status == "ok" else f"{request.notebook} broke"
        document = {"schema_version": 1, "notebook": request.notebook, "status": status}
        if self.architectures:  # the model the child ran, as results.json records it
            document["environment"] = {"model": {"architectures": self.architectures}}
        document.update(self.sections.get(request.notebook, {}))
        (folder / "results.json").write_text(json.dumps(document))
        return RunOutcome(folder, status, folder / "x.ipynb", None, folder / "results.json", error)


def reproduction(parent: Path, execute, **values) -> Reproduction:
    p = params(**values)
    return Reproduction(p, parent, execute=execute, say=lambda text: None)


def test_a_failed_child_is_recorded_and_the_next_one_runs(tmp_path):
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    fake = FakeExecute({"demo": "failed"})
    first = reproduction(parent, fake)
    first.run_children()
    records = first.records
    assert [n for n, _ in fake.calls] == ["demo", "mmmu", "perf"]
    assert records["demo"].status == "failed" and records["demo"].error == "demo broke"
    assert records["mmmu"].status == "ok" and records["model"].status == "ok"
    assert records["model"].result["kind"] == "smoke"
    for key in ("demo", "mmmu", "perf:smoke-perf"):  # run folders beside the parent's
        folder = (parent / records[key].folder).resolve()
        assert folder.parent == parent.parent and (folder / "parameters.yaml").is_file()
    saved = json.loads((parent / CHILDREN_FILE).read_text())
    assert [c["status"] for c in saved["children"]] == ["ok", "failed", "ok", "ok"]
    with pytest.raises(ChildrenFailed, match=r"demo \(failed\)"):
        first.raise_if_failed()

    # resume: only the failed child runs again, in its own folder
    fake_again = FakeExecute({})
    second = reproduction(parent, fake_again)
    assert second.to_run == ["demo"] and "mmmu" in second.reused
    second.run_children()
    assert fake_again.calls == [("demo", (parent / records["demo"].folder).resolve())]
    assert second.records["demo"].status == "ok" and second.records["demo"].attempts == 2
    second.raise_if_failed()


class InterruptedMidRun(FakeExecute):
    """The MMMU child saves two answers, then Ctrl-C reaches the kernel."""

    def __call__(self, request):
        if request.notebook != "mmmu":
            return super().__call__(request)
        self.calls.append((request.notebook, request.resume))
        (request.resume / "predictions.jsonl").write_text('{"id": "a"}\n{"id": "b"}\n')
        raise KeyboardInterrupt


def test_a_child_interrupted_mid_run_is_resumed_in_its_folder_with_its_answers(tmp_path):
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    first = reproduction(parent, InterruptedMidRun({}), sections=["demo", "mmmu"])
    with pytest.raises(KeyboardInterrupt):
        first.run_children()
    saved = {c["key"]: c for c in json.loads((parent / CHILDREN_FILE).read_text())["children"]}
    assert saved["mmmu"]["status"] == "interrupted" and saved["mmmu"]["folder"]
    folder = (parent / saved["mmmu"]["folder"]).resolve()
    assert (folder / "predictions.jsonl").is_file()
    again = FakeExecute({})
    second = reproduction(parent, again, sections=["demo", "mmmu"])
    assert second.to_run == ["mmmu"]
    second.run_children()
    assert again.calls == [("mmmu", folder)]  # the same folder: its answers are kept
    assert (folder / "predictions.jsonl").read_text().count("\n") == 2


def test_a_child_that_ends_interrupted_is_said_and_recorded_once(tmp_path):
    """Ctrl-C reaches the child's kernel first: its ``kit run`` returns interrupted. The
    reproduction stops there, saying so once, with the child's own reason."""
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)

    def interrupted(request):
        outcome = FakeExecute({})(request)
        if request.notebook == "mmmu":
            outcome.status, outcome.interrupted = "interrupted", signal.SIGINT
            outcome.error = "interrupted by SIGINT: what the run had saved until then is kept"
        return outcome

    said: list[str] = []
    first = Reproduction(
        params(sections=["demo", "mmmu"]), parent, execute=interrupted, say=said.append
    )
    with pytest.raises(KeyboardInterrupt):
        first.run_children()
    ended = [line for line in said if line.startswith("[reproduce] mmmu: interrupted")]
    assert ended == [
        f"[reproduce] mmmu: interrupted ({first.records['mmmu'].folder}): interrupted by "
        "SIGINT: what the run had saved until then is kept"
    ]
    saved = {c["key"]: c for c in json.loads((parent / CHILDREN_FILE).read_text())["children"]}
    assert saved["mmmu"]["error"].startswith("interrupted by SIGINT") and saved["mmmu"]["folder"]


def test_a_child_whose_folder_no_longer_says_ok_runs_again(tmp_path):
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    first = reproduction(parent, FakeExecute({}), sections=["demo", "mmmu"])
    first.run_children()
    mmmu = parent / first.records["mmmu"].folder
    (mmmu / "results.json").write_text(json.dumps({"status": "interrupted"}))
    assert children_to_run(first.plans, read_children(first.file), parent) == ["mmmu"]
    (parent / CHILDREN_FILE).unlink()
    assert children_to_run(first.plans, {}, parent) == ["demo", "mmmu"]


def test_a_child_that_raises_does_not_stop_the_others(tmp_path):
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)

    def broken(request):
        if request.notebook == "mmmu":
            raise RuntimeError("kernel died")
        return FakeExecute({})(request)

    r = reproduction(parent, broken, sections=["mmmu", "perf"])
    r.run_children()
    assert r.records["mmmu"].status == "failed"
    assert "kernel died" in r.records["mmmu"].error
    assert r.records["perf:smoke-perf"].status == "ok"


# ----------------------------------------------------------------------------------------
# Model identity
# ----------------------------------------------------------------------------------------

IDENTITY = REFS.model_identity


def model_folder(tmp_path: Path, source="modelscope", repo=IDENTITY.repo_id, commit=None):
    folder = tmp_path / "model"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"weights")
    names = ("config.json", "preprocessor_config.json", "tokenizer_config.json", "tokenizer.json")
    for name in names:
        (folder / name).write_text("{}")
    manifest = {
        "kit_manifest": 1,
        "kind": "model",
        "source": source,
        "repo_id": repo,
        "revision": "1ce2adc1",
        "commit": commit or "1ce2adc1" + "0" * 32,
        "files": {
            name: {
                "size": (folder / name).stat().st_size,
                "sha256": file_digest(folder / name).sha256,
            }
            for name in ("model.safetensors", *names)
        },
        "remote_code": [],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_model_verdict_rules(tmp_path):
    assert model_verdict(IDENTITY, ModelCheck("smoke", "smoke")).verdict == NOT_APPLICABLE
    assert model_verdict(IDENTITY, ModelCheck("x", "dummy")).verdict == NOT_APPLICABLE
    hub = model_verdict(IDENTITY, ModelCheck("microsoft/Phi-3.5-vision-instruct", "hub id"))
    assert hub.verdict == NOT_VERIFIED and "hub id" in hub.why
    bare = model_verdict(IDENTITY, ModelCheck("m", "folder", "/m"))
    assert bare.verdict == NOT_VERIFIED and "no manifest.json" in bare.why
    failed = model_verdict(IDENTITY, None, "child failed: boom")
    assert failed.verdict == NOT_MEASURED and "boom" in failed.why


def test_model_check_matches_the_documents_commit(tmp_path):
    folder = model_folder(tmp_path)
    check = check_model(str(folder))
    assert check.hashed and not check.problems and check.files == 5
    verdict = model_verdict(IDENTITY, check)
    assert verdict.verdict == MATCHES and "starts with 1ce2adc1" in verdict.why
    (folder / "model.safetensors").write_bytes(b"changed")  # same size, other content
    changed = model_verdict(IDENTITY, check_model(str(folder)))
    assert changed.verdict == DIFFERS and "sha256" in changed.why


def test_model_check_of_another_revision(tmp_path):
    folder = model_folder(
        tmp_path, "huggingface", "microsoft/Phi-3.5-vision-instruct", "4a0d683e" + "0" * 32
    )
    verdict = model_verdict(IDENTITY, check_model(str(folder), verify_hashes=False))
    assert verdict.verdict == DIFFERS and "another revision" in verdict.why
    assert verdict.measured.startswith("huggingface microsoft/Phi-3.5-vision-instruct@4a0d683e")


# ----------------------------------------------------------------------------------------
# Demo
# ----------------------------------------------------------------------------------------

DEMO = REFS.demo
PAIR = compare_texts(DEMO.answers["S60"], DEMO.answers["L40s"])


def run_record(notebook="demo", engine=None, **sections) -> RunRecord:
    parameters = sections.pop("parameters", {})
    return RunRecord.of(
        {
            "schema_version": 1,
            "notebook": notebook,
            "status": "ok",
            "parameters": parameters,
            "engine": engine or {"weights": "checkpoint", "scheduling": "vendor"},
            "environment": sections.pop("environment", {}),
            **sections,
        }
    )


def demo_run(text: str, **parameters) -> RunRecord:
    values = {
        "model": "/models/phi",
        "prompt": DEMO.prompt,
        "max_output_len": 256,
        "temperature": 0.0,
        "dtype": "bfloat16",
        "image": ["robot.png"],
        **parameters,
    }
    return run_record(parameters=values, demo={"generated_text": text})


def demo_verdict_of(run: RunRecord, device="S60", problem=None):
    text = run.demo.generated_text
    return demo_verdict(device, DEMO, run, compare_texts(text, DEMO.answers[device]), PAIR, problem)


def test_demo_verdict_rules():
    s60 = DEMO.answers["S60"]
    assert demo_verdict_of(demo_run(s60)).verdict == MATCHES
    # agrees with L40s as long as S60 does, then follows S60: within the devices' difference
    assert demo_verdict_of(demo_run(s60), "L40s").verdict == CONSISTENT
    early = demo_run(" ".join(s60.split()[:20]) + " something else entirely")
    differs = demo_verdict_of(early)
    assert differs.verdict == DIFFERS and "after 20 words" in differs.why
    picture = demo_verdict_of(demo_run(s60, image=["demo"]))
    assert picture.verdict == NOT_COMPARABLE and "vendor's image" in picture.why
    settings = demo_verdict_of(demo_run(s60, max_output_len=64))
    assert settings.verdict == NOT_COMPARABLE and "max_output_len 64" in settings.why
    smoke = demo_verdict_of(demo_run("noise", model="smoke"))
    assert smoke.verdict == NOT_APPLICABLE and "noise" in smoke.why
    dummy = run_record(
        parameters={"model": "phi35v-dummy"},
        engine={"weights": "dummy"},
        demo={"generated_text": "noise"},
    )
    assert demo_verdict_of(dummy).verdict == NOT_APPLICABLE
    missing = demo_verdict("S60", DEMO, None, None, PAIR, "child failed: engine")
    assert missing.verdict == NOT_MEASURED and "engine" in missing.why


# ----------------------------------------------------------------------------------------
# MMMU
# ----------------------------------------------------------------------------------------

S60 = AccuracyReference("S60", 0.428, scoring="vendor_strict")
CARD = AccuracyReference("model card", 0.430, scoring="official")


def mmmu_run(strict=(385, 900), official=(392, 900), **parameters) -> RunRecord:
    values = {"model": "/models/phi", "dataset": "/data/MMMU", "split": "validation"}
    return run_record(
        notebook="mmmu",
        parameters={**values, **parameters},
        mmmu={
            "overall": {
                "acc": round(official[0] / official[1], 3),
                "correct": official[0],
                "n": official[1],
            },
            "scoring": {
                "vendor_strict": {
                    "overall": {
                        "acc": round(strict[0] / strict[1], 3),
                        "correct": strict[0],
                        "n": strict[1],
                    }
                }
            },
            "deviations": ["scoring: ...", "batch_size is 0 (vendor: 1)"],
        },
    )


def test_mmmu_verdict_uses_the_scoring_of_each_reference():
    run = mmmu_run()
    s60 = mmmu_verdict(S60, run)
    assert s60.verdict == CONSISTENT and "vendor-strict" in s60.why
    assert "385/900" in s60.measured and "batch_size is 0" in s60.why
    # official 392/900 = 0.436, Wilson [0.404, 0.468]: 0.430 inside
    assert mmmu_verdict(CARD, run).verdict == CONSISTENT
    # vendor-strict 340/900 = 0.378, Wilson [0.346, 0.410]: 0.428 outside
    low = mmmu_verdict(S60, mmmu_run(strict=(340, 900)))
    assert low.verdict == NOT_CONSISTENT and "outside" in low.why


@pytest.mark.parametrize(
    "run,reason",
    [
        (mmmu_run(strict=(20, 60), official=(20, 60)), "a subset: 60 of the 900"),
        (mmmu_run(dataset="fixture"), "fixture"),
        (mmmu_run(model="smoke"), "tiny random-weight model"),
    ],
)
def test_mmmu_not_comparable(run, reason):
    verdict = mmmu_verdict(S60, run)
    assert verdict.verdict == NOT_COMPARABLE and reason in verdict.why
    assert "95% Wilson" in verdict.measured  # the measurement is still shown


def test_mmmu_failed_child():
    verdict = mmmu_verdict(S60, None, "child failed: dataset gone")
    assert verdict.verdict == NOT_MEASURED and "dataset gone" in verdict.why


# ----------------------------------------------------------------------------------------
# Performance
# ----------------------------------------------------------------------------------------

ROW_S60 = ReferenceRow("S60", 1, 32768, 8192, 1024, 1, 1046.49, 27.75, 1033.01, 35.05)


def measurement(device="Enflame S60", scale=1.0, flags=(), small=False) -> PerfMeasurement:
    def around(value):  # three iterations, 1% apart, mean = value * scale
        mean = value * scale
        return mean_interval([mean * 0.99, mean, mean * 1.01])

    columns = {k: around(v) for k, v in ROW_S60.metrics().items()}
    columns["ttft_ms"] = mean_interval([ROW_S60.ttft_ms * scale])  # one probe
    return PerfMeasurement((8192, 1024, 1), device, columns, tuple(flags), small)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("Enflame S60", "S60"),
        ("NVIDIA L40S", "L40s"),
        ("L40s", "L40s"),
        ("NVIDIA L40", None),
        ("NVIDIA H100 80GB HBM3", None),
        ("CPU", None),
        (None, None),
    ],
)
def test_device_class(name, expected):
    assert device_class(name) == expected


def test_perf_verdict_on_the_rows_device():
    within = perf_verdict(ROW_S60, measurement(scale=1.05), 0.1)
    assert within.verdict == "reproduced within ±10%"
    assert "n=1, no interval" in within.measured and "×1.05" in within.measured
    outside = perf_verdict(ROW_S60, measurement(scale=1.2), 0.1)
    assert outside.verdict == NOT_REPRODUCED and "+20%" in outside.why
    assert perf_verdict(ROW_S60, measurement(scale=1.2), 0.25).verdict == ("reproduced within ±25%")


def test_perf_on_another_device_is_compared_without_a_verdict():
    verdict = perf_verdict(ROW_S60, measurement("NVIDIA H100 80GB HBM3"), 0.1)
    assert verdict.verdict == COMPARED and "not the row's S60" in verdict.why


def test_perf_flags_and_tiny_model():
    flags = ("batches staggered beyond the token budget", "dummy (random) weights")
    flagged = perf_verdict(ROW_S60, measurement(flags=flags), 0.1)
    assert "staggered" in flagged.why and "dummy" in flagged.why
    small = perf_verdict(ROW_S60, measurement(small=True), 0.1)
    assert small.verdict == NOT_APPLICABLE and "tiny model" in small.why
    missing = perf_verdict(ROW_S60, None, 0.1, "child failed: OOM")
    assert missing.verdict == NOT_MEASURED and "OOM" in missing.why
    assert "no perf child ran" in perf_verdict(ROW_S60, None, 0.1).why


def test_perf_detail_rows_give_ratios_to_both_devices():
    rows = [r for r in REFS.perf if (r.input_len, r.num_prompts) == (8192, 1)]
    detail = perf_detail_rows(measurement(scale=2.0), rows)
    tps = next(r for r in detail if r["column"].startswith("TPS"))
    assert tps["/ S60"] == pytest.approx(2.0, abs=1e-3)
    assert tps["/ L40s"] == pytest.approx(2 * 27.75 / 43.26, abs=1e-3)
    ttft = next(r for r in detail if r["column"].startswith("TTFT"))
    assert ttft["95% interval"] == "n=1, no interval"


def test_perf_measurement_reads_iterations_and_flags():
    run = run_record(
        notebook="perf",
        parameters={"model": "phi35v-dummy"},
        engine={"weights": "dummy", "weights_note": "weights: dummy"},
        perf={
            "device": "NVIDIA L40S",
            "points": [
                {
                    "params": {"input_len": 8192, "max_output_len": 1024, "batch_size": 4},
                    "vendor": {
                        "tps": 100.0,
                        "per_iteration": {"tps": [99.0, 100.0, 101.0], "ttft_ms": [2500.0]},
                    },
                    "schedule": {"staggered": True, "staggered_beyond_budget": True},
                }
            ],
        },
    )
    (point,) = run.perf_points()
    m = perf_measurement(run, point)
    assert m.columns["tps"].n == 3 and m.columns["tps"].estimate == pytest.approx(100.0)
    assert m.columns["ttft_ms"].note == "n=1, no interval"
    assert any("staggered" in f for f in m.flags) and any("dummy" in f for f in m.flags)
    assert device_class(m.device) == "L40s" and not m.small_model


# ----------------------------------------------------------------------------------------
# Environment and the whole report
# ----------------------------------------------------------------------------------------


def test_environment_is_compared_never_judged():
    measured = {"device": "CPU", "vLLM": "0.32.0", "torch": "2.13"}
    verdict = environment_verdict(REFS.environment, measured)
    assert verdict.verdict == COMPARED and "3.3.20250112" in verdict.document
    rows = environment_rows(REFS.environment, measured)
    vllm = next(r for r in rows if r[""] == "vLLM")
    assert vllm["S60 (document)"] == "0.6.1.post2" and vllm["L40s (document)"] == "not stated"
    assert vllm["this reproduction"] == "0.32.0"
    assert environment_verdict(REFS.environment, {}).verdict == NOT_MEASURED


def test_a_model_of_another_architecture_has_no_reference_for_any_claim(tmp_path):
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    r = reproduction(parent, FakeExecute({}, architectures=["MiniCPMV"]))
    r.run_children()
    report = build_report(r, REFS)
    for v in report.verdicts:
        if v.section == "environment":
            assert v.verdict != NO_REFERENCE  # context, not a claim
        else:
            assert v.verdict == NO_REFERENCE, v
            assert "Phi-3.5-vision-instruct's" in v.why and "MiniCPMV" in v.why
    same = reproduction(tmp_path / "p2", FakeExecute({}, architectures=["Phi3VForCausalLM"]))
    (tmp_path / "p2").mkdir()
    same.run_children()
    assert NO_REFERENCE not in {v.verdict for v in build_report(same, REFS).verdicts}


def test_report_of_failed_children_says_why_for_every_claim(tmp_path):
    parent = tmp_path / "outputs" / "parent"
    parent.mkdir(parents=True)
    r = reproduction(parent, FakeExecute({"demo": "failed", "mmmu": "failed", "perf": "failed"}))
    r.run_children()
    report = build_report(r, REFS)
    by_section = {}
    for v in report.verdicts:
        assert v.why, v
        by_section.setdefault(v.section, []).append(v.verdict)
    assert by_section["model"] == [NOT_APPLICABLE]
    assert by_section["demo"] == [NOT_MEASURED] * 2
    assert by_section["mmmu"] == [NOT_MEASURED] * 3
    assert by_section["perf"] == [NOT_MEASURED] * 6
    assert all("child failed" in v.why for v in report.section("perf"))
    record = report.to_record().to_dict()
    json.dumps(record, allow_nan=False)
    assert by_section["environment"] == [NOT_MEASURED]  # no child recorded one
    assert record["verdict_counts"][NOT_MEASURED] == 12
    assert math.isclose(record["tolerance"], 0.1)
