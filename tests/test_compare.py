"""Comparison logic on hand-written results.json files: aggregation, ratios, flags, errors."""

import json
import re

import pytest

from kit.compare.inputs import load_runs
from kit.compare.numerics import table_rows
from kit.compare.table import compare
from kit.core.params import ParameterError
from kit.records.compare import CompareRecord
from kit.records.references import load_references
from kit.report.display import table_output
from kit.runs.index import write_index


def perf_results(device, tps, ttft, dtype="bfloat16", status="ok", input_len=8192, label=""):
    return {
        "schema_version": 1,
        "notebook": "perf",
        "status": status,
        "label": label,
        "started_at": f"2026-11-25T10:00:0{len(device) % 10}",
        "parameters": {"model": "m", "dtype": dtype, "num_crops": 4, "label": label},
        "environment": {
            "kit_version": "0.1.0",
            "model": {"config_sha256": "ab" * 32},
            "accelerator": {"name": device},
        },
        "perf": {
            "device": device,
            "points": [
                {
                    "params": {
                        "input_len": input_len,
                        "max_output_len": 1024,
                        "batch_size": 4,
                        "input_vision_shape": [[1024, 1024]],
                    },
                    "vendor": {
                        "ttft_ms": ttft,
                        "tps": tps,
                        "prefill_ms": 100.0,
                        "decode_ms_per_token": 20.0,
                    },
                }
            ],
        },
        "error": None if status == "ok" else "boom",
    }


def write(tmp_path, name, data):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(data))
    return folder


def test_ratios_against_a_run_baseline(tmp_path):
    write(tmp_path, "a", perf_results("H100", tps=200.0, ttft=400.0))
    write(tmp_path, "b", perf_results("L40S", tps=100.0, ttft=800.0))
    loaded = load_runs([str(tmp_path / "*")])
    result = compare(loaded.usable, baseline="L40S")
    rows = {r["label"]: r for r in result.rows}
    assert rows["L40S"]["flags"] == "baseline"
    assert rows["H100"]["tps / baseline"] == 2.0
    assert rows["H100"]["ttft_ms / baseline"] == 0.5
    assert rows["H100"]["flags"] == ""


def test_reference_device_baseline(tmp_path):
    write(tmp_path, "a", perf_results("H100", tps=225.52, ttft=1299.095))
    loaded = load_runs([str(tmp_path / "a")])
    result = compare(loaded.usable, baseline="L40s", refs=load_references())
    measured = next(r for r in result.rows if r["label"] == "H100")
    assert measured["tps / baseline"] == 2.0  # L40s 8192 x 4 TPS is 112.76
    assert measured["ttft_ms / baseline"] == 0.5  # L40s TTFT 2598.19
    assert result.baseline == "L40s (vendor)"


def test_differing_conditions_are_flagged_not_mixed(tmp_path):
    write(tmp_path, "a", perf_results("L40S", tps=100.0, ttft=800.0))
    write(tmp_path, "b", perf_results("S60", tps=50.0, ttft=900.0, dtype="float16"))
    result = compare(load_runs([str(tmp_path / "*")]).usable, baseline="L40S")
    s60 = next(r for r in result.rows if r["label"] == "S60")
    assert s60["flags"] == "not comparable: dtype: float16 vs bfloat16"


def test_failed_and_other_schema_runs_are_listed_not_used(tmp_path):
    write(tmp_path, "ok", perf_results("L40S", tps=100.0, ttft=800.0))
    write(tmp_path, "failed", perf_results("S60", tps=1.0, ttft=1.0, status="failed"))
    newer = perf_results("H100", tps=1.0, ttft=1.0)
    newer["schema_version"] = 99
    write(tmp_path, "newer", newer)
    loaded = load_runs([str(tmp_path / "*")])
    assert [r["perf"]["device"] for r in loaded.usable] == ["L40S"]
    reasons = {e["path"].split("/")[-2]: e["reason"] for e in loaded.excluded}
    assert "run failed: boom" in reasons["failed"]
    assert "schema_version 99" in reasons["newer"] and "newer kit" in reasons["newer"]


def test_zero_matching_runs_is_a_clear_error(tmp_path):
    with pytest.raises(ParameterError, match="no run folder or results.json matches"):
        load_runs([str(tmp_path / "nothing*")])


def test_label_by_parameter_and_unknown(tmp_path):
    write(tmp_path, "a", perf_results("L40S", tps=100.0, ttft=800.0))
    usable = load_runs([str(tmp_path / "a")]).usable
    assert compare(usable, label_by="dtype").rows[0]["label"] == "dtype=bfloat16"
    with pytest.raises(ParameterError, match="label_by"):
        compare(usable, label_by="colour")


def test_index_lists_runs_newest_first_with_escaped_text(tmp_path):
    write(tmp_path, "20261125-100000-perf-aaaaaa", perf_results("<b>gpu</b>", 1.0, 1.0))
    later = perf_results("L40S", 2.0, 2.0)
    later["started_at"] = "2026-11-26T00:00:00"
    write(tmp_path, "20261126-000000-perf-bbbbbb", later)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    page = write_index(tmp_path).read_text()
    assert page.index("L40S") < page.index("&lt;b&gt;gpu&lt;/b&gt;")
    assert "<b>gpu</b>" not in page
    assert "not valid JSON" in page


def test_dummy_weights_and_staggered_batches_are_flagged(tmp_path):
    real = perf_results("H100", tps=200.0, ttft=400.0)
    real["engine"] = {"scheduling": "vendor", "weights": "checkpoint"}
    dummy = perf_results("H200", tps=300.0, ttft=300.0)
    dummy["engine"] = {"scheduling": "vendor", "weights": "dummy"}
    staggered = perf_results("L4", tps=20.0, ttft=3000.0)
    staggered["engine"] = {"scheduling": "vllm", "weights": "checkpoint"}
    staggered["perf"]["points"][0]["schedule"] = {
        "staggered": True,
        "staggered_beyond_budget": True,
    }
    for name, data in (("a", real), ("b", dummy), ("c", staggered)):
        write(tmp_path, name, data)
    usable = load_runs([str(tmp_path / "*")]).usable
    rows = {r["label"]: r for r in compare(usable, baseline="H100").rows}
    assert rows["H200"]["flags"] == "not comparable: weights: dummy vs checkpoint"
    assert "scheduling: vllm vs vendor" in rows["L4"]["flags"]
    # against the vendor's L40s rows (vLLM 0.6 prefilled 4 x 8192 in one step)
    rows = {r["label"]: r for r in compare(usable, baseline="L40s").rows}
    assert "batch: staggered vs as the token budget allows" in rows["L4"]["flags"]
    assert "weights: dummy vs checkpoint" in rows["H200"]["flags"]
    # two dummy runs compare as speed figures, still named as such
    rows = {r["label"]: r for r in compare(usable, baseline="H200").rows}
    assert rows["H200"]["flags"] == "baseline"


def test_each_row_shows_its_backend_and_a_served_run_is_flagged(tmp_path):
    offline = perf_results("H100", tps=200.0, ttft=400.0)
    offline["engine"] = {"backend": "offline", "scheduling": "vendor"}
    served = perf_results("H100-served", tps=190.0, ttft=430.0)
    served["engine"] = {"backend": "server", "endpoint": "http://gpu:8000", "scheduling": "vendor"}
    write(tmp_path, "a", offline)
    write(tmp_path, "b", served)
    result = compare(load_runs([str(tmp_path / "*")]).usable, baseline="H100")
    rows = {r["label"]: r for r in result.rows if r["kind"] == "perf"}
    assert rows["H100"]["backend"] == "offline" and rows["H100-served"]["backend"] == "server"
    assert "backend: server vs offline" in rows["H100-served"]["flags"]


# ----------------------------------------------------------------------------------------
# Numerics runs: each one's verdict against its reference
# ----------------------------------------------------------------------------------------


def numerics_results(label, reference=None, verdict="close", prompts=(), device="CPU"):
    """A numerics run's results.json; ``reference`` None: a run that records only."""
    document = {
        "schema_version": 2,
        "notebook": "numerics",
        "status": "ok",
        "label": label,
        "parameters": {"model": "smoke", "dtype": "bfloat16", "label": label},
        "environment": {"kit_version": "0.1.0", "accelerator": {"name": device}},
        "numerics_run": {"prompt_set": "params/numerics-prompts-v1.yaml", "prompts": 3},
        "error": None,
    }
    if reference is not None:
        counts = {}
        for _, word in prompts:
            counts[word] = counts.get(word, 0) + 1
        document["numerics"] = {
            "reference": reference,
            "verdict": verdict,
            "thresholds": {"mean_abs_delta": 0.05},
            "counts": {"identical": 0, "close": 0, "incomplete": 0, "diverged": 0, **counts},
            "positions": 192,
            "mean_abs_delta": 0.0161234,
            "max_abs_delta": 0.3125,
            "prompts": [{"id": pid, "verdict": word} for pid, word in prompts],
        }
    return document


PROMPTS = (("text-capital", "close"), ("images-two", "diverged"), ("long-8k", "close"))


def test_a_numerics_run_shows_its_verdict_against_a_compared_reference(tmp_path):
    write(tmp_path, "20261205-100000-perf-aaaaaa", perf_results("H100", tps=200.0, ttft=400.0))
    reference = "20261205-110000-numerics-bbbbbb"
    write(tmp_path, reference, numerics_results("h100-reference", device="H100"))
    checked = numerics_results("s60", reference, "diverged", PROMPTS, device="S60")
    write(tmp_path, "20261205-120000-numerics-cccccc", checked)
    loaded = load_runs([str(tmp_path / "*")])
    assert len(loaded.usable) == 3 and loaded.excluded == []
    result = compare(loaded.usable, label_by="label")
    assert result.baseline == "H100"  # the first run with numbers
    (row,) = result.numerics  # the reference records only: no row of its own
    assert (row.label, row.run) == ("s60", "20261205-120000-numerics-cccccc")
    assert (row.reference, row.reference_run) == ("h100-reference", reference)
    assert row.verdict == "diverged" and row.diverged == ("images-two",)
    assert row.counts["close"] == 2 and row.positions == 192
    # recorded in compare's section, and read back by its one class
    section = result.record().to_dict()
    assert section["numerics"][0]["reference_run"] == reference
    assert section["numerics"][0]["diverged"] == ["images-two"]
    assert CompareRecord.of(json.loads(json.dumps(section))).numerics == (row,)
    (shown,) = table_rows(result.numerics)
    assert shown == {
        "label": "s60",
        "run": "20261205-120000-numerics-cccccc",
        "reference": f"h100-reference ({reference})",
        "verdict": "diverged",
        "prompts": "2 close, 1 diverged",
        "teacher-forced positions": 192,
        "mean |Δ logprob|": "0.01612",
        "max |Δ logprob|": "0.3125",
        "diverged": "images-two",
    }
    # labelled by device: the reference by its device, still with its folder
    (by_device,) = compare(loaded.usable).numerics
    assert (by_device.label, by_device.reference) == ("S60", "H100")


def test_a_reference_outside_the_comparison_is_named_as_recorded(tmp_path):
    outside = "/elsewhere/20261205-110000-numerics-bbbbbb/numerics.jsonl"
    write(tmp_path, "a", numerics_results("a", outside, "close", PROMPTS[:1]))
    write(tmp_path, "b", numerics_results("b", "transformers (float32, CPU)", "identical"))
    result = compare(load_runs([str(tmp_path / "*")]).usable, label_by="label")
    assert [(r.label, r.reference, r.reference_run) for r in result.numerics] == [
        ("a", outside, None),
        ("b", "transformers (float32, CPU)", None),
    ]
    rows = table_rows(result.numerics)
    assert rows[0]["reference"] == outside and rows[1]["diverged"] == "none"
    assert rows[1]["prompts"] == "none"
    assert result.rows == [] and result.baseline == ""  # no perf, MMMU or demo numbers


def test_a_reference_given_as_its_numerics_file_is_found_among_the_compared_runs(tmp_path):
    folder = write(tmp_path, "20261205-110000-numerics-bbbbbb", numerics_results("ref"))
    checked = numerics_results("run", str(folder / "numerics.jsonl"), "close", PROMPTS[:1])
    write(tmp_path, "20261205-120000-numerics-cccccc", checked)
    (row,) = compare(load_runs([str(tmp_path / "*")]).usable, label_by="label").numerics
    assert (row.reference, row.reference_run) == ("ref", folder.name)


def test_runs_without_numerics_record_an_empty_section_and_old_files_read(tmp_path):
    write(tmp_path, "a", perf_results("H100", tps=200.0, ttft=400.0))
    result = compare(load_runs([str(tmp_path / "a")]).usable)
    assert result.numerics == [] and result.record().to_dict()["numerics"] == []
    assert CompareRecord.of({"baseline": "H100", "rows": []}).numerics == ()


def test_numerics_labels_and_prompt_ids_are_escaped_in_the_report(tmp_path):
    hostile = '<script>alert("x")</script>|'
    write(tmp_path, "20261205-110000-numerics-bbbbbb", numerics_results("<b>ref</b>"))
    prompts = (("<img src=x onerror=alert(1)>", "diverged"),)
    checked = numerics_results(hostile, "20261205-110000-numerics-bbbbbb", "diverged", prompts)
    write(tmp_path, "20261205-120000-numerics-cccccc", checked)
    result = compare(load_runs([str(tmp_path / "*")]).usable, label_by="label")
    output = table_output(table_rows(result.numerics), caption="Numerics")
    html, md = output.data["text/html"], output.data["text/markdown"]
    assert "<script>" not in html and "<img" not in html and "<b>ref" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;ref&lt;/b&gt; (20261205-110000-numerics-bbbbbb)" in html
    assert "<script>" not in md and "<img" not in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 10 for line in table)  # 9 columns
