"""Does the kit's server client measure what vLLM's own serving benchmark measures?

Starts ONE vLLM server with the kit's own code (``kit.engines.served.start_server_backend``, tiny
model, CPU is fine) and sends it the same workload two ways, rounds interleaved (kit, vLLM,
vLLM, kit, ...: the side that goes first alternates) so machine noise hits both alike:

* the kit: ``kit.perf.sweep.timed_generate`` over ``backend: server`` (streamed chat completions,
  at most ``--concurrency`` in flight, all sent at once), as the perf notebook's load points;
* vLLM: ``vllm.benchmarks.serve.main`` (what ``vllm bench serve`` runs) with
  ``--backend openai-chat --dataset-name random-mm``, one 336x336 image per request.

Both sides send the same request body: temperature 0, ignore_eos and min_tokens for exactly
``--output`` tokens, and the per-request ``mm_processor_kwargs`` the kit's requests carry
(none for the perf workload: the server runs with the run's ``num_crops``, 1 here).

The kit's prompts are exactly ``input_len`` tokens including the chat template and the
image tokens; vLLM's random-mm prompts are ``--input`` text tokens less the tokenizer's
special tokens, plus the template and the image. The kit's ``input_len`` is therefore the
same text length plus what its template and image take; both sides' prompt lengths as the
server counted them (``usage.prompt_tokens``) are printed. Known differences: the kit's
images are PNG drawings, vLLM's are JPEG noise (decode cost differs slightly); vLLM counts
TTFT from its first streamed chunk (the role chunk, which the server writes just before the
first token's), the kit from the first content chunk.

Prints per-round and mean output throughput (tokens/s) and mean TTFT, and the ratios:
output throughput kit / vLLM (target >= 0.98) and mean TTFT kit / vLLM (target within 5%);
definitions in docs/methodology.md (section 10). Beside them, the server's own mean TTFT
(``vllm:time_to_first_token_seconds``, read around every round) tells a difference of the
clients from a difference of what the server went through, and client / server TTFT of one
side over the other's compares the two clients with the machine's noise cancelled.

A measuring script, not a test: figures depend on the machine and its other load (the load
average is printed).

    .venv/bin/python benchmarks/server_client.py [--input 256 --output 32 --requests 8
        --concurrency 4 --rounds 3 --seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SERVER_BREAKDOWN = ("queue_ms", "prefill_ms", "decode_ms", "e2e_ms")  # kit.engines.prometheus keys
VISION_SHAPE = (336, 336)  # (H, W): one image per request on both sides
NUM_CROPS = 1  # the server's; the kit's perf requests carry none of their own


@dataclass
class Round:
    """One round of one side, as that side measured it."""

    side: str
    output_throughput: float  # output tokens / s of the round's wall time
    mean_ttft_ms: float
    completed: int
    requests: int
    prompt_tokens: list[int]  # per request, as the server counted them
    server: dict[str, float | None]  # the server's own histogram means (ms), same requests

    @property
    def server_ttft_ms(self) -> float | None:
        return self.server.get("ttft_ms")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=int, default=256, help="vLLM's --random-input-len")
    parser.add_argument("--output", type=int, default=32, help="output tokens per request")
    parser.add_argument("--requests", type=int, default=8, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at most")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kit-input-len",
        type=int,
        default=None,
        help="the kit's prompt length (default: the server-counted length of vLLM's prompts)",
    )
    return parser.parse_args()


def perf_params(args: argparse.Namespace, input_len: int):
    from kit.core.params import build
    from kit.perf.params import PerfParams

    return build(
        PerfParams,
        {
            "model": "smoke",
            "backend": "server",
            "max_model_len": 4096,
            "input_len": input_len,
            "max_output_len": args.output,
            "input_vision_shape": ",".join(map(str, VISION_SHAPE)),
            "num_crops": NUM_CROPS,
            "concurrency": [args.concurrency],
            "num_requests": args.requests,
            "gpu_memory_utilization": 0.1,
            "seed": args.seed,
        },
    )


# ----------------------------------------------------------------------------------------
# The kit's side
# ----------------------------------------------------------------------------------------


def kit_prompt_len(builder, random_input_len: int) -> int:
    """The kit's input_len for vLLM's random-mm prompt of ``random_input_len``: its text
    (less the tokenizer's special tokens, as vLLM samples it) plus the chat template and
    image tokens around it. Not ``builder.min_tokens - 1``: the first filler word, right
    after the template's newline, can take two tokens."""
    special = builder.counter.tokenizer.num_special_tokens_to_add()
    empty = builder.family.prompt("", len(builder.vision_shapes))
    return random_input_len - special + builder.counter.text_tokens(empty) + builder.image_tokens


def kit_round(backend, builder, params, planned, input_len: int, size: int, seed: int) -> Round:
    """``size`` requests through the kit's timed path, as a perf load point sends them."""
    from kit.perf.sweep import point_load, timed_generate

    point = dataclasses.replace(planned, batch_size=size)
    requests = builder.batch(input_len, size, seed)
    load = point_load(params, point, seed)
    measurement, batch = timed_generate(backend, requests, params.max_output_len[0], seed, load)
    ttfts = [c.timing.ttft_s for c in batch.completions if c.timing.ttft_s is not None]
    return Round(
        side="kit",
        output_throughput=measurement.tps,
        mean_ttft_ms=1000 * statistics.mean(ttfts),
        completed=sum(c.error is None for c in batch.completions),
        requests=size,
        prompt_tokens=[c.prompt_tokens or 0 for c in batch.completions],
        server={key: value["mean_ms"] for key, value in (batch.server or {}).items()},
    )


# ----------------------------------------------------------------------------------------
# vLLM's side
# ----------------------------------------------------------------------------------------


def bench_parser():
    """``vllm bench serve``'s own argument parser."""
    from vllm.benchmarks.serve import add_cli_args

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # older vLLM
        from vllm.utils import FlexibleArgumentParser
    parser = FlexibleArgumentParser(prog="vllm bench serve")
    add_cli_args(parser)
    return parser


def bench_argv(
    args: argparse.Namespace, backend, size: int, seed: int, result_dir: Path, same_body: dict
) -> list[str]:
    """The command line of ``vllm bench serve`` for one round against the kit's server;
    ``same_body``: what else the kit's requests carry (min_tokens, mm_processor_kwargs)."""
    height, width = VISION_SHAPE
    return [
        "--backend", "openai-chat",
        "--endpoint", "/v1/chat/completions",
        "--base-url", backend.base_url,
        "--model", backend.model,
        "--tokenizer", backend.model_path,
        "--trust-remote-code",
        "--dataset-name", "random-mm",
        "--random-input-len", str(args.input),
        "--random-output-len", str(args.output),
        "--random-range-ratio", "0",
        "--random-mm-base-items-per-request", "1",
        "--random-mm-num-mm-items-range-ratio", "0",
        "--random-mm-limit-mm-per-prompt", json.dumps({"image": 1}),
        "--random-mm-bucket-config", repr({(height, width, 1): 1.0}),
        "--num-prompts", str(size),
        "--max-concurrency", str(args.concurrency),
        "--request-rate", "inf",
        "--ignore-eos",
        "--temperature", "0",
        "--extra-body", json.dumps(same_body),
        "--seed", str(seed),
        "--disable-tqdm",
        "--save-detailed",  # keeps input_lens (the server's usage.prompt_tokens) in the result
        "--result-dir", str(result_dir),
    ]  # fmt: skip


def vllm_round(backend, argv: list[str], size: int, log: Path) -> Round:
    """One ``vllm bench serve`` run in this process (its own event loop, main thread);
    what it prints goes to ``log``. The server's histograms are read around it, as the
    kit's server backend reads them around each of its batches."""
    from vllm.benchmarks.serve import main as bench_main

    from kit.engines.openai_client import scrape_metrics
    from kit.engines.prometheus import server_latencies

    options = bench_parser().parse_args(argv)
    before = scrape_metrics(backend.base_url, backend.api_key)
    with log.open("a") as out, contextlib.redirect_stdout(out):
        result = bench_main(options)
    after = scrape_metrics(backend.base_url, backend.api_key)
    server = {}
    if before is not None and after is not None:
        server = {key: value.mean_ms for key, value in server_latencies(before, after).items()}
    ttfts = [t for t, e in zip(result["ttfts"], result["errors"], strict=True) if not e]
    if result["completed"] != size or not ttfts:
        raise RuntimeError(
            f"vllm bench serve completed {result['completed']} of {size} requests; "
            f"first error: {next((e for e in result['errors'] if e), None)} (see {log})"
        )
    return Round(
        side="vLLM",
        output_throughput=result["output_throughput"],
        mean_ttft_ms=result["mean_ttft_ms"],
        completed=result["completed"],
        requests=size,
        prompt_tokens=list(result["input_lens"]),
        server=server,
    )


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def spread(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def ratio_line(label: str, kit: float, vllm: float, target: str, met: bool) -> str:
    verdict = "met" if met else "NOT met"
    return f"{label} kit / vLLM: {kit / vllm:.2f}x (target {target}: {verdict})"


def mean_of(rounds: list[Round], name: str) -> float | None:
    values = [getattr(r, name) for r in rounds]
    return None if None in values else statistics.mean(values)


def shown(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def server_breakdown(group: list[Round]) -> str:
    """Where the server's time went for one side's requests (queue, prefill, decode)."""
    means = {
        key: statistics.mean(r.server[key] for r in group)
        for key in SERVER_BREAKDOWN
        if all(r.server.get(key) is not None for r in group)
    }
    return ", ".join(f"{key.removesuffix('_ms')} {value:.1f}" for key, value in means.items())


def report(rounds: list[tuple[int, Round]], args: argparse.Namespace, kit_input_len: int) -> None:
    kit = [r for _, r in rounds if r.side == "kit"]
    vllm = [r for _, r in rounds if r.side == "vLLM"]
    print(
        f"\nworkload: random-mm input {args.input} text tokens (kit input_len {kit_input_len} "
        f"incl. template and image), one {VISION_SHAPE[0]}x{VISION_SHAPE[1]} image, "
        f"output {args.output}, {args.requests} requests at concurrency {args.concurrency}, "
        f"{args.rounds} interleaved rounds each"
    )
    print(
        "prompt tokens as the server counted them (usage.prompt_tokens): "
        f"kit {spread([n for r in kit for n in r.prompt_tokens])}, "
        f"vLLM {spread([n for r in vllm for n in r.prompt_tokens])}"
    )
    header = ("round", "side", "output tok/s", "mean TTFT ms", "server TTFT ms", "completed")
    print("{:>5} {:>5} {:>13} {:>13} {:>15} {:>10}".format(*header))
    for number, r in rounds:
        print(
            f"{number:>5} {r.side:>5} {r.output_throughput:>13.2f} {r.mean_ttft_ms:>13.1f} "
            f"{shown(r.server_ttft_ms, 1):>15} {f'{r.completed}/{r.requests}':>10}"
        )
    figures = {}
    for side, group in (("kit", kit), ("vLLM", vllm)):
        figures[side] = [
            mean_of(group, name) for name in ("output_throughput", "mean_ttft_ms", "server_ttft_ms")
        ]
        tps, ttft, server = figures[side]
        print(f"{'mean':>5} {side:>5} {tps:>13.2f} {ttft:>13.1f} {shown(server, 1):>15}")
    (tps_kit, ttft_kit, server_kit), (tps_vllm, ttft_vllm, server_vllm) = figures.values()
    print(ratio_line("output throughput", tps_kit, tps_vllm, ">= 0.98", tps_kit >= 0.98 * tps_vllm))
    ttft_ok = abs(ttft_kit / ttft_vllm - 1) <= 0.05
    print(ratio_line("mean TTFT", ttft_kit, ttft_vllm, "within 5%", ttft_ok))
    if server_kit and server_vllm:
        print(
            f"server-side mean TTFT kit rounds / vLLM rounds: {server_kit / server_vllm:.2f}x "
            "(the server's own view: a gap here is the machine or the workload, not a client)"
        )
        added = (ttft_kit / server_kit) / (ttft_vllm / server_vllm)
        print(
            f"client TTFT / server TTFT, kit / vLLM: {added:.4f}x (the machine's noise cancels; "
            f"client minus server: kit {ttft_kit - server_kit:.1f} ms, "
            f"vLLM {ttft_vllm - server_vllm:.1f} ms per request)"
        )
    for side, group in (("kit", kit), ("vLLM", vllm)):
        breakdown = server_breakdown(group)
        if breakdown:
            print(f"server-side means per request, {side} rounds (ms): {breakdown}")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    args = parse_args()
    from kit.engines.served import start_server_backend
    from kit.perf.params import plan_points, workload_builder

    started = time.perf_counter()
    print(f"load average at start (1, 5, 15 min): {load_average()}")
    workdir = Path(tempfile.mkdtemp(prefix="server-client-"))
    server_log, bench_log = workdir / "server.log", workdir / "vllm-bench.log"
    first = perf_params(args, args.kit_input_len or args.input)
    print(f"starting the server (log: {server_log}) ...")
    backend = start_server_backend(first.engine_params(), server_log)  # as the perf notebook
    try:
        builder = workload_builder(first, backend.model_path)
        kit_input_len = args.kit_input_len or kit_prompt_len(builder, args.input)
        params = perf_params(args, kit_input_len)
        planned = plan_points(params, builder)[0]
        print(f"server at {backend.base_url}; vllm bench serve output: {bench_log}")

        def kit_side(size: int, seed: int) -> Round:
            return kit_round(backend, builder, params, planned, kit_input_len, size, seed)

        # the request fields the kit sends and vLLM's benchmark does not set itself
        same_body: dict = {"min_tokens": args.output}
        mm_kwargs = builder.build(kit_input_len, 0).as_request().mm_processor_kwargs
        if mm_kwargs:
            same_body["mm_processor_kwargs"] = mm_kwargs

        def vllm_side(size: int, seed: int) -> Round:
            argv = bench_argv(args, backend, size, seed, workdir, same_body)
            return vllm_round(backend, argv, size, bench_log)

        warm = args.concurrency  # one wave of the concurrency each
        kit_side(warm, args.seed + 10_000)
        vllm_side(warm, args.seed + 10_000)
        print("warm-up done (one wave each)")
        rounds: list[tuple[int, Round]] = []
        for i in range(args.rounds):
            # kit first in odd rounds, vLLM first in even ones: a drift of the machine's
            # other load over the run then favours neither side
            order = (kit_side, vllm_side) if i % 2 == 0 else (vllm_side, kit_side)
            for side in order:
                r = side(args.requests, args.seed + i)
                rounds.append((i + 1, r))
                print(
                    f"round {i + 1} {r.side}: {r.output_throughput:.2f} output tok/s, "
                    f"mean TTFT {r.mean_ttft_ms:.1f} ms"
                )
    finally:
        backend.shutdown()
    report(rounds, args, kit_input_len)
    print(
        f"load average at end (1, 5, 15 min): {load_average()}; "
        f"took {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
