"""Token logprobs from either backend, as kit.records.numerics positions.

Two calls per prompt. ``greedy``: the greedy continuation, each token with its logprob,
rank and the top-k (``SamplingParams(logprobs=k)``; a server's chat API with ``logprobs``,
``top_logprobs`` and ``return_tokens_as_token_ids``). ``forced``: the prompt logprobs of a
given continuation (teacher forcing), read where it follows the prompt. Offline, the prompt
is sent as the tokenizer's ids of the unexpanded prompt plus the continuation's ids, with the
same images (vLLM expands the image tags itself; its expanded ids sent back would fail the
prompt replacement); the ids vLLM then ran are checked against the greedy request's, so a
forced pass over another prompt is an error, not a number. A server gets the continuation
as text in a final assistant message (``continue_final_message``) and returns vLLM's
``prompt_logprobs``; it may tokenize that text otherwise, which is found and reported the
same way. A server that returns no prompt logprobs is named, and the forced part skipped.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kit.engines.types import GenRequest
from kit.records.numerics import Position, ranked

TOKEN_ID_PREFIX = "token_id:"


@dataclass
class Greedy:
    """A greedy continuation: its positions, the prompt's ids as the engine ran them (None
    where the server did not say) and the text."""

    positions: list[Position]
    prompt_ids: list[int] | None
    text: str
    finish_reason: str | None = None


@dataclass
class Forced:
    """Teacher-forced positions, or why there are none (``problem``)."""

    positions: list[Position] | None
    problem: str | None = None


def position_from_vllm(token: int, entry: Mapping[int, Any], top_k: int) -> Position:
    """One position from vLLM's ``{token id: Logprob}`` dict (the token itself and the
    top-k, each with its rank)."""
    own = entry[token]
    top = [
        (t, float(lp.logprob))
        for t, lp in entry.items()
        if lp.rank is not None and lp.rank <= top_k
    ]
    return Position(
        token=int(token),
        text=own.decoded_token or "",
        logprob=float(own.logprob),
        rank=own.rank,
        top_k=ranked(top),
    )


def sampling_params(max_tokens: int, top_k: int, prompt_logprobs: int | None = None) -> Any:
    from vllm import SamplingParams

    return SamplingParams(
        max_tokens=max_tokens, temperature=0.0, logprobs=top_k, prompt_logprobs=prompt_logprobs
    )


def offline_greedy(
    llm: Any, requests: Sequence[GenRequest], top_k: int, max_tokens: int
) -> list[Greedy]:
    outputs = llm.generate(
        [r.vllm_input() for r in requests], sampling_params(max_tokens, top_k), use_tqdm=False
    )
    out = []
    for output in outputs:
        first = output.outputs[0]
        positions = [
            position_from_vllm(t, entry, top_k)
            for t, entry in zip(first.token_ids, first.logprobs or [], strict=True)
        ]
        out.append(
            Greedy(positions, list(output.prompt_token_ids or []), first.text, first.finish_reason)
        )
    return out


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
        None if len(a) == len(b) else min(len(a), len(b)),
    )


def forced_from_prompt_logprobs(
    ran: Sequence[int],
    prompt_logprobs: Sequence[Mapping[int, Any] | None],
    expected_prompt: Sequence[int],
    continuation: Sequence[int],
    top_k: int,
) -> Forced:
    """The continuation's positions in a forced pass whose prompt ``ran`` (the ids the
    engine ran, images expanded) should be ``expected_prompt`` + ``continuation``. Where the
    engine re-tokenized the continuation (vLLM's Phi3V processor decodes a prompt with
    images to text and encodes it again, and a continuation need not survive that), the
    positions before the first changed token are kept, and the problem says so."""
    start = len(expected_prompt)
    if list(ran[:start]) != list(expected_prompt):
        at = first_difference(ran[:start], expected_prompt)
        return Forced(
            None,
            f"the forced pass ran another prompt than the greedy request (first different "
            f"token at {at} of {start})",
        )
    tail = list(ran[start:])
    kept = first_difference(tail, continuation)
    kept = len(continuation) if kept is None else min(kept, len(continuation))
    entries = list(prompt_logprobs)[start : start + kept]
    if len(entries) != kept or any(e is None for e in entries):
        return Forced(None, "the engine returned no prompt logprobs for the continuation")
    positions = [
        position_from_vllm(t, e, top_k)  # type: ignore[arg-type]
        for t, e in zip(continuation[:kept], entries, strict=True)
    ]
    if kept == len(continuation):
        return Forced(positions)
    problem = (
        f"the engine re-tokenized the continuation from token {kept} on (its text does not "
        f"encode back to the same tokens): teacher-forced on the first {kept} of "
        f"{len(continuation)}"
    )
    return Forced(positions or None, problem)


def offline_forced(
    llm: Any,
    requests: Sequence[GenRequest],
    continuations: Sequence[Sequence[int]],
    expected_prompts: Sequence[Sequence[int] | None],
    top_k: int,
) -> list[Forced]:
    """Each request's prompt followed by its continuation, one token generated, the prompt
    logprobs read back."""
    tokenizer = llm.get_tokenizer()
    inputs = []
    for request, continuation in zip(requests, continuations, strict=True):
        ids = tokenizer.encode(request.prompt, add_special_tokens=False) + list(continuation)
        item: dict[str, Any] = {"prompt_token_ids": ids}
        if request.images:
            item["multi_modal_data"] = {"image": request.images}
        inputs.append(item)
    outputs = llm.generate(inputs, sampling_params(1, top_k, prompt_logprobs=top_k), use_tqdm=False)
    return [
        forced_from_prompt_logprobs(
            list(o.prompt_token_ids or []), o.prompt_logprobs or [], expected or [], cont, top_k
        )
        for o, cont, expected in zip(outputs, continuations, expected_prompts, strict=True)
    ]


# --- a server --------------------------------------------------------------------------


def post_json(url: str, body: Mapping[str, Any], api_key: str | None, timeout_s: float) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        return json.loads(reply.read())


def token_of(text: str) -> int:
    if not text.startswith(TOKEN_ID_PREFIX):
        raise ValueError(f"the server sent token {text!r}, not {TOKEN_ID_PREFIX}N")
    return int(text[len(TOKEN_ID_PREFIX) :])


def position_from_chat(item: Mapping[str, Any], top_k: int) -> Position:
    """One position of a chat response's ``logprobs.content``: the rank is the token's
    place in ``top_logprobs`` (None outside it); pieces of text come from the tokenizer."""
    token = token_of(item["token"])
    pairs = [(token_of(t["token"]), float(t["logprob"])) for t in item.get("top_logprobs") or []]
    top = ranked(pairs)[:top_k]
    rank = next((i for i, (t, _) in enumerate(top, 1) if t == token), None)
    return Position(token=token, text="", logprob=float(item["logprob"]), rank=rank, top_k=top)


def _entry(raw: Mapping[str, Any] | None) -> dict[int, Any] | None:
    """A JSON prompt_logprobs entry as vLLM's {token id: Logprob}."""
    if raw is None:
        return None
    from types import SimpleNamespace

    return {
        int(t): SimpleNamespace(
            logprob=v["logprob"], rank=v.get("rank"), decoded_token=v.get("decoded_token")
        )
        for t, v in raw.items()
    }


@dataclass
class ServerLogprobs:
    """Logprob requests to an OpenAI-compatible server (vLLM's extensions where needed).
    A text-only prompt is forced through the completions API as token ids (the greedy
    request's prompt ids and the continuation: exact); a prompt with images through the
    chat API, where the server renders and tokenizes the continuation's text."""

    base_url: str
    model: str
    api_key: str | None
    timeout_s: float

    def post(self, endpoint: str, body: Mapping[str, Any]) -> Any:
        """A greedy request to ``/v1/<endpoint>`` for the served model."""
        return post_json(
            f"{self.base_url}/v1/{endpoint}",
            {"model": self.model, "temperature": 0.0, **body},
            self.api_key,
            self.timeout_s,
        )

    def greedy(self, request: GenRequest, top_k: int, max_tokens: int) -> Greedy:
        reply = self.post(
            "chat/completions",
            {
                "messages": request.chat_messages(),
                "max_tokens": max_tokens,
                "logprobs": True,
                "top_logprobs": top_k,
                "return_tokens_as_token_ids": True,
                "return_token_ids": True,
            },
        )
        choice = reply["choices"][0]
        content = (choice.get("logprobs") or {}).get("content") or []
        positions = [position_from_chat(item, top_k) for item in content]
        return Greedy(
            positions,
            reply.get("prompt_token_ids"),
            choice["message"].get("content") or "",
            choice.get("finish_reason"),
        )

    def forced(
        self,
        request: GenRequest,
        continuation: Sequence[int],
        continuation_text: str,
        expected_prompt: Sequence[int] | None,
        top_k: int,
    ) -> Forced:
        if expected_prompt is None:
            return Forced(None, "the server did not return the greedy request's prompt ids")
        if not request.images:
            body: dict[str, Any] = {"prompt": [*expected_prompt, *continuation]}
            return self._forced("completions", body, expected_prompt, continuation, top_k)
        final = {"role": "assistant", "content": continuation_text}
        body = {
            "messages": [*request.chat_messages(), final],
            "add_generation_prompt": False,
            "continue_final_message": True,
        }
        # The chat template may end the assistant turn after the text: the continuation is
        # read where the greedy prompt ends, not at the very end.
        return self._forced("chat/completions", body, expected_prompt, continuation, top_k)

    def _forced(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        prompt: Sequence[int],
        continuation: Sequence[int],
        top_k: int,
    ) -> Forced:
        """One token generated after ``body``'s prompt, its prompt logprobs read back
        (vLLM's ``prompt_logprobs`` and ``return_token_ids``; where a chat reply has them at
        the top, a completion has them in its choice)."""
        try:
            reply = self.post(
                endpoint,
                {"max_tokens": 1, "prompt_logprobs": top_k, "return_token_ids": True, **body},
            )
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            return Forced(None, f"the server refused prompt_logprobs (HTTP {exc.code}: {detail})")
        holder = reply if "prompt_logprobs" in reply else reply["choices"][0]
        raw, ran = holder.get("prompt_logprobs"), holder.get("prompt_token_ids")
        if raw is None or ran is None:
            return Forced(
                None, "the server returned no prompt_logprobs/prompt_token_ids (not vLLM?)"
            )
        return forced_from_prompt_logprobs(
            ran, [_entry(e) for e in raw], prompt, continuation, top_k
        )
