"""Two smoke perf runs with different labels, compared by the comparison notebook."""

import json

import pytest

from .conftest import run_kit

SMALL = [
    "-p",
    "max_output_len",
    "4",
    "-p",
    "iterations",
    "1",
    "-p",
    "warmup",
    "0",
    "-p",
    "batch_size",
    "1",
    "-p",
    "ttft_probe",
    "false",
]


@pytest.mark.slow
def test_two_labelled_runs_compare(tmp_path):
    outputs = tmp_path / "outputs"
    env = {"KIT_OUTPUTS_DIR": str(outputs)}
    for label in ("first", "second"):
        proc = run_kit(
            "run", "perf", "-f", "params/smoke-perf.yaml", "-p", "label", label, *SMALL, env=env
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_kit(
        "run",
        "compare",
        "-p",
        "runs",
        f"{outputs}/*perf*",
        "-p",
        "label_by",
        "label",
        "-p",
        "baseline",
        "first",
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (folder,) = outputs.glob("*-compare-*")
    rows = json.loads((folder / "results.json").read_text())["compare"]["rows"]
    by_label = {r["label"]: r for r in rows}
    assert set(by_label) == {"first", "second"}
    assert by_label["first"]["flags"] == "baseline"
    second = by_label["second"]
    assert second["tps / baseline"] == pytest.approx(
        second["tps"] / by_label["first"]["tps"], rel=1e-2
    )
    assert second["flags"] == ""  # same model, dtype, num_crops, image shape
    report = (folder / "report.html").read_text()
    assert "Performance vs baseline" in report and report.count("data:image/png") >= 4
    md = (folder / "report.md").read_text()
    assert "| label |" in md and "(report_files/" in md
    index = (outputs / "index.html").read_text()
    assert index.count("<tr><td>") == 3 and "compare" in index
