"""Pinned, verified snapshots of the model and of MMMU, from the Hugging Face Hub or ModelScope.

The vendor's instruction is "download everything at ModelScope LLM-Research/Phi-3.5-vision-instruct,
branch master, commit 1ce2adc1, into a folder Phi-3.5-vision-instruct". This module does that
with the sources' own clients (kit.hub_clients: huggingface_hub, modelscope_hub) and adds what
the instruction leaves to luck:

- the revision (branch, tag or commit) is resolved to the commit it points at, and every file
  is fetched at that commit;
- a folder that is already complete (its ``manifest.json`` matches the request and every file
  has its recorded size) is not fetched again, not even looked up online; files of the right
  size are kept, others are fetched again; progress is printed per file and overall;
- free disk space is checked against what is still to fetch before anything is written;
- after the download, sizes and hashes are checked against what the source publishes (LFS
  sha256 and git blob ids on the hub, Sha256 on ModelScope), the files a model needs are
  checked for (config, processor, tokenizer, every shard the index names, the Python modules
  ``auto_map`` names), and ``manifest.json`` records source, repo, revision, commit, every
  file's size and sha256, the Python files (vLLM executes them with trust_remote_code) and
  the time. kit.manifest reads and checks that manifest for everyone else: runs quote it in
  their results (kit.environment), the engine refuses a folder whose Python files changed;
- an unreachable source gives one clear message, including how to bring a copy from another
  machine and check it with ``python -m kit verify <folder>`` (:func:`verify_main`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from kit.core.progress import human_bytes
from kit.download.hub_clients import SOURCE_LABEL
from kit.records.manifest import MANIFEST, verify_folder


def verify_main(args) -> int:
    folder: Path = args.folder
    print(f"verifying {folder} ...", flush=True)
    report = verify_folder(folder)
    m = report.manifest or {}
    if m:
        print(
            f"{m.get('kind')} {m.get('repo_id')} from "
            f"{SOURCE_LABEL.get(m.get('source'), m.get('source'))}"
            f", revision {m.get('revision')} -> commit {m.get('commit')}, downloaded "
            f"{m.get('downloaded_at')}"
        )
        for entry in m.get("remote_code") or []:
            print(f"  python file {entry['path']}  sha256 {entry['sha256']}")
    if report.ok:
        size = human_bytes(report.bytes)
        print(f"OK: {report.files} files, {size}: sizes and sha256 match {MANIFEST}")
        return 0
    print(f"FAILED: {len(report.problems)} problem(s) in {folder}:", file=sys.stderr)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    print(
        "Fix: run the download notebook again for this folder (it keeps good files and fetches "
        "the others), or copy the folder again from a machine where it verifies.",
        file=sys.stderr,
    )
    return 1
