"""kit.records.manifest on hand-made folders: hashing, reading and writing, remote-code changes."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from kit.core.files import file_digest
from kit.records.manifest import (
    MANIFEST,
    RemoteCodeChanged,
    auto_map_modules,
    check_remote_code,
    local_files,
    read_manifest,
    remote_code,
    remote_code_changes,
    write_manifest,
)
from kit.runs.environment import model_provenance
from tests.hubserver import git_blob_sha1


@pytest.mark.parametrize(
    "data, blob_id",
    [  # ids as `git hash-object` prints them
        (b"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
        (b"hello\n", "ce013625030ba8dba906f756967f9e9ca394464a"),
    ],
)
def test_file_digest_matches_git_and_sha256(tmp_path, data, blob_id):
    path = tmp_path / "f"
    path.write_bytes(data)
    digest = file_digest(path, git_blob=True)
    assert digest.git_blob_sha1 == blob_id
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert file_digest(path).git_blob_sha1 is None  # not asked: not computed


def test_file_digest_reads_past_one_block(tmp_path):
    data = random.Random(1).randbytes(3 * 2**20 + 17)  # the helper reads 1 MiB blocks
    path = tmp_path / "big"
    path.write_bytes(data)
    digest = file_digest(path, git_blob=True)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.git_blob_sha1 == git_blob_sha1(data)


def test_manifest_round_trip_and_foreign_files(tmp_path):
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST).write_text("{not json")
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST).write_text(json.dumps({"name": "someone else's manifest"}))
    assert read_manifest(tmp_path) is None  # only the kit's own (kit_manifest) is read
    data = {"kit_manifest": 1, "kind": "model", "files": {"a.txt": {"size": 1}}}
    write_manifest(tmp_path, data)
    assert read_manifest(tmp_path) == data
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]  # no temporary file left
    provenance = model_provenance(str(tmp_path))
    assert provenance.download_manifest == {"kit_manifest": 1, "kind": "model"}


def test_local_files_skip_hidden_folders_and_the_manifest(tmp_path):
    for rel in ("b/c.py", "a.json", ".cache/huggingface/x", MANIFEST):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert local_files(tmp_path) == ["a.json", "b/c.py"]
    assert local_files(tmp_path / "absent") == []


def test_auto_map_modules_understands_repo_prefixes_and_lists(tmp_path):
    config = {
        "auto_map": {
            "AutoConfig": "configuration_x.XConfig",
            "AutoModel": "other/repo--sub.modeling_x.XModel",
            "AutoTokenizer": ["tokenization_x.XTokenizer", None],
        }
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert auto_map_modules(tmp_path) == {
        "configuration_x.py": ["config.json:AutoConfig"],
        "sub/modeling_x.py": ["config.json:AutoModel"],
        "tokenization_x.py": ["config.json:AutoTokenizer"],
    }


def _model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auto_map": {"AutoConfig": "conf.C"}}))
    (folder / "conf.py").write_text("C = 1\n")
    (folder / "gone.py").write_text("G = 1\n")
    write_manifest(folder, {"kit_manifest": 1, "kind": "model", "remote_code": remote_code(folder)})
    return folder


def test_remote_code_changes_names_each_kind_of_change(tmp_path):
    folder = _model_folder(tmp_path)
    assert remote_code_changes(folder) == []
    recorded = file_digest(folder / "conf.py").sha256
    (folder / "conf.py").write_text("import os\n")
    (folder / "gone.py").unlink()
    (folder / "new.py").write_text("N = 1\n")
    changes = {c["path"]: c for c in remote_code_changes(folder)}
    assert {p: c["change"] for p, c in changes.items()} == {
        "conf.py": "modified",
        "gone.py": "removed",
        "new.py": "added",
    }
    assert changes["conf.py"]["recorded_sha256"] == recorded
    assert changes["conf.py"]["sha256"] == file_digest(folder / "conf.py").sha256
    with pytest.raises(RemoteCodeChanged, match="modified: conf.py"):
        check_remote_code(folder)
    assert check_remote_code(folder, allow_changed=True) == remote_code_changes(folder)


def test_folders_without_a_model_manifest_are_not_judged(tmp_path):
    folder = _model_folder(tmp_path)
    (folder / "conf.py").write_text("import os\n")
    (folder / MANIFEST).unlink()
    assert remote_code_changes(folder) == [] and check_remote_code(folder) == []
    write_manifest(folder, {"kit_manifest": 1, "kind": "dataset", "files": {}})
    assert remote_code_changes(folder) == []
    assert remote_code_changes(tmp_path / "microsoft" / "Phi-3.5-vision-instruct") == []
