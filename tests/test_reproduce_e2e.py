"""The reproduce notebook end to end on the tiny model: every child in its own run folder,
one report with a verdict table whose rows say why they do not apply, and a --resume that
reruns only the children that did not finish, a notebook child that really failed included.

One reproduction (three engine starts) serves every test of the module; the resume test
changes it, so it comes last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from kit.records.perf import point_label
from kit.records.references import load_references

from .conftest import kit_in_process

pytestmark = pytest.mark.slow

TINY_ANSWER = "the tiny random-weight model (smoke): its answer is noise"
TINY_TIMINGS = "the tiny model (smoke): its timings say nothing about Phi-3.5-vision"


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


def expected_verdicts() -> list[tuple[str, str, str, str]]:
    """(section, claim, verdict, why) of every claim for the smoke reproduction, in the
    document's order (kit/verdicts.py): nothing is judged on the tiny model, each for its
    own reason. The claims come from the document (params/references.yaml)."""
    refs = load_references()
    mmmu_subset = (
        "the tiny random-weight model (smoke): its accuracy is noise; the synthetic fixture, "
        "not MMMU; a subset: 2 of the 900 validation questions"  # limit 1 of Art and Physics
    )
    environment = (
        "stated for context: the kit runs current vLLM (V1) with scheduling: vendor "
        "(docs/vendor-reference.md, section 6); the L40s's software is not stated"
    )
    smoke_point = point_label(400, 4, 2)  # the smoke row: input_len 400, 4 tokens, bs 2
    return [
        (
            "model",
            "model revision",
            "not applicable",
            "the tiny random-weight model the kit builds itself: it has no download manifest "
            "and is not Phi-3.5-vision-instruct",
        ),
        *(("demo", f"demo answer ({d})", "not applicable", TINY_ANSWER) for d in refs.demo.answers),
        *(
            ("mmmu", f"MMMU accuracy ({r.device})", "not comparable", mmmu_subset)
            for r in refs.mmmu
        ),
        *(
            (
                "perf",
                f"perf {point_label(r.input_len, r.output_len, r.num_prompts)} ({r.device})",
                "not measured",  # no perf child ran a vendor row
                f"no perf child ran {point_label(r.input_len, r.output_len, r.num_prompts)} "
                "(parameter 'perf_params')",
            )
            for r in refs.perf
        ),
        (
            "perf",
            f"perf {smoke_point} (no vendor row)",
            "not applicable",
            f"{smoke_point} is not a row of the document's table; {TINY_TIMINGS}",
        ),
        ("environment", "test environment", "compared", environment),
    ]


def test_every_claim_has_its_verdict_and_the_reason(reproduced):
    results = reproduced.results
    assert results["status"] == "ok" and results["notebook"] == "reproduce"
    record = results["reproduce"]
    assert [c["child"] for c in record["children"]] == list(reproduced.children)
    verdicts = record["verdicts"]
    assert [(v["section"], v["claim"], v["verdict"], v["why"]) for v in verdicts] == (
        expected_verdicts()
    )
    by_claim = {v["claim"]: v for v in verdicts}
    folders = {k: f"../{f.name}" for k, f in reproduced.folders.items()}
    mmmu = json.loads((reproduced.folders["mmmu"] / "results.json").read_text())["mmmu"]
    overall = mmmu["scoring"]["vendor_strict"]["overall"]
    s60 = by_claim["MMMU accuracy (S60)"]  # measured: the child's Overall, vendor-strict
    assert s60["measured"].endswith(f"({overall['correct']}/{overall['n']}, 95% Wilson)")
    assert (
        s60["link"] == folders["mmmu"] and by_claim["demo answer (S60)"]["link"] == folders["demo"]
    )
    smoke_point = by_claim[f"perf {point_label(400, 4, 2)} (no vendor row)"]
    assert smoke_point["link"] == folders["perf:smoke-perf"] and "[" in smoke_point["measured"]
    demo = json.loads((reproduced.folders["demo"] / "results.json").read_text())
    (engine_package,) = metadata.packages_distributions()["vllm"]
    assert by_claim["test environment"]["measured"] == (
        f"{demo['environment']['accelerator']['name']}, vLLM {metadata.version(engine_package)}, "
        f"torch {metadata.version('torch')}"
    )


def test_the_report_opens_with_the_verdict_table_and_links_each_child(reproduced):
    page = (reproduced.parent / "report.html").read_text()
    top = page.index("claims and this reproduction")
    assert top < page.index('id="Model-identity"')  # the verdict table comes first
    assert "not applicable" in page and "the kit&#x27;s own" not in page  # smoke: noise
    for key, folder in reproduced.folders.items():
        assert f'href="../{folder.name}/report.html"' in page, key
    assert "<mark>" in page  # the first divergence is highlighted
    assert "[reproduce]" not in page  # progress lines went to the terminal only


def test_the_smoke_reproduction_is_shared_to_a_git_wiki_and_to_mediawiki(reproduced, tmp_path):
    """Issue 23's whole path on real runs: the smoke reproduction (its demo, MMMU and perf
    children real smoke runs) as a parent page with its children's pages, their figures and
    an index, on a git wiki (a local bare repository and its clone) and on a real MediaWiki
    (skipped where none is installed, saying how); the run folders are left as they were."""
    from kit.share.pages import plan_page

    from .mediawikiserver import missing, running
    from .test_share_git_wiki import digest, git

    before = digest(reproduced.outputs)
    bare, clone = tmp_path / "wiki.git", tmp_path / "wiki"
    git("init", "-q", "--bare", str(bare))
    git("clone", "-q", str(bare), str(clone))
    git("-C", str(clone), "config", "user.name", "Kit Test")
    git("-C", str(clone), "config", "user.email", "kit@example.invalid")
    shared = kit_in_process("share", str(reproduced.parent), "--git-wiki", str(clone))
    assert shared.returncode == 0, shared.stdout + shared.stderr
    planned = plan_page(reproduced.parent)
    assert len(planned.children) == len(reproduced.folders)  # a page per child run
    parent_page = clone / str(planned.path)
    links = re.findall(r"\]\(([^)#]+)\)", parent_page.read_text())
    for child in planned.children:
        assert (clone / str(child.path)).is_file()
        assert any(link.endswith(child.path.name) for link in links), child.path
    for link in links:
        assert (parent_page.parent / link).is_file(), link  # links work on the wiki
    assert list((clone / "vlm-kit").rglob("*.png")), "the runs' figures beside their pages"
    assert planned.name in (clone / "vlm-kit" / "index.md").read_text()
    assert git("--git-dir", str(bare), "log", "--oneline").strip()  # pushed

    reason = missing()
    if reason is None:
        with running(tmp_path / "mediawiki") as wiki:
            env = {"MEDIAWIKI_USER": wiki.user, "MEDIAWIKI_PASSWORD": wiki.password}
            env |= {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
            onto = kit_in_process("share", str(reproduced.parent), "--mediawiki", wiki.url, env=env)
            assert onto.returncode == 0, onto.stdout + onto.stderr
            found = wiki.api(action="query", list="allpages", aplimit="max")["query"]["allpages"]
            titles = [p["title"] for p in found]
            children = [t for t in titles if "/" in t]
            assert len(children) >= len(reproduced.folders), titles
            files = wiki.api(action="query", list="allimages", ailimit="max")["query"]
            assert files["allimages"], "the figures are uploaded as files"
    assert digest(reproduced.outputs) == before  # sharing never changes a run folder
    if reason is not None:
        pytest.skip(f"shared to the git wiki; MediaWiki {reason}")


def set_child(parent: Path, key: str, **values) -> None:
    data = json.loads((parent / "children.json").read_text())
    for child in data["children"]:
        if child["key"] == key:
            child.update(values)
    (parent / "children.json").write_text(json.dumps(data))


def test_resume_reruns_a_failed_notebook_child_in_its_folder(reproduced):
    """The MMMU child and the in-kernel model check are left unfinished (as a reproduction
    killed during them leaves them); the MMMU child then really fails on its rerun: one
    answer in its predictions.jsonl was edited, and its notebook refuses a recorded parse
    that differs from the scoring. With the answer restored, a second --resume reruns that
    child alone, in the same folder, from its saved answers (no engine), and the
    reproduction ends as it first did. Demo and perf are kept throughout."""
    parent, folders, before = reproduced.parent, reproduced.folders, reproduced.children
    mmmu_folder = folders["mmmu"]
    log = mmmu_folder / "predictions.jsonl"
    answers = log.read_bytes()
    lines = [json.loads(line) for line in answers.decode().split("\n") if line]
    edited = lines[0]["id"]
    log.write_text(
        "".join(json.dumps({**x, "parsed": "Z"} if x["id"] == edited else x) + "\n" for x in lines)
    )
    set_child(parent, "model", status="failed", error="made to look unfinished by the test")
    set_child(parent, "mmmu", status="interrupted", error="interrupted: the reproduction stopped")
    untouched = {
        k: (folders[k] / "results.json").stat().st_mtime_ns for k in ("demo", "perf:smoke-perf")
    }

    failing = kit_in_process("run", "reproduce", "--resume", str(parent), env=reproduced.env)
    assert failing.returncode == 1, failing.stdout[-3000:] + failing.stderr[-3000:]
    error = (
        "ParseMismatch: parsed answers in predictions.jsonl differ from the final scoring: "
        f"[{edited!r}]"
    )
    kids = children(parent)
    assert kids["model"]["status"] == "ok" and kids["model"]["attempts"] == 2
    assert kids["model"]["result"] == before["model"]["result"]
    mmmu = kids["mmmu"]
    assert (mmmu["status"], mmmu["error"], mmmu["attempts"]) == ("failed", error, 2)
    assert mmmu["folder"] == before["mmmu"]["folder"]  # rerun in place, no new folder
    child = json.loads((mmmu_folder / "results.json").read_text())
    assert (child["status"], child["error"]) == ("failed", error)  # the child's own record
    record = json.loads((parent / "results.json").read_text())
    assert record["status"] == "failed" and record["error"] == (
        "ChildrenFailed: 1 of 4 children did not finish: mmmu (failed). The report shows "
        "every section; rerun what is missing with python -m kit run reproduce --resume "
        f"{parent}"
    )
    for verdict in record["reproduce"]["verdicts"]:
        if verdict["section"] == "mmmu":  # no accuracy from a child that failed
            assert (verdict["verdict"], verdict["measured"]) == ("not measured", "–")
            assert verdict["why"] == f"child failed: {error}"

    log.write_bytes(answers)  # the fix
    again = kit_in_process("run", "reproduce", "--resume", str(parent), env=reproduced.env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    kids = children(parent)
    mmmu = kids["mmmu"]
    assert (mmmu["status"], mmmu["error"], mmmu["attempts"]) == ("ok", None, 3)
    assert mmmu["folder"] == before["mmmu"]["folder"]
    assert f"[reproduce] mmmu: running in {mmmu_folder}" in again.stdout
    for key in ("model", "demo", "perf:smoke-perf"):
        assert f"[reproduce] {key}: kept" in again.stdout, key
    for key in ("demo", "perf:smoke-perf"):
        assert kids[key] == before[key], key  # kept: same record, attempts 1
        assert (folders[key] / "results.json").stat().st_mtime_ns == untouched[key], key
    assert log.read_bytes() == answers  # every answer kept, none asked again
    child = json.loads((mmmu_folder / "results.json").read_text())
    assert child["status"] == "ok" and child["mmmu"]["timing"]["answered"] == 0
    assert (mmmu_folder / "mmmu.attempt-2.ipynb").is_file()  # both reruns ran its notebook
    assert (parent / "reproduce.attempt-2.ipynb").is_file()  # the parent resumed in place
    resumed = json.loads((parent / "results.json").read_text())
    assert resumed["status"] == "ok" and resumed["error"] is None
    assert resumed["reproduce"]["verdicts"] == reproduced.results["reproduce"]["verdicts"]
    assert sorted(p.name for p in reproduced.outputs.iterdir()) == sorted(
        [parent.name, *(f.name for f in folders.values()), "index.html"]
    )  # no new run folder
