"""Reports that travel: two labelled perf runs compared, and every kind of report opened in
headless Chromium (installed by the setup when missing) with no request leaving the machine.

The demo, the two labelled perf runs (first: vendor scheduling, second: vllm) and MMMU on
the fixture are the session's shared runs (tests/conftest.py); this module adds a comparison
of the two perf runs, in the same outputs folder. Screenshots are kept in each
run folder under screenshots/.
"""

import json
import re

import pytest

from .browser import browser_own_hosts, ensure_chromium, load_page
from .conftest import run_into


@pytest.fixture(scope="module")
def runs(shared_outputs, demo_run, perf_sweep_run, perf_vllm_run, mmmu_run):
    folders = {
        "demo": demo_run[0],
        "perf": perf_sweep_run[0],
        "perf second": perf_vllm_run[0],
        "mmmu": mmmu_run[0],
    }
    folders["compare"], _ = run_into(
        shared_outputs,
        "compare",
        *("-p", "runs", f"{shared_outputs}/*perf*", "-p", "label_by", "label"),
        *("-p", "baseline", "first"),
    )
    return shared_outputs, folders


@pytest.mark.slow
def test_two_labelled_runs_compare(runs):
    outputs, folders = runs
    results = json.loads((folders["compare"] / "results.json").read_text())
    rows = results["compare"]["rows"]
    assert {r["label"] for r in rows} == {"first", "second"}
    assert all(r["flags"] == "baseline" for r in rows if r["label"] == "first")
    (second,) = [r for r in rows if r["label"] == "second"]  # 800 x 2 -> 8 under vllm
    (first,) = [r for r in rows if r["label"] == "first" and r["scenario"] == second["scenario"]]
    assert second["tps / baseline"] == pytest.approx(second["tps"] / first["tps"], rel=1e-2)
    # same model, dtype, num_crops, image shape; the scheduling mode differs and is named
    assert second["flags"].startswith("not comparable: scheduling: vllm vs vendor")
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
