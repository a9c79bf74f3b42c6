"""The reproduce notebook end to end on the tiny model: every child in its own run folder,
one report with a verdict table whose rows say why they do not apply, and a --resume that
reruns only the child that did not finish.

One reproduction (three engine starts) serves every test of the module; the resume test
changes it, so it comes last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import kit_in_process

pytestmark = pytest.mark.slow

ALLOWED_ON_THE_TINY_MODEL = ("not applicable", "not comparable", "not measured", "compared")


@dataclass(frozen=True)
class Reproduced:
    outputs: Path
    parent: Path
    children: dict[str, dict]  # children.json after the first run
    folders: dict[str, Path]  # child key -> its run folder
    results: dict  # the parent's results.json after the first run

    @property
    def env(self) -> dict[str, str]:
        return {"KIT_OUTPUTS_DIR": str(self.outputs)}


def children(parent: Path) -> dict[str, dict]:
    data = json.loads((parent / "children.json").read_text())
    return {c["key"]: c for c in data["children"]}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, smoke_model) -> Reproduced:
    outputs = tmp_path_factory.mktemp("reproduce") / "outputs"
    env = {"KIT_OUTPUTS_DIR": str(outputs)}
    proc = kit_in_process("run", "reproduce", "-f", "params/reproduce-smoke.yaml", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parent = Path(re.search(r"^run folder: (.+)$", proc.stdout, re.MULTILINE).group(1))
    kids = children(parent)
    folders = {k: (parent / c["folder"]).resolve() for k, c in kids.items() if c["folder"]}
    results = json.loads((parent / "results.json").read_text())
    return Reproduced(outputs, parent, kids, folders, results)


def test_every_child_runs_in_its_own_folder_beside_the_parent(reproduced):
    kids = reproduced.children
    assert list(kids) == ["model", "demo", "mmmu", "perf:smoke-perf"]
    assert all(c["status"] == "ok" and c["attempts"] == 1 for c in kids.values())
    assert kids["model"]["folder"] is None and kids["model"]["result"]["kind"] == "smoke"
    assert set(reproduced.folders) == {"demo", "mmmu", "perf:smoke-perf"}
    for key, folder in reproduced.folders.items():
        assert folder.parent == reproduced.outputs.resolve()  # beside the parent's folder
        child = json.loads((folder / "results.json").read_text())
        assert child["status"] == "ok" and child["notebook"] == key.split(":")[0]
        assert (folder / "report.html").is_file()


def test_every_claim_has_a_verdict_that_says_why(reproduced):
    results = reproduced.results
    assert results["status"] == "ok" and results["notebook"] == "reproduce"
    record = results["reproduce"]
    assert [c["child"] for c in record["children"]] == list(reproduced.children)
    verdicts = record["verdicts"]
    assert {v["section"] for v in verdicts} == {"model", "demo", "mmmu", "perf", "environment"}
    for v in verdicts:  # on the tiny model nothing is judged, and each row says why
        assert v["verdict"] in ALLOWED_ON_THE_TINY_MODEL, v
        assert v["why"]
    smoke_point = next(v for v in verdicts if "no vendor row" in v["claim"])
    assert "tiny model" in smoke_point["why"] and "[" in smoke_point["measured"]  # an interval


def test_the_report_opens_with_the_verdict_table_and_links_each_child(reproduced):
    page = (reproduced.parent / "report.html").read_text()
    top = page.index("claims and this reproduction")
    assert top < page.index('id="Model-identity"')  # the verdict table comes first
    assert "not applicable" in page and "the kit&#x27;s own" not in page  # smoke: noise
    for key, folder in reproduced.folders.items():
        assert f'href="../{folder.name}/report.html"' in page, key
    assert "<mark>" in page  # the first divergence is highlighted
    assert "[reproduce]" not in page  # progress lines went to the terminal only


def test_resume_reruns_only_the_unfinished_child(reproduced):
    """The cheapest child to rerun is the model check (in the parent's kernel); the notebook
    children around it must be kept as they are. (A notebook child rerun in its own folder:
    tests/test_reproduce.py with a stand-in for kit.runner.execute, and every child here
    already runs through execute with resume=its folder.)"""
    parent, folders, before = reproduced.parent, reproduced.folders, reproduced.children
    data = json.loads((parent / "children.json").read_text())
    for child in data["children"]:
        if child["key"] == "model":
            child["status"], child["error"] = "failed", "made to look unfinished by the test"
    (parent / "children.json").write_text(json.dumps(data))
    untouched = {k: (f / "results.json").stat().st_mtime_ns for k, f in folders.items()}

    again = kit_in_process("run", "reproduce", "--resume", str(parent), env=reproduced.env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "[reproduce] model: checking smoke" in again.stdout  # truly rerun
    kids = children(parent)
    model = kids["model"]
    assert model["status"] == "ok" and model["error"] is None and model["attempts"] == 2
    assert model["started_at"] > before["model"]["finished_at"]
    assert model["result"] == before["model"]["result"]
    for key in ("demo", "mmmu", "perf:smoke-perf"):
        assert kids[key] == before[key], key  # kept: same record, attempts 1
        assert f"[reproduce] {key}: kept" in again.stdout, key
    for key, mtime in untouched.items():
        assert (folders[key] / "results.json").stat().st_mtime_ns == mtime, key
    assert (parent / "reproduce.attempt-1.ipynb").is_file()  # the parent resumed in place
    resumed = json.loads((parent / "results.json").read_text())
    assert resumed["status"] == "ok"
    verdicts = reproduced.results["reproduce"]["verdicts"]
    assert sorted(resumed["reproduce"]["verdicts"], key=str) == sorted(verdicts, key=str)
    assert sorted(p.name for p in reproduced.outputs.iterdir()) == sorted(
        [parent.name, *(f.name for f in folders.values()), "index.html"]
    )  # no new run folder
