"""One engine of a tiny model, run through the kit's own code for each notebook's core:
``python -m tests.family_checks MODEL OUT.json [BACKEND]`` (a script: vLLM spawns its engine
process, which needs ``__main__`` guarded). One engine start covers four checks, so a family
costs the suite one start instead of one per notebook (tests/test_families.py reads
OUT.json). BACKEND is ``offline`` (vllm.LLM, the default) or ``server``: a ``vllm serve`` the
kit starts, so every check below is then a server-mode request, its prompt rendered by the
server from the checkpoint's chat template and counted by the server. Offline, the counts
are also taken through ``LLM.chat`` with the chat messages a server gets: vLLM's own chat
rendering (the checkpoint's template, vLLM's placeholders), as a server does it.

- counts: the kit's prompt-token count against vLLM's ``prompt_token_ids`` for three image
  sizes (the demo's prompt);
- demo: the demo's answer (kit.demo.answer) with the kit's length check;
- perf: one exact-length perf point (kit.perf.sweep.run_point, which verifies every
  request's prompt and output length against vLLM's counts);
- mmmu: two fixture questions with the official prompt in the family's chat turn, answered
  and parsed;
- numerics: three prompts of the numerics set against a float32 HF transformers reference
  made here (kit.numerics), where transformers can make one (else the refusal is recorded).

The engine runs in float32, so the numerics check is float32 against float32.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SIZES = ((336, 336), (1024, 512), (640, 480))  # (width, height): square, wide, 4:3
NUMERICS_PROMPTS = ["text-capital", "image-small", "image-describe"]  # one image at most


def main(model: str, out: Path, backend: str = "offline") -> None:
    from kit.core.images import synthetic_image
    from kit.demo import answer as demo
    from kit.demo.params import DemoParams
    from kit.engines.registry import start_backend
    from kit.engines.types import GenRequest, GenSampling
    from kit.mmmu.answer import build_request
    from kit.mmmu.dataset import ImageReader, fixture_dataset, load_split
    from kit.mmmu.params import MMMUParams
    from kit.mmmu.scoring import score_predictions
    from kit.models.tokens import PromptTokenCounter
    from kit.perf.params import PerfParams, plan_points, workload_builder
    from kit.perf.sweep import run_point

    engine_settings = {
        "model": model,
        "max_model_len": 4096,
        "gpu_memory_utilization": 0.1,
        "backend": backend,
        "dtype": "float32",
    }
    params = DemoParams(**engine_settings, max_output_len=8, warmup=0)
    engine = start_backend(params, log_file=out.with_suffix(".engine.log"))
    family = engine.family
    report: dict = {"family": family.name, "backend": backend}
    try:
        counter = PromptTokenCounter(engine.model_path, family, params.num_crops)
        prompt = family.prompt(params.prompt, 1)
        requests = [
            GenRequest(params.prompt, [synthetic_image(w, h, seed=f"size/{w}x{h}")], prompt)
            for w, h in SIZES
        ]
        batch = engine.generate(requests, GenSampling(max_tokens=1))
        report["counts"] = [
            {
                "size": [w, h],
                "kit_image_tokens": counter.image_tokens(w, h),
                "kit_prompt_tokens": counter.prompt_tokens(prompt, [(w, h)]),
                "vllm_prompt_tokens": completion.prompt_tokens,
            }
            for (w, h), completion in zip(SIZES, batch.completions, strict=True)
        ]
        if backend == "offline":  # what a server renders: vLLM's chat path, in this engine
            chats = engine.llm.chat(
                [r.chat_messages() for r in requests],
                engine.sampling_params(GenSampling(max_tokens=1)),
                use_tqdm=False,
            )
            for count, output in zip(report["counts"], chats, strict=True):
                count["vllm_chat_prompt_tokens"] = len(output.prompt_token_ids)

        result = demo.generate(engine, params, demo.prepare(params, family))
        demo.check_prompt_length(result)
        report["demo"] = {"prompt_tokens": result.num_prompt_tokens, "text": result.generated_text}

        perf = PerfParams(
            **engine_settings,
            input_len=[1024],
            max_output_len=[4],
            batch_size=[2],
            input_vision_shape="1024,1024",
            iterations=1,
            warmup=0,
            ttft_probe=False,
        )
        builder = workload_builder(perf, engine.model_path, family, "family-checks")
        (planned,) = plan_points(perf, builder)
        point = run_point(engine, perf, builder, planned, log=lambda line: None)
        report["perf"] = {
            "prompt_tokens": sorted({t.num_prompt_tokens for m in point.timed for t in m.timings}),
            "image_tokens": planned.image_tokens,
        }

        mmmu = MMMUParams(**engine_settings)
        questions = load_split(fixture_dataset(), "validation", ["Art"])[:2]
        reader = ImageReader()
        prepared = [build_request(q, mmmu, reader, family) for q in questions]
        answers = engine.generate([p.request for p in prepared], GenSampling(max_tokens=8))
        completions = zip(prepared, answers.completions, strict=True)
        responses = {p.question.id: c.text for p, c in completions}
        scored = score_predictions(questions, responses)
        report["mmmu"] = [
            {
                "id": p.question.id,
                "tags": len(family.tag_numbers(p.prompt)),
                "images": len(p.request.images),
                "response": responses[p.question.id],
                "parsed": record.parsed,
            }
            for p, record in zip(prepared, scored.records, strict=True)
        ]
        report["numerics"] = numerics_check(engine, engine_settings)
    finally:
        engine.shutdown()
    out.write_text(json.dumps(report, indent=2))


def numerics_check(engine, engine_settings: dict) -> dict:
    """The engine's numerics against HF transformers in float32, or why there is none."""
    from kit.core.params import ParameterError
    from kit.numerics import run as numerics
    from kit.numerics.params import NumericsParams

    params = NumericsParams(
        **engine_settings, prompts=NUMERICS_PROMPTS, max_tokens=16, reference="transformers"
    )
    params.check()
    try:
        params.preflight()
    except ParameterError as exc:
        return {"refused": str(exc)}
    prepared = numerics.prepare(params)
    reference = numerics.load_reference(params, prepared)
    result = numerics.record(engine, params, prepared, reference)
    return {
        "comparison": result.comparison.to_dict(),
        "forced_problems": dict(result.summary.forced_problems),
        "prompt_tokens": {r.id: r.prompt_tokens for r in result.records},
        "reference_prompt_tokens": {r.id: r.prompt_tokens for r in reference.records},
    }


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:])
