"""A numerics run against a reference run, as pure functions on kit.records.numerics' records.

Two views of each prompt. The greedy check is vLLM's own (tests/models/utils.py,
check_logprobs_close): it tolerates a difference only where the two tokens are near-ties,
and stops at the first. The teacher-forced statistics score the run on the reference's
tokens at every position, so they measure the logprobs themselves, not where a tie broke.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from kit.core.stats import mean, percentile
from kit.numerics.thresholds import Thresholds
from kit.records.numerics import (
    VERDICTS,
    ForcedStats,
    GreedyCheck,
    NumericsComparison,
    Position,
    PromptNumerics,
    PromptVerdict,
)


def rank_in(token: int, top_k: Sequence[tuple[int, float]]) -> int | None:
    """``token``'s 1-based place in a top-k list, None where it is not there."""
    return next((i for i, (t, _) in enumerate(top_k, 1) if t == token), None)


def greedy_check(run: Sequence[Position], ref: Sequence[Position]) -> GreedyCheck:
    """vLLM's criterion: up to the shorter length the tokens match; at the first that
    differs, pass iff the run's token is in the reference's top-k and the reference's in
    the run's; then stop (what follows depends on which token was taken)."""
    compared = min(len(run), len(ref))
    for i in range(compared):
        a, b = run[i], ref[i]
        if a.token != b.token:
            run_rank, ref_rank = rank_in(a.token, b.top_k), rank_in(b.token, a.top_k)
            return GreedyCheck(
                passed=run_rank is not None and ref_rank is not None,
                compared=compared,
                run_length=len(run),
                ref_length=len(ref),
                divergence=i,
                run_token=a.token,
                run_text=a.text,
                ref_token=b.token,
                ref_text=b.text,
                run_rank_in_ref=run_rank,
                ref_rank_in_run=ref_rank,
            )
    return GreedyCheck(passed=True, compared=compared, run_length=len(run), ref_length=len(ref))


def kl_estimate(run: Position, ref: Position) -> tuple[float, int] | None:
    """KL(ref || run) over the reference's top-k: the sum over its tokens t of
    p_ref(t) * (logp_ref(t) - logp_run(t)), and how many t were missing from the run's
    top-k. A missing t gets the run's smallest top-k logprob, an upper bound on its true
    logprob, so its term is a lower bound (the run's own token keeps its known logprob).
    The sum leaves out the mass outside the top-k, so it may dip just below 0 where the run
    is surer of those tokens. None where either top-k is empty."""
    if not ref.top_k or not run.top_k:
        return None
    known = {run.token: run.logprob, **dict(run.top_k)}
    floor = min(logprob for _, logprob in run.top_k)
    total, missing = 0.0, 0
    for token, logprob in ref.top_k:
        if token not in known:
            missing += 1
        total += math.exp(logprob) * (logprob - known.get(token, floor))
    return total, missing


def topk_overlap(run: Position, ref: Position) -> float | None:
    """Token ids the two top-k lists share, over k (the longer list's length)."""
    k = max(len(run.top_k), len(ref.top_k))
    if not k:
        return None
    return len({t for t, _ in run.top_k} & {t for t, _ in ref.top_k}) / k


def forced_stats(run_forced: Sequence[Position], ref_generated: Sequence[Position]) -> ForcedStats:
    """The run, forced on the reference's continuation, against the reference position by
    position. ValueError where the run read other tokens (naming the first position) or
    another number of them: its logprobs would then be of another text."""
    if len(run_forced) != len(ref_generated):
        raise ValueError(
            f"the run read {len(run_forced)} forced tokens, "
            f"the reference's continuation has {len(ref_generated)}"
        )
    deltas, top1, overlaps, kls, missing = [], [], [], [], 0
    for i, (a, b) in enumerate(zip(run_forced, ref_generated, strict=True)):
        if a.token != b.token:
            raise ValueError(
                f"position {i}: the run read token {a.token} ({a.text!r}), "
                f"the reference's continuation has {b.token} ({b.text!r})"
            )
        deltas.append(abs(a.logprob - b.logprob))
        if a.top_k and b.top_k:
            top1.append(a.top_k[0][0] == b.top_k[0][0])
        if (overlap := topk_overlap(a, b)) is not None:
            overlaps.append(overlap)
        if (kl := kl_estimate(a, b)) is not None:
            kls.append(kl[0])
            missing += kl[1]
    if not deltas:
        return ForcedStats(positions=0)
    largest = max(deltas)
    return ForcedStats(
        positions=len(deltas),
        mean_abs_delta=mean(deltas),
        p99_abs_delta=percentile(deltas, 99),
        max_abs_delta=largest,
        max_delta_position=deltas.index(largest) if largest else None,
        first_delta_position=next((i for i, d in enumerate(deltas) if d != 0), None),
        top1_agreement=sum(top1) / len(top1) if top1 else None,
        topk_overlap=mean(overlaps),
        kl_mean=mean(kls),
        kl_max=max(kls) if kls else None,
        kl_missing=missing,
    )


def _greedy_reason(check: GreedyCheck) -> str:
    absent = []
    if check.run_rank_in_ref is None:
        absent.append("the run's token is not in the reference's top-k")
    if check.ref_rank_in_run is None:
        absent.append("the reference's token is not in the run's top-k")
    return (
        f"greedy tokens differ at position {check.divergence} ({check.run_text!r} vs the "
        f"reference's {check.ref_text!r}) and {' and '.join(absent)}"
    )


def verdict(
    greedy: GreedyCheck | None,
    forced: ForcedStats | None,
    thresholds: Thresholds,
    problem: str | None = None,
) -> tuple[str, str | None]:
    """A prompt's verdict (one of VERDICTS) and why: "identical" where every token and
    every forced logprob is equal, "close" where the greedy check passes and the forced
    statistics are within ``thresholds``, "diverged" where either fails, "incomplete"
    where nothing failed but a part is missing (``problem`` says which)."""
    if greedy is None:
        return "incomplete", problem or "not compared"
    reasons = [] if greedy.passed else [_greedy_reason(greedy)]
    if forced is not None:
        reasons += thresholds.breaches(forced)
    if reasons:
        return "diverged", "; ".join(reasons + ([problem] if problem else []))
    if forced is None:
        return "incomplete", problem or "no teacher-forced logprobs"
    same_tokens = greedy.divergence is None and greedy.run_length == greedy.ref_length
    if same_tokens and not forced.max_abs_delta:
        return "identical", None
    return "close", None


def worst(verdicts: Iterable[str]) -> str:
    """The overall verdict: the worst of the prompts' ("incomplete" where there are none)."""
    return max(verdicts, key=VERDICTS.index, default="incomplete")


def _tokens(positions: Sequence[Position]) -> list[int]:
    return [p.token for p in positions]


def reference_side(ref: PromptNumerics) -> tuple[Sequence[Position], str]:
    """What a run forced on the reference's continuation is compared with: the reference's
    own forced pass over it where recorded (a prefill against a prefill, so the same engine
    twice gives Δ = 0 although decoding computes logprobs by other kernels; it may cover
    only the continuation's first tokens, see kit.engines.logprobs), else its generated
    tokens."""
    own = ref.forced
    generated = _tokens(ref.generated)
    if own and _tokens(own) == generated[: len(own)]:
        return own, "forced"
    return ref.generated, "generated"


def forced_pair(
    run_forced: Sequence[Position], ref: PromptNumerics
) -> tuple[Sequence[Position], Sequence[Position], str]:
    """The run's teacher-forced positions and the reference side's they are compared with
    (kit.numerics.report plots the same pairs), over the positions both have: either pass
    may stop early where an engine re-tokenized the continuation. Their tokens must agree
    (forced_stats checks it); and which side of the reference it is."""
    side, against = reference_side(ref)
    common = min(len(run_forced), len(side))
    return run_forced[:common], side[:common], against


def compare_prompt(
    run: PromptNumerics, ref: PromptNumerics, thresholds: Thresholds
) -> PromptVerdict:
    """One prompt on both sides: greedy check, forced statistics over the positions both
    sides were forced on, verdict (a note where that is not the whole continuation)."""
    greedy = greedy_check(run.generated, ref.generated)
    forced: ForcedStats | None = None
    against: str | None = None
    problem: str | None = None
    note: str | None = None
    if not run.forced:
        problem = "the run recorded no teacher-forced logprobs"
    else:
        mine, theirs, against = forced_pair(run.forced, ref)
        try:
            forced = forced_stats(mine, theirs)
        except ValueError as exc:  # tokens differ: forced on another continuation
            problem = f"the run was not forced on the reference's continuation: {exc}"
            against = None
        else:
            if len(mine) < len(ref.generated):
                note = (
                    f"teacher-forced on the first {len(mine)} of {len(ref.generated)} tokens "
                    "(the engine re-tokenized the rest of the continuation)"
                )
    word, reason = verdict(greedy, forced, thresholds, problem)
    if note:
        reason = f"{reason}; {note}" if reason else note
    return PromptVerdict(
        id=run.id,
        verdict=word,
        reason=reason,
        kind=run.kind,
        first_divergence=greedy.divergence,
        greedy=greedy,
        forced=forced,
        forced_against=against,
    )


def _by_id(records: Sequence[PromptNumerics], side: str) -> dict[str, PromptNumerics]:
    out: dict[str, PromptNumerics] = {}
    for record in records:
        if record.id in out:
            raise ValueError(f"the {side} has prompt {record.id!r} twice")
        out[record.id] = record
    return out


def compare_runs(
    run: Sequence[PromptNumerics],
    reference: Sequence[PromptNumerics],
    thresholds: Thresholds | None = None,
    reference_label: str = "reference",
) -> NumericsComparison:
    """Every prompt of either side, matched by id, in the reference's order and then the
    run's own: a prompt on one side only is judged "incomplete" and listed, never dropped.
    ValueError where a side holds an id twice."""
    thresholds = thresholds or Thresholds()
    runs, refs = _by_id(run, "run"), _by_id(reference, "reference")
    prompts: list[PromptVerdict] = []
    for pid, ref in refs.items():
        if pid in runs:
            prompts.append(compare_prompt(runs[pid], ref, thresholds))
        else:
            prompts.append(PromptVerdict(pid, "incomplete", "missing from the run", ref.kind))
    for pid, mine in runs.items():
        if pid not in refs:
            prompts.append(PromptVerdict(pid, "incomplete", "not in the reference", mine.kind))
    stats = [p.forced for p in prompts if p.forced is not None and p.forced.positions]
    positions = sum(s.positions for s in stats)
    return NumericsComparison(
        reference=reference_label,
        verdict=worst(p.verdict for p in prompts),
        thresholds=thresholds.to_dict(),
        prompts=tuple(prompts),
        counts={word: sum(p.verdict == word for p in prompts) for word in VERDICTS},
        missing_from_run=tuple(pid for pid in refs if pid not in runs),
        missing_from_reference=tuple(pid for pid in runs if pid not in refs),
        positions=positions,
        mean_abs_delta=(
            sum((s.mean_abs_delta or 0.0) * s.positions for s in stats) / positions
            if positions
            else None
        ),
        max_abs_delta=max((s.max_abs_delta or 0.0 for s in stats), default=None),
    )
