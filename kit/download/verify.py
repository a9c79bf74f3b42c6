"""``python -m kit verify <folder>``: a downloaded or copied folder checked against its manifest.

Every file's size and sha256, the files a usable folder needs and the Python files vLLM would
execute are checked by kit.records.manifest, without network, so a folder brought from
another machine can be trusted like one downloaded here. Exit status 0 when everything
matches, 1 otherwise, with the problems and the fix on stderr.
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
            f"{SOURCE_LABEL.get(str(m.get('source')), m.get('source'))}"
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
