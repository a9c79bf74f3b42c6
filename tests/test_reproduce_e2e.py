"""The reproduce notebook end to end on the tiny model: every child in its own run folder,
one report with a verdict table whose rows say why they do not apply, and a --resume that
reruns only the child that did not finish (the MMMU child: its answers are all saved, so
its rerun starts no engine)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import run_kit

pytestmark = pytest.mark.slow


def children(parent: Path) -> dict[str, dict]:
    data = json.loads((parent / "children.json").read_text())
    return {c["key"]: c for c in data["children"]}


def test_reproduce_smoke_then_resume_one_child(outputs, smoke_model):
    env = {"KIT_OUTPUTS_DIR": str(outputs)}
    proc = run_kit("run", "reproduce", "-f", "params/reproduce-smoke.yaml", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parent = Path(re.search(r"^run folder: (.+)$", proc.stdout, re.MULTILINE).group(1))

    kids = children(parent)
    assert list(kids) == ["model", "demo", "mmmu", "perf:smoke-perf"]
    assert all(c["status"] == "ok" for c in kids.values())
    folders = {k: (parent / c["folder"]).resolve() for k, c in kids.items() if c["folder"]}
    for key, folder in folders.items():
        assert folder.parent == outputs.resolve()  # beside the parent's folder
        child = json.loads((folder / "results.json").read_text())
        assert child["status"] == "ok" and child["notebook"] == key.split(":")[0]
        assert (folder / "report.html").is_file()

    results = json.loads((parent / "results.json").read_text())
    assert results["status"] == "ok" and results["notebook"] == "reproduce"
    record = results["reproduce"]
    assert [c["child"] for c in record["children"]] == list(kids)
    verdicts = record["verdicts"]
    assert {v["section"] for v in verdicts} == {"model", "demo", "mmmu", "perf", "environment"}
    for v in verdicts:  # on the tiny model nothing is judged, and each row says why
        assert v["verdict"] in (
            "not applicable",
            "not comparable",
            "not measured",
            "compared",
        ), v
        assert v["why"]
    smoke_point = next(v for v in verdicts if "no vendor row" in v["claim"])
    assert "tiny model" in smoke_point["why"] and "[" in smoke_point["measured"]  # an interval

    page = (parent / "report.html").read_text()
    top = page.index("claims and this reproduction")
    assert top < page.index('id="Model-identity"')  # the verdict table comes first
    assert "not applicable" in page and "the kit&#x27;s own" not in page  # smoke: noise
    demo_link = f'href="../{folders["demo"].name}/report.html"'
    assert demo_link in page
    assert "<mark>" in page  # the first divergence is highlighted
    assert "[reproduce]" not in page  # progress lines went to the terminal only

    # make the MMMU child look unfinished, then resume the parent
    data = json.loads((parent / "children.json").read_text())
    for child in data["children"]:
        if child["key"] == "mmmu":
            child["status"], child["error"] = "failed", "made to look unfinished by the test"
    (parent / "children.json").write_text(json.dumps(data))
    untouched = {
        k: (f / "results.json").stat().st_mtime_ns for k, f in folders.items() if k != "mmmu"
    }
    again = run_kit("run", "reproduce", "--resume", str(parent), env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    kids = children(parent)
    assert kids["mmmu"]["status"] == "ok" and kids["mmmu"]["attempts"] == 2
    assert kids["demo"]["attempts"] == 1 and kids["perf:smoke-perf"]["attempts"] == 1
    assert (folders["mmmu"] / "mmmu.attempt-1.ipynb").is_file()  # rerun in its own folder
    for key, mtime in untouched.items():
        assert (folders[key] / "results.json").stat().st_mtime_ns == mtime, key
    assert (parent / "reproduce.attempt-1.ipynb").is_file()
    resumed = json.loads((parent / "results.json").read_text())
    assert resumed["status"] == "ok"
    assert sorted(resumed["reproduce"]["verdicts"], key=str) == sorted(verdicts, key=str)
    assert len(list(outputs.glob("*-mmmu-*"))) == 1  # no new MMMU folder
