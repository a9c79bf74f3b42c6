"""The download notebook's code against a local stand-in for the Hub and ModelScope.

tests/hubserver.py serves small repositories on 127.0.0.1 and answers the requests the real
clients make (huggingface_hub, modelscope_hub), so everything below runs the real download
code: revision resolution, resume, skip when complete, verification, disk check, offline
message, remote-code check, and the notebook end to end through ``python -m kit run``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
from argparse import Namespace
from pathlib import Path

import pytest
import yaml

from kit.core.params import ParameterError
from kit.download import plan as download_plan
from kit.download import progress as download_progress
from kit.download.fetch import fetch_all
from kit.download.hub_clients import DownloadError, SourceUnreachable, VerificationFailed
from kit.download.params import PINNED_DATASET, DownloadParams
from kit.download.plan import NotEnoughDiskSpace
from kit.download.verify import verify_main
from kit.models.registry import NAMED_MODELS, hub_pin
from kit.records.download import DownloadResult
from kit.records.manifest import (
    RemoteCodeChanged,
    check_remote_code,
    local_files,
    read_manifest,
    verify_folder,
)
from tests.conftest import run_kit
from tests.hubserver import HubServer, read_folder

MODEL_ID = "kit-test/tiny-phi3v"
DATASET_ID = "kit-test/mmmu-mini"
SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"


@pytest.fixture(autouse=True)
def _isolated_clients(tmp_path, monkeypatch):
    """Client state (ModelScope credentials/session, progress interval) stays in tmp."""
    monkeypatch.setenv("MODELSCOPE_HOME", str(tmp_path / "modelscope-home"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "modelscope-cache"))
    monkeypatch.setattr(download_progress, "PROGRESS_INTERVAL_S", 0.0)


def _json(data: dict) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def model_repo(variant: str = "v2") -> dict[str, bytes]:
    """A Phi-3.5-vision-like layout: sharded weights + index, tokenizer, remote code."""
    shard1 = random.Random(variant).randbytes(60_000)
    shard2 = random.Random("same in every variant").randbytes(40_000)
    auto = {
        "AutoConfig": "configuration_phi3_v.Phi3VConfig",
        "AutoModelForCausalLM": "modeling_phi3_v.Phi3VForCausalLM",
    }
    files = {
        "config.json": _json(
            {"architectures": ["Phi3VForCausalLM"], "auto_map": auto, "v": variant}
        ),
        "configuration_phi3_v.py": b"# configuration\nCONFIG = 1\n",
        "modeling_phi3_v.py": b"# modeling\nMODEL = 1\n",
        "processing_phi3_v.py": f"# processing {variant}\nPROC = 1\n".encode(),
        "preprocessor_config.json": _json(
            {"auto_map": {"AutoProcessor": "processing_phi3_v.Phi3VProcessor"}, "num_crops": 4}
        ),
        "tokenizer_config.json": _json({"tokenizer_class": "PreTrainedTokenizerFast"}),
        "tokenizer.json": _json({"model": {"vocab": {"a": 0}}, "pad": "x" * 3000}),
        "generation_config.json": _json({"eos_token_id": 2}),
        "model.safetensors.index.json": _json(
            {"metadata": {}, "weight_map": {"a.weight": SHARD1, "b.weight": SHARD2}}
        ),
        SHARD1: shard1,
        SHARD2: shard2,
        "README.md": b"# tiny\n",
    }
    if variant == "v1":
        files["OLD-NOTES.md"] = b"only in the older commit\n"
    return files


@pytest.fixture(scope="session")
def mmmu_files(tmp_path_factory) -> dict[str, bytes]:
    from kit.mmmu.fixture import write_fixture

    folder = tmp_path_factory.mktemp("mmmu-src")
    for split in ("validation", "dev"):
        write_fixture(folder, subjects=("Art", "Math"), per_subject=2, split=split)
    files = read_folder(folder)
    files["README.md"] = b"# MMMU mini\n"
    return files


@pytest.fixture
def hub():
    with HubServer() as server:
        server.old_commit = server.add_repo(MODEL_ID, "model", model_repo("v1"))
        server.new_commit = server.add_repo(MODEL_ID, "model", model_repo("v2"))
        yield server


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def params(hub_url: str, folder: Path, source: str = "huggingface", **kw) -> DownloadParams:
    values = dict(
        source=source,
        model_id=MODEL_ID,
        revision="main" if source == "huggingface" else "master",
        model_dir=str(folder),
        what="model",
        endpoint=hub_url,
    )
    values.update(kw)
    p = DownloadParams(**values)
    p.check()
    return p


def run(p: DownloadParams, verify: bool = True) -> list[DownloadResult]:
    lines: list[str] = []
    results = fetch_all(p.plans(), verify=verify, out=lines.append)
    run.lines = lines
    return results


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------
def test_defaults_are_the_pinned_snapshots():
    (model, dataset) = DownloadParams().targets()
    assert (model.repo_id, model.revision) == (
        "microsoft/Phi-3.5-vision-instruct",
        "4a0d683eba9f1d0cbfb6151705d1ee73c25a80ca",  # the commit transformers caches record
    )
    assert (dataset.repo_id, dataset.revision, dataset.splits) == (
        "MMMU/MMMU",
        PINNED_DATASET["huggingface"],
        ["validation"],
    )
    ms = DownloadParams(source="modelscope", what="model")
    ms.check()
    (target,) = ms.targets()
    assert (target.repo_id, target.revision) == ("LLM-Research/Phi-3.5-vision-instruct", "1ce2adc1")
    assert target.folder.name == "Phi-3.5-vision-instruct"


PINNED_FILES = sorted(Path("params").glob("download-*-hf.yaml"))


def test_every_checkpoint_a_kit_model_mirrors_is_pinned_and_has_its_download_file():
    mirrored = {m.mirrors: m.mirrors_revision for m in NAMED_MODELS.values() if m.mirrors}
    assert "Qwen/Qwen2-VL-7B-Instruct" in mirrored and len(mirrored) >= 7
    files = {yaml.safe_load(f.read_text()).get("model_id"): f for f in PINNED_FILES}
    for repo_id, commit in mirrored.items():
        (target,) = DownloadParams(model_id=repo_id, what="model").targets()
        if not commit:  # no commit known: the default branch, resolved and recorded
            assert target.revision == "main", repo_id
            continue
        assert len(commit) == 40 and int(commit, 16) >= 0, repo_id
        assert target.revision == commit, repo_id
        assert repo_id in files or repo_id == "microsoft/Phi-3.5-vision-instruct", repo_id
    (other,) = DownloadParams(model_id="someone/else", what="model").targets()
    assert other.revision == "main"  # unknown to the kit: the default branch, recorded


@pytest.mark.parametrize("file", PINNED_FILES, ids=lambda f: f.stem)
def test_a_pinned_download_file_fetches_its_commit_from_the_hub(tmp_path, file):
    """As a user runs it (model_id from the file, no revision): the pinned commit, not the
    branch's newest, is what lands in the folder and its manifest."""
    values = yaml.safe_load(file.read_text())
    with HubServer() as hub:
        pinned = hub.add_repo(
            values["model_id"], "model", model_repo("v1"), commit=hub_pin(values["model_id"])
        )
        hub.add_repo(values["model_id"], "model", model_repo("v2"))  # main moved on since
        p = DownloadParams(**{**values, "model_dir": str(tmp_path / "m"), "endpoint": hub.url})
        p.check()
        (result,) = run(p)
    assert result.commit == pinned == hub_pin(values["model_id"])
    assert json.loads((tmp_path / "m" / "config.json").read_text())["v"] == "v1"


@pytest.mark.parametrize(
    "values, word",
    [
        ({"source": "github"}, "source"),
        ({"what": "weights"}, "what"),
        ({"dataset_splits": ["train"]}, "dataset_splits"),
        ({"model_dir": "same", "dataset_dir": "same"}, "same folder"),
        ({"endpoint": "hf-mirror.com"}, "endpoint"),
    ],
)
def test_bad_parameters_are_named(values, word):
    with pytest.raises(ParameterError, match=word):
        DownloadParams(**values).check()


# ------------------------------------------------------------------------------------------
# Hugging Face Hub
# ------------------------------------------------------------------------------------------
def test_full_download_resolves_revision_and_writes_manifest(hub, tmp_path):
    folder = tmp_path / "Phi-3.5-vision-instruct"
    (result,) = run(params(hub.url, folder))
    expected = model_repo("v2")
    assert result.commit == hub.new_commit and len(result.commit) == 40
    assert result.fetched_files == len(expected) and result.verified
    assert {p: (folder / p).read_bytes() for p in expected} == expected
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"] == "huggingface" and manifest["repo_id"] == MODEL_ID
    assert (manifest["revision"], manifest["commit"]) == ("main", hub.new_commit)
    assert manifest["endpoint"] == hub.url and manifest["downloaded_at"]
    for path, data in expected.items():
        entry = manifest["files"][path]
        assert (entry["size"], entry["sha256"], entry["checked"]) == (len(data), sha256(data), True)
    assert manifest["files"][SHARD1]["published"] == "sha256"  # LFS: the hub publishes sha256
    assert manifest["files"]["config.json"]["published"] == "git-blob-sha1"
    code = {e["path"]: e for e in manifest["remote_code"]}
    assert set(code) == {"configuration_phi3_v.py", "modeling_phi3_v.py", "processing_phi3_v.py"}
    assert code["processing_phi3_v.py"]["sha256"] == sha256(expected["processing_phi3_v.py"])
    assert "AutoProcessor" in code["processing_phi3_v.py"]["named_by"]
    assert any("resolved to commit" in note for note in result.notes)  # "main" is a branch
    assert any("overall" in line for line in run.lines)  # overall progress was printed
    # later runs copy the manifest (without the per-file list) into results' environment
    from kit.runs.environment import model_provenance

    provenance = model_provenance(str(folder)).download_manifest
    assert provenance["commit"] == hub.new_commit and "files" not in provenance
    assert verify_folder(folder).ok


def test_pinned_commit_fetches_that_commit(hub, tmp_path):
    folder = tmp_path / "old"
    (result,) = run(params(hub.url, folder, revision=hub.old_commit))
    assert result.commit == hub.old_commit and result.notes == []
    assert json.loads((folder / "config.json").read_text())["v"] == "v1"
    gets = hub.file_gets()
    assert gets and all(f"/resolve/{hub.old_commit}/" in r.path for r in gets)


def test_another_revision_in_the_same_folder_fetches_only_what_changed(hub, tmp_path):
    folder = tmp_path / "m"
    run(params(hub.url, folder, revision=hub.old_commit))
    assert (folder / "OLD-NOTES.md").exists()
    hub.clear_log()
    (result,) = run(params(hub.url, folder, revision="main"))
    fetched = {r.path.rsplit("/", 1)[-1] for r in hub.file_gets()}
    assert SHARD2 not in fetched and SHARD1 in fetched  # same published sha256: kept
    assert not (folder / "OLD-NOTES.md").exists()  # only in the older commit: removed
    assert result.commit == hub.new_commit
    assert read_manifest(folder)["file_count"] == len(model_repo("v2"))
    assert verify_folder(folder).ok


def test_complete_folder_is_not_fetched_again_even_offline(hub, tmp_path):
    folder = tmp_path / "m"
    run(params(hub.url, folder))
    hub.clear_log()
    (plan,) = params(hub.url, folder).plans()
    assert plan.complete
    (result,) = run(params(hub.url, folder))
    assert result.fetched_files == 0 and result.commit == hub.new_commit
    assert hub.requests == []  # not even a lookup
    # the source unreachable: a complete folder still passes preflight and the notebook
    offline = params(closed_port_url(), folder)
    offline.preflight()
    (result,) = run(offline)
    assert result.fetched_files == 0 and result.verified


def test_truncated_file_is_fetched_again_alone(hub, tmp_path):
    folder = tmp_path / "m"
    run(params(hub.url, folder))
    shard = folder / SHARD1
    shard.write_bytes(shard.read_bytes()[:25_000])  # an interrupted copy or download
    (folder / "manifest.json").unlink()  # the run stopped before writing it
    hub.clear_log()
    (plan,) = params(hub.url, folder).plans()
    assert [f.path for f in plan.to_fetch] == [SHARD1]
    (result,) = run(params(hub.url, folder))
    assert [r.path.rsplit("/", 1)[-1] for r in hub.file_gets()] == [SHARD1]
    assert result.fetched_files == 1 and result.kept_files == len(model_repo()) - 1
    assert shard.read_bytes() == model_repo("v2")[SHARD1]
    assert any("already complete" in line for line in run.lines)
    assert verify_folder(folder).ok


def test_dropped_connection_is_retried_within_the_run(hub, tmp_path):
    hub.drop_after[SHARD1] = 20_000  # the connection drops after 20 kB, once
    folder = tmp_path / "m"
    (result,) = run(params(hub.url, folder))
    # huggingface_hub retries and resumes with a Range request from the last whole 10 MB
    # chunk it wrote: here that is byte 0, so the second request has no Range.
    assert len(hub.file_gets(SHARD1)) == 2
    assert (folder / SHARD1).read_bytes() == model_repo("v2")[SHARD1] and result.verified


def test_corrupted_download_fails_verification(hub, tmp_path):
    hub.corrupt.add(SHARD2)  # served bytes differ from the published sha256
    folder = tmp_path / "m"
    with pytest.raises(VerificationFailed, match=SHARD2) as err:
        run(params(hub.url, folder))
    assert "sha256" in str(err.value)
    assert len(hub.file_gets(SHARD2)) == 2  # fetched again once before giving up
    assert not (folder / SHARD2).exists() and not (folder / "manifest.json").exists()
    assert err.value._render_traceback_()[0].startswith("VerificationFailed: ")


def test_verify_command_detects_changed_files(hub, tmp_path, capsys):
    folder = tmp_path / "m"
    run(params(hub.url, folder))
    assert verify_main(Namespace(folder=folder)) == 0
    assert "OK: 12 files" in capsys.readouterr().out
    shard = folder / SHARD2
    data = bytearray(shard.read_bytes())
    data[100] ^= 1  # same size, different content
    shard.write_bytes(bytes(data))
    assert verify_main(Namespace(folder=folder)) == 1
    assert f"{SHARD2}: sha256 differs" in capsys.readouterr().err
    # the download notebook repairs it: the complete folder's hash check finds it
    hub.clear_log()
    (result,) = run(params(hub.url, folder))
    assert [r.path.rsplit("/", 1)[-1] for r in hub.file_gets()] == [SHARD2]
    assert verify_folder(folder).ok
    # as typed on the command line
    done = run_kit("verify", str(folder), timeout=120)
    assert done.returncode == 0 and "commit " + hub.new_commit in done.stdout
    (folder / SHARD1).unlink()
    done = run_kit("verify", str(folder), timeout=120)
    assert done.returncode == 1 and f"{SHARD1}: missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_folder_without_manifest_does_not_verify(tmp_path):
    folder = tmp_path / "copied"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    report = verify_folder(folder)
    assert not report.ok and "no manifest.json" in report.problems[0]
    assert any("tokenizer" in p for p in report.problems)


def test_unreachable_source_gives_a_clear_message(tmp_path):
    url = closed_port_url()
    p = params(url, tmp_path / "Phi-3.5-vision-instruct")
    with pytest.raises(SourceUnreachable) as err:
        p.preflight()
    message = str(err.value)
    assert url in message and "Hugging Face Hub" in message
    assert "python -m kit verify" in message and "manifest.json included" in message
    assert f"-p model_id {MODEL_ID}" in message
    # through the CLI: refused in preflight, exit code 2, no stack trace, nothing written
    done = run_kit(
        "run", "download", "-p", "endpoint", url, "-p", "what", "model",
        "-p", "model_dir", str(tmp_path / "m"),
        env={"KIT_OUTPUTS_DIR": str(tmp_path / "outputs")}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Could not look up the Hugging Face Hub" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "m").exists()


def test_not_enough_disk_space_is_refused_before_fetching(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(download_plan, "free_bytes", lambda folder: 10_000_000)
    with pytest.raises(NotEnoughDiskSpace, match="model_dir") as err:
        params(hub.url, tmp_path / "m").plans()
    assert "10.00 MB free" in str(err.value)
    assert hub.file_gets() == [] and not (tmp_path / "m").exists()


def test_missing_shard_named_by_the_index_fails(tmp_path):
    files = model_repo()
    del files[SHARD2]
    with HubServer() as server:
        server.add_repo(MODEL_ID, "model", files)
        with pytest.raises(VerificationFailed, match=f"weight shard {SHARD2}"):
            run(params(server.url, tmp_path / "m"))


def test_unknown_revision_and_repo(hub, tmp_path):
    with pytest.raises(DownloadError, match="does not exist"):
        params(hub.url, tmp_path / "m", revision="no-such-branch").plans()
    with pytest.raises(DownloadError, match="was not found"):
        params(hub.url, tmp_path / "m", model_id="kit-test/nothing").plans()


def test_dataset_fetches_only_the_requested_splits(mmmu_files, tmp_path):
    folder = tmp_path / "MMMU"
    with HubServer() as server:
        commit = server.add_repo(DATASET_ID, "dataset", mmmu_files)
        p = params(server.url, folder, what="dataset", dataset_id=DATASET_ID,
                   dataset_revision="main", dataset_dir=str(folder))  # fmt: skip
        (result,) = run(p)
        assert result.commit == commit
        assert local_files(folder) == [
            "Art/validation-00000-of-00001.parquet",
            "Math/validation-00000-of-00001.parquet",
            "README.md",
        ]
        from kit.mmmu.dataset import load_split

        assert len(load_split(folder, "validation", subjects=["Art", "Math"])) == 4
        server.clear_log()
        p.dataset_splits = ["validation", "dev"]
        (result,) = run(p)
        fetched = sorted(
            r.path.split("/resolve/", 1)[1].split("/", 1)[1] for r in server.file_gets()
        )
        assert fetched == ["Art/dev-00000-of-00001.parquet", "Math/dev-00000-of-00001.parquet"]
        assert result.fetched_files == 2
        manifest = read_manifest(folder)
        assert manifest["splits"] == ["dev", "validation"] and manifest["file_count"] == 5
        assert verify_folder(folder).ok


# ------------------------------------------------------------------------------------------
# Remote code (trust_remote_code) check for the engine's preflight
# ------------------------------------------------------------------------------------------
def test_check_remote_code(hub, tmp_path, smoke_model):
    folder = tmp_path / "m"
    run(params(hub.url, folder))
    assert check_remote_code(folder) == []
    (folder / "processing_phi3_v.py").write_text("import os  # changed\n")
    (folder / "extra.py").write_text("print('hi')\n")
    with pytest.raises(RemoteCodeChanged) as err:
        check_remote_code(folder)
    assert "modified: processing_phi3_v.py" in str(err.value)
    assert "added: extra.py" in str(err.value)
    assert "allow_changed_remote_code" in str(err.value)
    changes = check_remote_code(folder, allow_changed=True)
    assert {c["change"] for c in changes} == {"modified", "added"}
    assert not verify_folder(folder).ok
    # folders without a download manifest (the embedded tiny model) are not judged
    assert check_remote_code(smoke_model) == []


# ------------------------------------------------------------------------------------------
# ModelScope (modelscope_hub pointed at the same local server with its endpoint setting)
# ------------------------------------------------------------------------------------------
def test_modelscope_download_records_the_resolved_commit(hub, tmp_path):
    hub.repos[("model", MODEL_ID)].refs["master"] = hub.new_commit
    folder = tmp_path / "ms"
    (result,) = run(params(hub.url, folder, source="modelscope", revision=hub.old_commit[:8]))
    assert result.commit == hub.old_commit  # a short commit, as the vendor gave it
    manifest = read_manifest(folder)
    assert (manifest["source"], manifest["revision"]) == ("modelscope", hub.old_commit[:8])
    assert manifest["files"][SHARD1]["published"] == "sha256"
    assert json.loads((folder / "config.json").read_text())["v"] == "v1"
    assert all(r.query["Revision"] == hub.old_commit for r in hub.file_gets())
    assert verify_folder(folder).ok
    hub.clear_log()
    (result,) = run(params(hub.url, folder, source="modelscope", revision=hub.old_commit[:8]))
    assert result.fetched_files == 0 and hub.requests == []


def test_modelscope_resumes_a_partial_file(hub, tmp_path):
    hub.repos[("model", MODEL_ID)].refs["master"] = hub.new_commit
    folder = tmp_path / "ms"
    folder.mkdir()
    data = model_repo("v2")[SHARD1]
    (folder / f"{SHARD1}.incomplete").write_bytes(data[:30_000])  # left by an interrupted run
    run(params(hub.url, folder, source="modelscope"))
    assert [r.range for r in hub.file_gets(SHARD1)] == ["bytes=30000-"]
    assert (folder / SHARD1).read_bytes() == data


def test_modelscope_corrupted_file_fails(hub, tmp_path, monkeypatch):
    import modelscope_hub._download as ms_download

    monkeypatch.setattr(ms_download, "DOWNLOAD_INTEGRITY_RETRY_BACKOFF", 0.01)
    hub.repos[("model", MODEL_ID)].refs["master"] = hub.new_commit
    hub.corrupt.add(SHARD2)
    with pytest.raises(VerificationFailed, match="sha256|size"):
        run(params(hub.url, tmp_path / "ms", source="modelscope"))
    assert not (tmp_path / "ms" / SHARD2).exists()


def test_modelscope_dataset_splits(mmmu_files, tmp_path):
    folder = tmp_path / "MMMU"
    with HubServer() as server:
        commit = server.add_repo(DATASET_ID, "dataset", mmmu_files, branch="master")
        p = params(server.url, folder, source="modelscope", what="dataset",
                   dataset_id=DATASET_ID, dataset_dir=str(folder))  # fmt: skip
        (result,) = run(p)
    assert result.commit == commit
    assert any("resolved to commit" in n for n in result.notes)  # master is not a pin
    assert local_files(folder) == [
        "Art/validation-00000-of-00001.parquet",
        "Math/validation-00000-of-00001.parquet",
        "README.md",
    ]
    assert verify_folder(folder).ok


def test_modelscope_unreachable(tmp_path):
    p = params(closed_port_url(), tmp_path / "ms", source="modelscope")
    with pytest.raises(SourceUnreachable, match="Could not look up ModelScope"):
        p.preflight()


# ------------------------------------------------------------------------------------------
# The notebook, end to end
# ------------------------------------------------------------------------------------------
def test_notebook_downloads_model_and_dataset(hub, mmmu_files, tmp_path):
    dataset_commit = hub.add_repo(DATASET_ID, "dataset", mmmu_files)
    outputs = tmp_path / "outputs"
    done = run_kit(
        "run", "download", "-p", "endpoint", hub.url,
        "-p", "model_id", MODEL_ID, "-p", "revision", "main",
        "-p", "model_dir", str(tmp_path / "model"),
        "-p", "dataset_id", DATASET_ID, "-p", "dataset_revision", "main",
        "-p", "dataset_dir", str(tmp_path / "data"),
        env={"KIT_OUTPUTS_DIR": str(outputs), "KIT_PROGRESS_INTERVAL": "0"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("run folder: ")]
    folder = Path(line.split(": ", 1)[1])
    assert folder.parent == outputs
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "ok"
    records = {r["kind"]: r for r in results["download"]}
    assert records["model"]["commit"] == hub.new_commit
    assert records["dataset"]["commit"] == dataset_commit
    manifest = results["environment"]["model"]["download_manifest"]
    assert manifest["commit"] == hub.new_commit and manifest["revision"] == "main"
    html = (folder / "report.html").read_text()
    assert "processing_phi3_v.py" in html and hub.new_commit in html
    assert "overall" in (folder / "download.ipynb").read_text()  # progress lines
    assert os.path.isfile(tmp_path / "data" / "Art" / "validation-00000-of-00001.parquet")
