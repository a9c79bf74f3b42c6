"""Diff the results.json of two sets of runs, ignoring what differs between any two runs.

    python benchmarks/diff_runs.py OUTPUTS_BEFORE OUTPUTS_AFTER [--show N]

Each argument is an outputs folder (or a single run folder). Runs are paired by notebook
(and label); within a pair every field is compared except those that legitimately differ
from one run to the next: timings (``*_ms``, ``*_s``, throughput, timelines, spreads),
timestamps, process ids, paths and run-folder names, and versions (kit, git, packages,
vLLM). What is left must be equal: parameters, the engine's configuration, token counts,
generated text, answers and scores, verdicts. Prints one block per pair and exits 1 when
any pair differs; a field only one side has is shown as added or removed.

Used to show that a refactoring changed nothing a user sees (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

# Keys whose values are measurements, times, identities or versions.
VOLATILE_KEY = re.compile(
    r"""^(
        .*_ms | .*_s | .*_ms_max | .*_ms_per_token | .*_per_s | .*_per_iteration
      | tps | tps_.* | mean | median | p90 | p99 | iter_min | iter_max | iter_std
      | .*throughput | goodput | .*_at | timeline | per_iteration | samples | timing
      | process | engine_processes | stopped_processes | pid | host | create_time
      | path | _path | folder | predictions_file | dataset_path | manifest | link | run
      | kit_version | git | packages | python | platform | vllm_version | server_version
      | version_note | command | endpoint | cpu | cpu_count | memory_gib | error
      | ratios | decode_efficiency | prefill_efficiency | value | fetched_bytes
      | kept_files | fetched_files | seconds | duration\ \(s\) | run\ folder
      | kv_cache_blocks | kv_cache_tokens  # sized from the memory free when the engine starts
    )$""",
    re.VERBOSE,
)


def load_runs(root: Path) -> dict[str, dict[str, Any]]:
    """results.json documents under ``root`` by notebook (and label when several share one)."""
    files = [root / "results.json"] if (root / "results.json").is_file() else []
    files += sorted(root.glob("*/results.json"))
    runs: dict[str, dict[str, Any]] = {}
    for file in files:
        document = json.loads(file.read_text())
        key = document.get("notebook", "?")
        if key in runs:
            key = f"{key}:{document.get('label') or file.parent.name}"
        runs[key] = document
    return runs


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            if VOLATILE_KEY.match(str(key)):
                continue
            here = f"{where}.{key}" if where else str(key)
            if key not in after:
                out.append(f"removed {here}: {short(before[key])}")
            elif key not in before:
                out.append(f"added {here}: {short(after[key])}")
            else:
                out += differences(before[key], after[key], here)
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{where}: {len(before)} items -> {len(after)} items"]
        out = []
        for index, (a, b) in enumerate(zip(before, after, strict=True)):
            out += differences(a, b, f"{where}[{index}]")
        return out
    return [] if before == after else [f"{where}: {short(before)} -> {short(after)}"]


def short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--show", type=int, default=40, help="differences shown per pair")
    args = parser.parse_args()
    before, after = load_runs(args.before), load_runs(args.after)
    differ = False
    for key in sorted(set(before) | set(after)):
        if key not in before or key not in after:
            print(f"{key}: only in {'after' if key in after else 'before'}")
            differ = True
            continue
        found = differences(before[key], after[key])
        if not found:
            print(f"{key}: same (timings, timestamps, ids and versions ignored)")
            continue
        differ = True
        print(f"{key}: {len(found)} difference(s)")
        for line in found[: args.show]:
            print(f"  {line}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
