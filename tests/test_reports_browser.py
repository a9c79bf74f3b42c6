"""Reports that travel: two labelled perf runs compared, and every kind of report opened in
headless Chromium (installed by the setup when missing) with no request leaving the machine.

One module-scoped set of runs on the tiny model: demo, perf x 2 (labels first/second),
MMMU on the fixture, and a comparison of the two perf runs. Screenshots are kept in each
run folder under screenshots/.
"""

import json
import re

import pytest

from .browser import browser_own_hosts, ensure_chromium, load_page
from .conftest import run_kit

SMALL_PERF = [
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


@pytest.fixture(scope="module")
def runs(tmp_path_factory, smoke_model):
    outputs = tmp_path_factory.mktemp("outputs")
    env = {"KIT_OUTPUTS_DIR": str(outputs)}

    def kit_run(*args):
        proc = run_kit("run", *args, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return sorted(outputs.glob(f"*-{args[0]}-*"), key=lambda p: p.stat().st_mtime)[-1]

    folders = {
        "demo": kit_run("demo", "-f", "params/smoke-demo.yaml", "-p", "max_output_len", "8"),
        "perf": kit_run(
            "perf", "-f", "params/smoke-perf.yaml", "-p", "label", "first", *SMALL_PERF
        ),
    }
    kit_run("perf", "-f", "params/smoke-perf.yaml", "-p", "label", "second", *SMALL_PERF)
    folders["mmmu"] = kit_run("mmmu", "-f", "params/smoke-mmmu.yaml", "-p", "limit", "1")
    folders["compare"] = kit_run(
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
    )
    return outputs, folders


@pytest.mark.slow
def test_two_labelled_runs_compare(runs):
    outputs, folders = runs
    results = json.loads((folders["compare"] / "results.json").read_text())
    by_label = {r["label"]: r for r in results["compare"]["rows"]}
    assert set(by_label) == {"first", "second"}
    assert by_label["first"]["flags"] == "baseline"
    second = by_label["second"]
    assert second["tps / baseline"] == pytest.approx(
        second["tps"] / by_label["first"]["tps"], rel=1e-2
    )
    assert second["flags"] == ""  # same model, dtype, num_crops, image shape
    md = (folders["compare"] / "report.md").read_text()
    assert "| label |" in md and "(report_files/" in md
    assert list((folders["compare"] / "report_files").glob("*.png"))


@pytest.mark.slow
def test_index_lists_every_run_newest_first(runs):
    outputs, folders = runs
    index = (outputs / "index.html").read_text()
    assert index.count("<tr><td>") == 5
    assert index.index(folders["compare"].name) < index.index(folders["demo"].name)
    for folder in folders.values():
        assert f'href="{folder.name}/report.html"' in index


@pytest.fixture(scope="module")
def chromium():
    path = ensure_chromium()
    return path, browser_own_hosts(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind,min_tables,min_figures",
    [("demo", 5, 1), ("perf", 6, 2), ("mmmu", 6, 2), ("compare", 3, 4)],
)
def test_report_in_a_real_browser(runs, chromium, kind, min_tables, min_figures):
    _, folders = runs
    browser, own_hosts = chromium
    folder = folders[kind]
    screenshot = folder / "screenshots" / "report.png"
    screenshot.parent.mkdir(exist_ok=True)
    dom, outbound = load_page(browser, folder / "report.html", screenshot, own_hosts)
    assert outbound == [], f"the {kind} report tried to reach: {outbound}"
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    assert len(re.findall(r"<table", dom)) >= min_tables
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) >= min_figures
    assert 'class="kit-header"' in dom and "Reproduce" in dom  # identity on top, command below
    assert not re.search(r"<script[^>]+src=", dom)


def test_the_outbound_detector_sees_remote_resources(chromium, tmp_path):
    browser, own_hosts = chromium
    page = tmp_path / "control.html"
    page.write_text(
        '<img src="http://example.com/x.png"><link rel="stylesheet" '
        'href="https://fonts.example.org/a.css">'
    )
    _, outbound = load_page(browser, page, tmp_path / "control.png", own_hosts)
    hosts = " ".join(outbound)
    assert "example.com" in hosts and "fonts.example.org" in hosts
