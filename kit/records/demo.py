"""The ``demo`` section of results.json: one request's answer, its prompt split into text
and image tokens (the kit's count beside vLLM's), and its timing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kit.records.base import known_fields, mapping
from kit.records.caches import CacheUse, served_from_cache


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


@dataclass(frozen=True)
class DemoRecord:
    """Written by the demo notebook and the explorer, read by reports, compare and
    reproduce. Files of an older kit may lack any field (None)."""

    question: str | None = None
    prompt: str | None = None
    generated_text: str | None = None
    finish_reason: str | None = None
    image_sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) each
    num_prompt_tokens: int | None = None  # as vLLM counted them
    expected_prompt_tokens: int | None = None  # as the kit counted them before the run
    num_text_tokens: int | None = None
    num_image_tokens: list[int] = field(default_factory=list)
    num_output_tokens: int | None = None
    ttft_ms: float | None = None
    decode_ms: float | None = None
    e2e_ms: float | None = None
    wall_ms: float | None = None
    output_tokens_per_s: float | None = None  # output tokens / end-to-end time
    decode_tokens_per_s: float | None = None  # (output tokens - 1) / decode time
    warmup_requests: int | None = None  # untimed requests first (0: a cold first request)
    caches: CacheUse | None = None  # what vLLM's caches served the timed request

    @classmethod
    def from_completion(
        cls,
        completion: Any,
        question: str,
        prompt: str,
        image_sizes: list[tuple[int, int]],
        text_tokens: int,
        image_tokens: list[int],
        wall_ms: float,
        warmup_requests: int = 0,
    ) -> DemoRecord:
        """One finished request (a kit.engines.types.Completion, from either backend) with
        the kit's own token count beside the engine's."""
        timing = completion.timing
        n_out = completion.output_tokens
        return cls(
            question=question,
            prompt=prompt,
            generated_text=completion.text,
            finish_reason=completion.finish_reason,
            image_sizes=[(int(w), int(h)) for w, h in image_sizes],
            num_prompt_tokens=completion.prompt_tokens or 0,
            expected_prompt_tokens=text_tokens + sum(image_tokens),
            num_text_tokens=text_tokens,
            num_image_tokens=list(image_tokens),
            num_output_tokens=n_out,
            ttft_ms=_ms(timing.ttft_s),
            decode_ms=_ms(timing.decode_s),
            e2e_ms=_ms(timing.e2e_s),
            wall_ms=wall_ms,
            output_tokens_per_s=n_out / timing.e2e_s if timing.e2e_s else None,
            decode_tokens_per_s=(n_out - 1) / timing.decode_s if timing.decode_s else None,
            warmup_requests=warmup_requests,
            caches=getattr(completion, "caches", None),
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["caches"] = None if self.caches is None else self.caches.to_dict()
        return out

    @classmethod
    def of(cls, section: Any) -> DemoRecord | None:
        section = mapping(section)
        if not section:
            return None
        values = known_fields(cls, section)
        values["image_sizes"] = [(int(w), int(h)) for w, h in values.get("image_sizes") or []]
        values["caches"] = CacheUse.of(values.get("caches"))
        return cls(**values)

    @property
    def cached(self) -> bool:
        """A cache served the timed request: its TTFT is not a cold prefill."""
        return served_from_cache(self.caches)

    @property
    def prompt_length_matches(self) -> bool:
        """vLLM saw exactly the prompt length the kit computed before the run."""
        return self.num_prompt_tokens == self.expected_prompt_tokens

    def timing_rows(self) -> list[dict[str, Any]]:
        warm = (
            f"after {self.warmup_requests} untimed warm-up request(s)"
            if self.warmup_requests
            else "cold: the engine's first request, lazy initialisation included"
        )
        ttft = "time to first token (ms)"
        if self.cached:
            ttft += ", CACHED: not a cold prefill"
        caches = "not recorded" if self.caches is None else self.caches.describe()
        return [
            {"metric": "timed request", "value": warm},
            {"metric": ttft, "value": self.ttft_ms},
            {"metric": "caches", "value": caches},
            {"metric": "prompt tokens (text + image)", "value": self.num_prompt_tokens},
            {"metric": "text tokens", "value": self.num_text_tokens},
            {"metric": "image tokens", "value": " + ".join(map(str, self.num_image_tokens))},
            {"metric": "output tokens", "value": self.num_output_tokens},
            {"metric": "decode time (ms)", "value": self.decode_ms},
            {"metric": "end-to-end latency (ms)", "value": self.e2e_ms},
            {"metric": "output tokens/s (output / end-to-end)", "value": self.output_tokens_per_s},
            {"metric": "decode tokens/s", "value": self.decode_tokens_per_s},
        ]
