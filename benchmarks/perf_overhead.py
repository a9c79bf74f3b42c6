"""Does the kit's perf path cost throughput, and do its timings agree with vLLM's own?

Runs one workload (tiny model, CPU) three ways in one process and prints ratios:
1. the kit's timed path (``kit.perf.sweep.timed_generate``: exact-length prompts, length checks,
   per-request stats) vs a bare ``LLM.generate`` loop on the same kind of requests, output
   tokens/s, iterations interleaved so machine noise hits both alike (target >= 0.98);
2. the kit's mean TTFT / prefill / decode for its timed requests vs the deltas of vLLM's
   own Prometheus histograms (``llm.get_metrics()``) over the same requests (target: within 2%).

    .venv/bin/python benchmarks/perf_overhead.py [--input-len N --batch N --output N --iterations N]
"""

from __future__ import annotations

import argparse
import statistics
import time


def histogram_totals(llm, names: list[str]) -> dict[str, tuple[float, int]]:
    totals = {name: (0.0, 0) for name in names}
    for metric in llm.get_metrics():
        if metric.name in totals and hasattr(metric, "sum"):
            s, c = totals[metric.name]
            totals[metric.name] = (s + metric.sum, c + metric.count)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input-len", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--output", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()

    from kit.core.params import build
    from kit.engines.types import GenSampling
    from kit.perf.columns import standard_columns
    from kit.perf.params import PerfParams, plan_points, workload_builder
    from kit.perf.sweep import timed_generate

    params = build(
        PerfParams,
        {
            "model": "smoke",
            "input_len": args.input_len,
            "batch_size": args.batch,
            "max_output_len": args.output,
            "input_vision_shape": "336,336",
            "max_model_len": 4096,
        },
    )
    from kit.engines.offline import start_engine

    engine = start_engine(params.engine_params())
    builder = workload_builder(params, engine.model_path)
    plan_points(params, builder)
    sampling = engine.sampling_params(GenSampling.exact(args.output))

    def batch(seed: int):
        return builder.batch(args.input_len, args.batch, seed)

    timed_generate(engine, batch(1), 1, 0)  # warm-up

    names = [
        "vllm:time_to_first_token_seconds",
        "vllm:request_prefill_time_seconds",
        "vllm:request_decode_time_seconds",
    ]
    kit_runs, kit_tps, bare_tps = [], [], []
    kit_metric_sums = {name: [0.0, 0] for name in names}
    for i in range(args.iterations):
        before = histogram_totals(engine.llm, names)
        run, _ = timed_generate(engine, batch(100 + i), args.output, 0)
        after = histogram_totals(engine.llm, names)
        for name in names:
            kit_metric_sums[name][0] += after[name][0] - before[name][0]
            kit_metric_sums[name][1] += after[name][1] - before[name][1]
        kit_runs.append(run)
        kit_tps.append(run.tps)

        requests = [r.as_request().vllm_input() for r in batch(200 + i)]
        start = time.perf_counter()
        outputs = engine.llm.generate(requests, sampling, use_tqdm=False)
        wall = time.perf_counter() - start
        bare_tps.append(sum(len(o.outputs[0].token_ids) for o in outputs) / wall)

    kit_mean, bare_mean = statistics.mean(kit_tps), statistics.mean(bare_tps)
    print(
        f"workload: input_len {args.input_len}, batch {args.batch}, output {args.output}, "
        f"{args.iterations} interleaved iterations each"
    )
    print(f"kit path  tokens/s: {kit_mean:8.2f}  (per iteration {[round(x, 1) for x in kit_tps]})")
    print(
        f"bare loop tokens/s: {bare_mean:8.2f}  (per iteration {[round(x, 1) for x in bare_tps]})"
    )
    print(f"throughput ratio kit / bare: {kit_mean / bare_mean:.3f}  (target >= 0.98)")

    standard = standard_columns(kit_runs)
    pairs = {
        "TTFT": (standard.ttft_ms.mean, names[0]),
        "prefill": (standard.prefill_ms.mean, names[1]),
        "decode": (standard.decode_ms.mean, names[2]),
    }
    for label, (kit_value, name) in pairs.items():
        total, count = kit_metric_sums[name]
        vllm_value = 1000 * total / count if count else float("nan")
        print(
            f"{label:8s} mean: kit {kit_value:9.3f} ms, vLLM histogram {vllm_value:9.3f} ms "
            f"({count} requests), ratio {kit_value / vllm_value:.4f}  (target within 2%)"
        )


if __name__ == "__main__":
    main()
