"""kit.records, the one reader of results.json: records the kit's own writers produced
(Run.document, engine_config, point_record, mmmu_section, DemoRecord) read back field by
field, hand-written older files without ``engine`` / ``schedule``, other schema versions,
and the one perf point label the tables, plots, headline and comparison all show.
No engine is started."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from kit.compare.inputs import load_runs
from kit.compare.table import compare, conditions
from kit.engines.offline import engine_config
from kit.engines.params import EnginePlan
from kit.engines.timing import marks_from_metrics, timing_from_output
from kit.mmmu.questions import MULTIPLE_CHOICE, Question
from kit.mmmu.scoring import score_predictions, score_predictions_vendor
from kit.mmmu.section import mmmu_section
from kit.models.figures import model_figures
from kit.models.phi3v.family import PHI3V
from kit.models.phi3v.tiny import full_size_config
from kit.perf.batches import RunMeasurement, request_timeline, summarize_schedules
from kit.perf.columns import standard_columns, vendor_columns
from kit.perf.plots import first_batch_timeline, latency_distribution, versus_references
from kit.perf.point_records import RecordContext, point_record
from kit.perf.roofline import load_device_peaks
from kit.perf.sweep import PointResult
from kit.perf.tables import (
    batch_scheduling,
    comparison_warning_lines,
    roofline_table,
    standard_table,
    vendor_table,
)
from kit.records.base import ResultsError
from kit.records.demo import DemoRecord
from kit.records.engine import EngineRecord
from kit.records.environment import EnvironmentRecord
from kit.records.mmmu import Accuracy
from kit.records.perf import PerfPointRecord, ScheduleRecord, point_label
from kit.records.references import load_references
from kit.records.results import SCHEMA_VERSION, RunRecord, read_run
from kit.records.summary import RunSummary, engine_line, headline, weights_line
from kit.runs.record import Run, RunPaths

approx = pytest.approx

# ----------------------------------------------------------------------------------------
# Records made by the kit's own writers
# ----------------------------------------------------------------------------------------

BATCH, INPUT_LEN, OUTPUT_LEN = 4, 8192, 1024  # a scenario of the vendor's table
FULL_SIZE = full_size_config({"<s>": 1, "<|endoftext|>": 3})


def fake_batch(first_scheduled: list[float], wall_s: float = 10.0) -> RunMeasurement:
    """A V1 batch: queued together at engine time 50.0, first scheduled at the given times,
    first tokens 0.9 s later, all finished at 60.0; every request OUTPUT_LEN tokens."""
    outputs = [
        SimpleNamespace(
            request_id=f"r{i}",
            metrics=SimpleNamespace(
                arrival_time=1_700_000_000.0 + 0.001 * i,
                queued_ts=50.0,
                scheduled_ts=scheduled,
                first_token_ts=scheduled + 0.9,
                last_token_ts=60.0,
                first_token_latency=1.0 + (scheduled - 50.0),
                num_generation_tokens=OUTPUT_LEN,
                num_preemptions=0,
            ),
            prompt_token_ids=[0] * INPUT_LEN,
            outputs=[SimpleNamespace(token_ids=[0] * OUTPUT_LEN)],
        )
        for i, scheduled in enumerate(first_scheduled)
    ]
    return RunMeasurement(
        [timing_from_output(o) for o in outputs],
        wall_s,
        [marks_from_metrics(o.metrics) for o in outputs],
    )


ENGINE_CONFIG = EngineRecord(chunked_prefill=False, max_num_batched_tokens=32768, block_size=16)


@pytest.fixture(scope="module")
def written_point():
    """point_record's dict for 8192 x 4 -> 1024 (two timed batches, each prefilled in one
    step, and a probe), with roofline bounds for the H100 SXM, after a JSON round trip."""
    timed = [fake_batch([50.1] * BATCH), fake_batch([50.2] * BATCH)]
    probe = fake_batch([50.1] * BATCH, wall_s=1.0)
    params = {
        "input_len": INPUT_LEN,
        "max_output_len": OUTPUT_LEN,
        "batch_size": BATCH,
        "input_vision_shape": [[1024, 1024]],
        "num_crops": 4,
        "iterations": len(timed),
    }
    point = PerfPointRecord(
        params=params,
        vendor=vendor_columns(timed, [probe]),
        standard=standard_columns(timed),
        schedule=summarize_schedules([m.schedule for m in timed], probe.schedule),
    )
    context = RecordContext(
        device="H100 SXM",
        scheduling="vendor",
        engine_config=ENGINE_CONFIG,
        references=load_references(),
        peaks=load_device_peaks(),
        figures=model_figures(FULL_SIZE, "bfloat16", PHI3V.vision_tower(FULL_SIZE)),
        views_per_request=5,
    )
    result = PointResult(point, timed, probe, request_timeline(timed[0].marks))
    return point, json.loads(json.dumps(point_record(result, context).to_dict()))


def written_engine() -> dict:
    """engine_config read back from a started engine's configuration objects."""
    vllm_config = SimpleNamespace(
        scheduler_config=SimpleNamespace(
            max_num_batched_tokens=32768, max_num_seqs=256, enable_chunked_prefill=False
        ),
        cache_config=SimpleNamespace(num_gpu_blocks=100, block_size=16),
        parallel_config=SimpleNamespace(
            tensor_parallel_size=2, pipeline_parallel_size=1, data_parallel_size=1
        ),
        model_config=SimpleNamespace(dtype="bfloat16"),
    )
    plan = EnginePlan("m", PHI3V, None, {}, {}, weights="dummy", vllm_version="0.32.0")
    llm = SimpleNamespace(llm_engine=SimpleNamespace(vllm_config=vllm_config))
    return json.loads(json.dumps(engine_config(llm, plan, "vendor").to_dict()))


@dataclass
class Parameters:
    model: str = "smoke"
    dtype: str = "bfloat16"
    label: str = "nightly"


def saved_run(tmp_path, notebook: str, sections: dict, environment: dict | None = None):
    """A run record saved by kit.runs.record.Run, as a notebook saves it."""
    run = Run(notebook, Parameters(), RunPaths(tmp_path, tmp_path / "results.json", tmp_path))
    run.results.update(sections)
    run.environment = EnvironmentRecord.of(
        environment
        or {
            "kit_version": "0.1.0",
            "accelerator": {"name": "NVIDIA H100 80GB HBM3"},
            "model": {"smoke": {"builder_version": 3, "seed": 0}},
        }
    )
    run.save("ok")
    return read_run(tmp_path)


def test_a_saved_perf_run_reads_back_field_by_field(tmp_path, written_point):
    point, record = written_point
    run = saved_run(
        tmp_path,
        "perf",
        {"engine": written_engine(), "perf": {"device": "H100 SXM", "points": [record]}},
    )
    assert (run.schema_version, run.notebook, run.status) == (SCHEMA_VERSION, "perf", "ok")
    assert run.label == "nightly" and run.parameters["model"] == "smoke"
    assert run.path == tmp_path / "results.json" and run.folder == tmp_path
    assert run.device == "H100 SXM"  # the perf section's name beats the accelerator's
    assert run.model_revision == "smoke v3 seed 0"
    assert run.environment.kit_major == "0"

    engine = run.engine
    assert (engine.scheduling, engine.weights, engine.vllm_version) == ("vendor", "dummy", "0.32.0")
    assert engine.devices == 2 and engine.kv_cache_tokens == 1600  # 100 blocks x 16
    assert engine.chunked_prefill is False and engine.max_num_batched_tokens == 32768
    assert engine.weights_note and engine.to_dict()["scheduling_means"] == engine.scheduling_means

    (read,) = run.perf_points()
    assert read.key == (8192, 1024, 4) and read.label == "in 8192 / out 1024 / bs 4"
    assert read.input_vision_shape == [[1024, 1024]] and read.num_crops == 4
    written = point.vendor.to_dict()
    assert read.vendor == point.vendor  # one class writes and reads the columns
    assert read.vendor.metrics() == {k: v for k, v in written.items() if k != "per_iteration"}
    assert read.vendor.per_iteration == {k: tuple(v) for k, v in written["per_iteration"].items()}
    assert read.vendor.tps == approx(4 * 1024 / 10.0)  # tokens / wall s, each iteration
    ttft = read.standard.metrics["ttft_ms"]
    assert ttft == point.standard.metrics["ttft_ms"]
    metrics = ["ttft_ms", "tpot_ms", "e2e_ms", "prefill_ms", "decode_ms", "queue_ms"]
    assert list(read.standard.metrics) == metrics
    assert read.standard.tps_per_iteration == approx((409.6, 409.6))

    schedule = read.schedule
    assert schedule.staggered is False and schedule.probe_staggered is False
    assert schedule.budget_steps == 1 and schedule.staggered_beyond_budget is False
    assert len(schedule.batches) == 2 and schedule.batches[0].scheduling_steps == 1
    assert batch_scheduling(read) == batch_scheduling(record) == "one step"

    refs = {r.device: r for r in read.references}
    assert set(refs) == {"S60", "L40s"}
    assert refs["L40s"].metrics["tps"] == 112.76
    assert refs["L40s"].ratios["tps"] == approx(409.6 / 112.76)
    assert refs["L40s"].warnings == ()  # same shape, vendor scheduling, one step

    roofline = read.roofline
    assert roofline.device == "H100 SXM" and roofline.reason is None
    assert roofline.decoding_together == 4 and roofline.prefilled_together == 4
    assert roofline.decode_efficiency.value == approx(
        roofline.decode_ms_per_token / read.vendor.decode_ms_per_token
    )

    spans = read.timeline
    assert len(spans) == 4 and spans[0].queued == 0.0
    assert spans[0].scheduled == approx(0.1) and spans[0].last_token == approx(10.0)
    assert read.observed == {"prompt_tokens": [8192], "output_tokens": [1024]}


def test_an_mmmu_run_has_both_overalls_and_a_demo_run_its_answer(tmp_path):
    questions = [
        Question(
            id=f"validation_Art_{i}",
            subject="Art",
            question="Which city is shown in <image 1>?",
            options=["Paris", "London", "Berlin", "Madrid"],
            answer="B",
            question_type=MULTIPLE_CHOICE,
            images={1: {"bytes": b"", "path": "1.png"}},
        )
        for i in (1, 2)
    ]
    responses = {"validation_Art_1": "B", "validation_Art_2": "(B)"}  # strict: only "B"
    official = score_predictions(questions, responses)
    strict = score_predictions_vendor(questions, responses)
    section = mmmu_section(official, strict, {"split": "validation"})
    mmmu = saved_run(tmp_path / "mmmu", "mmmu", {"mmmu": section}).mmmu
    assert mmmu.official == Accuracy(acc=1.0, n=2, correct=2)
    assert mmmu.vendor_strict == Accuracy(acc=0.5, n=2, correct=1)
    assert mmmu.differing_questions == 1
    assert mmmu.parameters == {"split": "validation"}
    assert {r["scoring"] for r in mmmu.references} == {"official", "vendor-strict"}

    result = DemoRecord(
        question="What is shown?",
        prompt="<|user|>\n<|image_1|>\nWhat is shown?<|end|>\n<|assistant|>\n",
        generated_text="A cat.",
        finish_reason="stop",
        image_sizes=[(640, 480)],
        num_prompt_tokens=770,
        expected_prompt_tokens=770,
        num_text_tokens=13,
        num_image_tokens=[757],
        num_output_tokens=4,
        ttft_ms=120.0,
        decode_ms=30.0,
        e2e_ms=150.0,
        wall_ms=155.0,
        output_tokens_per_s=4 / 0.15,
        decode_tokens_per_s=3 / 0.03,
        warmup_requests=0,
    )
    run = saved_run(tmp_path / "demo", "demo", {"demo": result.to_dict()})
    assert (run.demo.ttft_ms, run.demo.num_output_tokens) == (120.0, 4)
    assert run.demo.generated_text == "A cat." and run.demo.warmup_requests == 0
    assert run.perf is None and run.mmmu is None
    assert run.device == "NVIDIA H100 80GB HBM3"  # no perf section: the accelerator
    assert headline(run) == {
        "TTFT (ms)": 120.0,
        "output tokens": 4,
        "output tokens/s": approx(26.667, abs=1e-3),
    }


# ----------------------------------------------------------------------------------------
# Older files, other versions, broken files
# ----------------------------------------------------------------------------------------

OLDER_PERF = {  # a perf run from before the engine, schedule, roofline and timeline sections
    "schema_version": 1,
    "notebook": "perf",
    "status": "ok",
    "started_at": "2026-10-01T09:00:00",
    "parameters": {"model": "m", "dtype": "bfloat16", "num_crops": 4, "label": ""},
    "environment": {
        "kit_version": "0.1.0",
        "model": {"download_manifest": {"repo_id": "o/m", "resolved_revision": "1ce2adc1" * 5}},
        "accelerator": {"name": "NVIDIA L40S"},
    },
    "perf": {
        "device": "",
        "points": [
            {
                "params": {"input_len": 8192, "max_output_len": 1024, "batch_size": 4},
                "vendor": {"ttft_ms": 2000.0, "tps": 120.0, "prefill_ms": 1800.0},
            }
        ],
    },
    "error": None,
}


def test_an_older_record_reads_as_not_recorded(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(OLDER_PERF))
    run = read_run(tmp_path)
    assert run.engine is None and engine_line(run) == "" and weights_line(run) == ""
    assert run.device == "NVIDIA L40S"  # empty perf device: the accelerator's name
    assert run.model_revision == "o/m@1ce2adc11ce2"
    (point,) = run.perf_points()
    assert point.schedule == ScheduleRecord() and not point.schedule.verdict_known
    assert point.vendor.decode_ms_per_token is None  # absent column, not an error
    assert point.standard is None and point.roofline is None
    assert point.references == () and point.timeline == () and point.observed == {}
    assert batch_scheduling(point) == "unknown"
    cond = conditions(run, point)
    assert (cond["scheduling"], cond["weights"], cond["batch"]) == (None, None, None)
    (row,) = vendor_table(run.perf_points(), "L40S")
    assert row["batch scheduling"] == "unknown" and row["tps"] == 120.0
    assert standard_table(run.perf_points()) == roofline_table(run.perf_points()) == []
    assert comparison_warning_lines(run.perf_points()) == []
    assert headline(run) == {
        "in 8192 / out 1024 / bs 4 TTFT (ms)": 2000.0,
        "in 8192 / out 1024 / bs 4 TPS": 120.0,
    }


def test_an_older_mmmu_section_has_no_vendor_strict_overall():
    run = RunRecord.of(
        {**OLDER_PERF, "notebook": "mmmu", "perf": None, "mmmu": {"overall": {"acc": 0.4}}}
    )
    assert run.perf is None and run.mmmu.vendor_strict is None
    assert run.mmmu.official == Accuracy(acc=0.4)
    assert headline(run) == {"MMMU accuracy": 0.4, "questions": None}


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (SCHEMA_VERSION + 1, "written by a newer kit: update this checkout"),
        (0, "older or different tool"),
        (None, "older or different tool"),
    ],
)
def test_other_schema_versions_are_refused_saying_which_side_to_update(tmp_path, version, words):
    (tmp_path / "results.json").write_text(json.dumps({**OLDER_PERF, "schema_version": version}))
    with pytest.raises(ResultsError, match=f"schema_version {version!r}, this kit reads"):
        read_run(tmp_path)
    with pytest.raises(ResultsError, match=words):
        read_run(tmp_path / "results.json")


def test_broken_files_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(ResultsError, match="cannot be read"):
        read_run(tmp_path / "absent.json")
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        read_run(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(ResultsError, match="holds list"):
        read_run(tmp_path)
    point = {"params": {"input_len": 8192}, "vendor": {}}
    broken = {**OLDER_PERF, "perf": {"points": [OLDER_PERF["perf"]["points"][0], point]}}
    (tmp_path / "results.json").write_text(json.dumps(broken))
    with pytest.raises(ResultsError) as caught:
        read_run(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "results.json") in message and "perf.points[1]" in message
    assert "max_output_len, batch_size" in message


def test_a_broken_point_excludes_its_run_from_a_comparison(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder, data in ((good, OLDER_PERF), (bad, {**OLDER_PERF, "perf": {"points": [{}]}})):
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(data))
    loaded = load_runs([str(tmp_path / "*")])
    assert [run.folder for run in loaded.runs] == [good]
    assert loaded.usable[0]["perf"] == OLDER_PERF["perf"]  # the document as read
    (excluded,) = loaded.excluded
    assert excluded["path"].endswith("bad/results.json") and "perf.points[0]" in excluded["reason"]


# ----------------------------------------------------------------------------------------
# One label for a perf point
# ----------------------------------------------------------------------------------------


def test_every_table_plot_and_headline_names_a_point_one_way(tmp_path, written_point):
    point, record = written_point
    label = point_label(INPUT_LEN, OUTPUT_LEN, BATCH)
    assert PerfPointRecord.of(record).label == label
    staggered = json.loads(json.dumps(record))  # the same point, as if staggered
    staggered["references"][0]["warnings"] = ["staggered batch: ..."]
    assert comparison_warning_lines([staggered]) == [f"WARNING {label}: staggered batch: ..."]
    assert {row["point"] for row in standard_table([record])} == {label}
    assert [row["point"] for row in roofline_table([record])] == [label]
    run = saved_run(tmp_path, "perf", {"perf": {"device": "H100", "points": [record]}})
    assert set(RunSummary.of(run).headline) == {f"{label} TTFT (ms)", f"{label} TPS"}
    rows = compare([run], baseline="L40s").rows
    (measured,) = [r for r in rows if r["label"] == "H100"]
    assert measured["scenario"] == label  # and the vendor's row of that name is its baseline
    assert measured["tps / baseline"] == approx(409.6 / 112.76, abs=1e-3)
    for figure in (
        versus_references(record, "H100"),
        latency_distribution(PerfPointRecord.of(record), []),
    ):
        assert figure._suptitle.get_text() == label
    timeline = first_batch_timeline(record, "one step")
    assert timeline.axes[0].get_title() == f"{label}: first timed batch (one step)"


def test_the_vendor_table_keeps_its_columns_and_values(written_point):
    _, record = written_point
    measured, vendor, ratio, *rest = vendor_table([record], "H100")
    scenario = ["source", "input-len", "output-len", "num-prompts"]
    metrics = ["ttft_ms", "tps", "prefill_ms", "decode_ms_per_token"]
    assert list(measured) == scenario + metrics + ["batch scheduling", "caches"]
    assert measured["caches"] == "not recorded"  # a point built without its cache counts
    assert measured["source"] == "measured (H100)" and measured["batch scheduling"] == "one step"
    assert [measured[k] for k in scenario[1:]] == [8192, 1024, 4]
    assert measured["tps"] == approx(409.6)
    assert vendor == {
        "source": "vendor S60",
        "input-len": 8192,
        "output-len": 1024,
        "num-prompts": 4,
        "ttft_ms": 7846.19,
        "tps": 50.09,
        "prefill_ms": 7740.04,
        "decode_ms_per_token": 72.32,
    }
    assert ratio["source"] == "measured / S60" and ratio["tps"] == approx(409.6 / 50.09)
    assert ratio["batch scheduling"] == ""  # no warning
    assert [r["source"] for r in rest] == ["vendor L40s", "measured / L40s"]
    (tps,) = [r for r in standard_table([record]) if r["metric"] == "tps (per iteration)"]
    assert (tps["mean"], tps["iteration means min"], tps["n"]) == (approx(409.6), approx(409.6), 2)


def test_the_reader_stands_alone_without_vllm_or_the_writer():
    code = (
        "import sys, kit.records.results; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('vllm', 'torch') "
        "or m.startswith(('kit.runs', 'kit.engines'))]; print(bad); sys.exit(bool(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
