"""MMMU notebook throughput and memory on the fixture and the tiny model (CPU is fine).

    .venv/bin/python benchmarks/mmmu_throughput.py [--limit 1] [--json out.json]

Three runs of ``python -m kit run mmmu -f params/smoke-mmmu.yaml``, each in its own process
with its own engine (N = 30 subjects x --limit questions):

    A  N questions,  batch_size 0 (chunks of chunk_size, batched by vLLM)
    B  N questions,  batch_size 1 (one question per llm.generate: the vendor's mode)
    C  4N questions, batch_size 0

and prints:
- the speed-up of batch_size 0 over 1 (A vs B), from the answering loop's wall time that
  the notebook records (results.json mmmu.timing.seconds: engine start-up excluded);
- the peak RSS ratio of C over A (target close to 1: images are decoded chunk by chunk and
  image bytes are read one subject at a time), sampled every 0.2 s, for the whole process
  tree (runner, notebook kernel, vLLM engine processes; shared pages counted in each
  process) and for the notebook kernel alone (the process that holds the questions and
  decodes the images).

A measuring script, not a test: figures depend on the machine and on its other load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
GIB = 1024**3


class PeakRss:
    """Samples the RSS of a process tree in a thread; keeps the peaks."""

    def __init__(self, pid: int, interval_s: float = 0.2):
        self.root = psutil.Process(pid)
        self.interval_s = interval_s
        self.tree = 0
        self.kernel = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    total += rss
                    if any("ipykernel" in part for part in proc.cmdline()):
                        self.kernel = max(self.kernel, rss)
                except psutil.Error:
                    continue
            self.tree = max(self.tree, total)
            self._stop.wait(self.interval_s)


def run(name: str, outputs: Path, limit: int, batch_size: int) -> dict:
    folder_root = outputs / name
    cmd = [
        sys.executable,
        "-m",
        "kit",
        "run",
        "mmmu",
        "-f",
        "params/smoke-mmmu.yaml",
        "-p",
        "limit",
        str(limit),
        "-p",
        "batch_size",
        str(batch_size),
        "-p",
        "gallery_size",
        "0",
    ]
    env = {**os.environ, "KIT_OUTPUTS_DIR": str(folder_root)}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    with PeakRss(proc.pid) as peak:
        log, _ = proc.communicate()
    total_s = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"run {name} failed (exit {proc.returncode}):\n{log[-3000:]}")
    (folder,) = [p for p in folder_root.iterdir() if p.is_dir()]  # not index.html
    mmmu = json.loads((folder / "results.json").read_text())["mmmu"]
    timing = mmmu["timing"]
    return {
        "run": name,
        "questions": mmmu["counts"]["questions"],
        "batch_size": batch_size,
        "answer_s": round(timing["seconds"], 2),
        "questions_per_s": round(timing["questions_per_s"], 3),
        "process_s": round(total_s, 1),
        "peak_tree_gib": round(peak.tree / GIB, 3),
        "peak_kernel_gib": round(peak.kernel / GIB, 3),
        "overall": mmmu["overall"]["acc"],
        "folder": str(folder),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1, help="questions per subject for N")
    parser.add_argument(
        "--repeat", type=int, default=1, help="A/B pairs, alternated; medians are reported"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args(argv)
    if not 1 <= args.limit <= 2:
        parser.error("--limit must be 1 or 2 (the fixture has 8 questions per subject, 4N <= 8)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mmmu-bench-") as tmp:
        outputs = Path(tmp)
        if args.keep:
            outputs = REPO / "outputs" / f"mmmu-bench-{time.strftime('%Y%m%d-%H%M%S')}"
        rows = []
        for i in range(1, args.repeat + 1):
            rows.append(run(f"A{i}-N-batch0", outputs, args.limit, 0))
            rows.append(run(f"B{i}-N-batch1", outputs, args.limit, 1))
        rows.append(run("C-4N-batch0", outputs, 4 * args.limit, 0))
    columns = list(rows[0])[:-1]
    print(" | ".join(columns))
    for r in rows:
        print(" | ".join(str(r[c]) for c in columns))
    a_rows = [r for r in rows if r["run"].startswith("A")]
    b_rows = [r for r in rows if r["run"].startswith("B")]
    c = rows[-1]
    a_s = statistics.median(r["answer_s"] for r in a_rows)
    b_s = statistics.median(r["answer_s"] for r in b_rows)
    a_tree = statistics.median(r["peak_tree_gib"] for r in a_rows)
    a_kernel = statistics.median(r["peak_kernel_gib"] for r in a_rows)
    figures = {
        "questions_N": a_rows[0]["questions"],
        "answer_s_batch0": a_s,
        "answer_s_batch1": b_s,
        "speedup_batch0_over_batch1": round(b_s / a_s, 2),
        "peak_rss_ratio_4N_over_N_tree": round(c["peak_tree_gib"] / a_tree, 3),
        "peak_rss_ratio_4N_over_N_kernel": round(c["peak_kernel_gib"] / a_kernel, 3),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(
        f"speed-up of batch_size 0 over 1 ({figures['questions_N']} questions, median of "
        f"{args.repeat}): {figures['speedup_batch0_over_batch1']}x "
        f"({a_s:.1f} s vs {b_s:.1f} s answering)"
    )
    print(
        f"peak RSS {c['questions']} vs {figures['questions_N']} questions: process tree "
        f"{figures['peak_rss_ratio_4N_over_N_tree']}x, notebook kernel "
        f"{figures['peak_rss_ratio_4N_over_N_kernel']}x"
    )
    print(
        f"load average (1/5/15 min) before {figures['load_average_before']}, after "
        f"{figures['load_average_after']}: other work on the machine skews the timings"
    )
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "figures": figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
