"""Token-level numerics against a reference (kit.numerics.compare, kit.records.numerics), on
hand-made records: no engine. Logprobs are binary fractions, so every |Δ| is exact."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from kit.core import jsonio
from kit.numerics.compare import (
    compare_runs,
    forced_stats,
    greedy_check,
    kl_estimate,
    topk_overlap,
    verdict,
    worst,
)
from kit.numerics.thresholds import Thresholds
from kit.records.numerics import (
    ForcedStats,
    GreedyCheck,
    NumericsComparison,
    Position,
    PromptNumerics,
    read_numerics_jsonl,
    write_numerics_jsonl,
)

TAIL = (-2.5, -3.0, -3.5, -4.0)  # logprobs of ranks 2..5 at every made-up position
LENGTH = 16
NUDGED = -0.3125  # prompt "b", position 7: a logprob no other position has


def pos(token: int, logprob: float, top: list[tuple[int, float]], rank: int | None = 1):
    return Position(token, f"<{token}>", logprob, rank, tuple(top))


def greedy_pos(token: int, logprob: float = -0.25) -> Position:
    """A greedy token (rank 1) and four alternatives token+1000 .. token+4000."""
    top = [(token, logprob)] + [(token + 1000 * (r + 1), lp) for r, lp in enumerate(TAIL)]
    return pos(token, logprob, top)


def prompt(pid: str, base: int, forced: bool = True, length: int = LENGTH) -> PromptNumerics:
    generated = tuple(
        greedy_pos(base + i, NUDGED if (pid, i) == ("b", 7) else -0.25) for i in range(length)
    )
    return PromptNumerics(
        id=pid,
        kind="image" if pid == "b" else "text",
        num_images=1 if pid == "b" else 0,
        prompt_tokens=40 + base,
        generated=generated,
        forced=generated if forced else None,
        forced_on="self" if forced else None,
        generated_text="".join(p.text for p in generated),
    )


def records(forced: bool = True) -> list[PromptNumerics]:
    return [prompt("a", 10, forced), prompt("b", 20, forced), prompt("c", 30, forced)]


# --- the same records twice, and one logprob nudged ---------------------------------------


def test_same_run_twice_is_identical_with_no_delta_anywhere(tmp_path):
    path = write_numerics_jsonl(tmp_path / "numerics.jsonl", records())
    again = read_numerics_jsonl(path)
    assert again == records()
    result = compare_runs(again, read_numerics_jsonl(path), reference_label="same")
    assert result.verdict == "identical"
    assert result.reference == "same"
    assert result.counts == {"identical": 3, "close": 0, "incomplete": 0, "diverged": 0}
    assert result.positions == 3 * LENGTH
    assert result.mean_abs_delta == 0.0 and result.max_abs_delta == 0.0
    for p in result.prompts:
        assert (p.verdict, p.reason, p.first_divergence) == ("identical", None, None)
        assert p.greedy == GreedyCheck(True, LENGTH, LENGTH, LENGTH)
        assert p.forced_against == "forced"
        assert p.forced == ForcedStats(
            positions=LENGTH,
            mean_abs_delta=0.0,
            p99_abs_delta=0.0,
            max_abs_delta=0.0,
            max_delta_position=None,
            first_delta_position=None,
            top1_agreement=1.0,
            topk_overlap=1.0,
            kl_mean=0.0,
            kl_max=0.0,
            kl_missing=0,
        )
    # every position's Δ is 0, not only the aggregates
    for run in again:
        assert run.forced is not None
        pairs = zip(run.forced, run.generated, strict=True)
        assert [abs(a.logprob - b.logprob) for a, b in pairs] == [0.0] * LENGTH


@pytest.mark.parametrize("reference_forced", [True, False], ids=["ref-forced", "ref-generated"])
def test_one_nudged_logprob_in_the_reference_file_is_found_where_it_is(tmp_path, reference_forced):
    """The nudge lands in what the run is compared with: the reference's forced pass when it
    has one (the second occurrence on the line), else its generated tokens (the first)."""
    path = write_numerics_jsonl(tmp_path / "ref.jsonl", records(forced=reference_forced))
    lines = path.read_text().splitlines(keepends=True)
    old, new = f'"logprob": {NUDGED}', f'"logprob": {NUDGED - 0.0625}'
    line = lines[1]
    assert line.count(old) == (2 if reference_forced else 1)
    cut = line.rindex(old)
    lines[1] = line[:cut] + new + line[cut + len(old) :]
    path.write_text("".join(lines))

    result = compare_runs(records(), read_numerics_jsonl(path), reference_label=str(path))
    by_id = {p.id: p for p in result.prompts}
    assert by_id["a"].verdict == by_id["c"].verdict == "identical"
    b = by_id["b"]
    assert b.verdict == "close"  # 0.0625 nats at one position: within the default limits
    assert b.forced_against == ("forced" if reference_forced else "generated")
    assert b.first_divergence is None  # the tokens are the same
    assert b.forced is not None
    assert b.forced.first_delta_position == 7
    assert b.forced.max_delta_position == 7
    assert b.forced.max_abs_delta == 0.0625
    assert b.forced.mean_abs_delta == 0.0625 / LENGTH
    assert result.verdict == "close"
    assert result.max_abs_delta == 0.0625
    assert result.mean_abs_delta == 0.0625 / (3 * LENGTH)


# --- vLLM's greedy check ------------------------------------------------------------------


def test_a_swap_within_each_others_top_k_passes_with_its_position():
    ref = [greedy_pos(10 + i) for i in range(8)]
    run = list(ref)
    # the run took the reference's rank-3 token; the reference's token is the run's rank 2
    run[3] = pos(2013, -0.5, [(2013, -0.5), (13, -0.75), (3013, -3.0), (77, -4.0), (78, -5.0)])
    check = greedy_check(run, ref)
    assert check == GreedyCheck(
        passed=True,
        compared=8,
        run_length=8,
        ref_length=8,
        divergence=3,
        run_token=2013,
        run_text="<2013>",
        ref_token=13,
        ref_text="<13>",
        run_rank_in_ref=3,
        ref_rank_in_run=2,
    )
    # what follows the divergence is not looked at (it follows from another token)
    run[5] = greedy_pos(999)
    assert greedy_check(run, ref).divergence == 3 and greedy_check(run, ref).passed


def test_a_swap_outside_the_top_k_fails_with_no_ranks():
    ref = [greedy_pos(10 + i) for i in range(8)]
    run = list(ref)
    run[3] = greedy_pos(555)  # its top-k: 555, 1555, ...: 13 not among them
    check = greedy_check(run, ref)
    assert (check.passed, check.divergence) == (False, 3)
    assert (check.run_token, check.ref_token) == (555, 13)
    assert (check.run_rank_in_ref, check.ref_rank_in_run) == (None, None)
    word, reason = verdict(check, None, Thresholds())
    assert word == "diverged"
    assert reason is not None and "position 3" in reason
    assert "the run's token is not in the reference's top-k" in reason


def test_a_swap_in_one_top_k_only_fails():
    ref = [greedy_pos(10 + i) for i in range(4)]
    run = list(ref)
    run[2] = greedy_pos(1012)  # the reference's rank 2; 12 is not in the run's top-k
    check = greedy_check(run, ref)
    assert (check.passed, check.divergence) == (False, 2)
    assert (check.run_rank_in_ref, check.ref_rank_in_run) == (2, None)


def test_a_shorter_continuation_is_compared_up_to_its_length():
    ref = [greedy_pos(10 + i) for i in range(8)]
    check = greedy_check(ref[:5], ref)
    assert check == GreedyCheck(True, 5, 5, 8)
    stats = forced_stats(ref, ref)
    assert verdict(check, stats, Thresholds()) == ("close", None)  # not identical: lengths
    assert verdict(GreedyCheck(True, 8, 8, 8), stats, Thresholds()) == ("identical", None)


# --- teacher-forced statistics ------------------------------------------------------------


def test_forced_stats_on_hand_computed_deltas():
    ref = [greedy_pos(10 + i, -1.0) for i in range(4)]
    run = [
        replace(p, logprob=p.logprob - d) for p, d in zip(ref, (0.0, 0.25, 0.5, 1.0), strict=True)
    ]
    stats = forced_stats(run, ref)
    assert stats.positions == 4
    assert stats.mean_abs_delta == 0.4375
    assert stats.p99_abs_delta == pytest.approx(0.5 + 0.97 * 0.5)  # linear, as kit.core.stats
    assert (stats.max_abs_delta, stats.max_delta_position) == (1.0, 3)
    assert stats.first_delta_position == 1


def test_forced_on_another_continuation_is_refused_at_its_position():
    ref = [greedy_pos(10 + i) for i in range(6)]
    run = list(ref)
    run[4] = greedy_pos(99)
    with pytest.raises(ValueError, match=r"position 4: the run read token 99"):
        forced_stats(run, ref)
    with pytest.raises(ValueError, match="5 forced tokens.* has 6"):
        forced_stats(ref[:5], ref)


def test_top1_agreement_and_top_k_overlap():
    a = pos(1, -0.5, [(1, -0.5), (2, -1.0), (3, -2.0), (4, -3.0), (5, -4.0)])
    b = pos(1, -0.75, [(2, -0.5), (1, -0.75), (3, -2.0), (8, -3.0), (9, -4.0)])
    assert topk_overlap(a, b) == 3 / 5
    stats = forced_stats([a, a], [b, a])
    assert stats.top1_agreement == 0.5
    assert stats.topk_overlap == (0.6 + 1.0) / 2
    assert stats.max_abs_delta == 0.25 and stats.max_delta_position == 0


def test_kl_estimate_on_hand_computed_distributions():
    ln = math.log
    ref = pos(1, ln(0.5), [(1, ln(0.5)), (2, ln(0.25)), (3, ln(0.125))])
    run = pos(1, ln(0.25), [(2, ln(0.5)), (1, ln(0.25)), (3, ln(0.125))])
    # 0.5 ln(0.5/0.25) + 0.25 ln(0.25/0.5) + 0.125 ln(1) = 0.25 ln 2
    assert kl_estimate(run, ref) == (pytest.approx(0.25 * ln(2)), 0)
    assert kl_estimate(ref, ref) == (0.0, 0)
    stats = forced_stats([run, ref], [ref, ref])
    assert stats.kl_mean == pytest.approx(0.125 * ln(2))
    assert stats.kl_max == pytest.approx(0.25 * ln(2))


def test_a_token_missing_from_the_runs_top_k_gives_a_lower_bound():
    ln = math.log
    ref = pos(1, ln(0.5), [(1, ln(0.5)), (2, ln(0.25)), (3, ln(0.125))])
    run = pos(1, ln(0.5), [(1, ln(0.5)), (2, ln(0.25)), (4, ln(0.0625))])
    # token 3 takes the run's smallest top-k logprob, ln(1/16): 0.125 ln(0.125/0.0625)
    kl, missing = kl_estimate(run, ref) or (None, None)
    assert (kl, missing) == (pytest.approx(0.125 * ln(2)), 1)
    # its true logprob is at most that: the true term is at least the estimate
    true_kl = 0.125 * (ln(0.125) - ln(0.03))
    assert kl is not None and kl < true_kl
    assert forced_stats([run], [ref]).kl_missing == 1
    # the run's own (forced) token keeps its known logprob, even outside its top-k
    forced = pos(3, ln(0.03), [(1, ln(0.5)), (2, ln(0.25)), (4, ln(0.0625))], rank=9)
    assert kl_estimate(forced, ref) == (pytest.approx(true_kl), 0)


# --- thresholds and verdicts --------------------------------------------------------------


def stats(**values) -> ForcedStats:
    base = dict(positions=8, mean_abs_delta=0.01, max_abs_delta=0.1, max_delta_position=2)
    return ForcedStats(**{**base, "top1_agreement": 1.0, "kl_mean": 0.001, **values})


PASSED = GreedyCheck(True, 8, 8, 8)


@pytest.mark.parametrize(
    "field, limit, beyond",
    [
        ("mean_abs_delta", 0.05, 0.0500001),
        ("max_abs_delta", 0.25, 0.2500001),
        ("top1_agreement", 0.9, 0.8999999),
        ("kl_mean", 0.01, 0.0100001),
    ],
)
def test_a_value_at_its_limit_is_close_and_beyond_it_diverged(field, limit, beyond):
    thresholds = Thresholds()
    assert verdict(PASSED, stats(**{field: limit}), thresholds) == ("close", None)
    word, reason = verdict(PASSED, stats(**{field: beyond}), thresholds)
    assert word == "diverged"
    assert reason is not None and str(limit) in reason
    assert len(thresholds.breaches(stats(**{field: beyond}))) == 1


def test_the_default_thresholds_are_recorded_with_the_comparison():
    assert Thresholds().to_dict() == {
        "max_mean_abs_delta": 0.05,
        "max_abs_delta": 0.25,
        "min_top1_agreement": 0.9,
        "max_kl_mean": 0.01,
    }
    strict = Thresholds(max_abs_delta=0.01)
    nudged = records()
    nudged[0] = replace(nudged[0], forced=(replace(nudged[0].generated[0], logprob=-0.5),))
    nudged[0] = replace(nudged[0], forced=nudged[0].forced + nudged[0].generated[1:])
    result = compare_runs(nudged, records(), strict)
    assert result.thresholds["max_abs_delta"] == 0.01
    assert result.prompt("a") is not None and result.prompt("a").verdict == "diverged"
    assert result.verdict == "diverged"


def test_a_prompt_on_one_side_only_is_reported():
    run, ref = records()[:2], records()
    ref = [ref[0], ref[2], ref[1]]
    extra = prompt("d", 40)
    result = compare_runs([*run, extra], ref)
    assert [p.id for p in result.prompts] == ["a", "c", "b", "d"]
    assert result.missing_from_run == ("c",)
    assert result.missing_from_reference == ("d",)
    c, d = result.prompt("c"), result.prompt("d")
    assert c is not None and (c.verdict, c.reason) == ("incomplete", "missing from the run")
    assert d is not None and (d.verdict, d.reason) == ("incomplete", "not in the reference")
    assert result.counts == {"identical": 2, "close": 0, "incomplete": 2, "diverged": 0}
    assert result.verdict == "incomplete"
    assert result.positions == 2 * LENGTH


def test_no_forced_part_or_another_continuation_is_incomplete_with_the_reason():
    result = compare_runs(records(forced=False), records())
    assert result.verdict == "incomplete"
    a = result.prompt("a")
    assert a is not None and a.forced is None
    assert a.reason == "the run recorded no teacher-forced logprobs"
    other = records()
    other[1] = replace(other[1], forced=prompt("x", 50).generated)
    b = compare_runs(other, records()).prompt("b")
    assert b is not None and (b.verdict, b.forced, b.forced_against) == ("incomplete", None, None)
    assert b.reason is not None and "position 0: the run read token 50" in b.reason


def test_the_worst_verdict_wins():
    assert worst(["identical", "close"]) == "close"
    assert worst(["identical", "diverged", "incomplete"]) == "diverged"
    assert worst(["close", "incomplete"]) == "incomplete"
    assert worst([]) == "incomplete"


# --- the files ----------------------------------------------------------------------------


def test_a_malformed_line_is_named(tmp_path):
    path = write_numerics_jsonl(tmp_path / "numerics.jsonl", records())
    good = path.read_text().splitlines(keepends=True)

    def fails_with(lines: list[str], pattern: str) -> None:
        path.write_text("".join(lines))
        with pytest.raises(ValueError, match=pattern):
            read_numerics_jsonl(path)

    fails_with([good[0], good[1][:200] + "\n", good[2]], rf"{path} line 2: not JSON")
    no_kind = json.loads(good[2])
    del no_kind["kind"]
    fails_with([*good[:2], json.dumps(no_kind) + "\n"], r'line 3: c: no "kind"')
    bad_pair = json.loads(good[0])
    bad_pair["generated"][4]["top_k"][1] = [1, 2, 3]
    fails_with([json.dumps(bad_pair) + "\n", *good[1:]], r"line 1: a: generated\[4\]\.top_k\[1\]")
    text_token = json.loads(good[0])
    text_token["forced"][0]["token"] = "10"
    fails_with([json.dumps(text_token) + "\n"], r"line 1: a: forced\[0\]\.token: '10' is not")
    fails_with([good[0], "\n", good[0]], r"line 3: id 'a' again \(first on line 1\)")
    fails_with([good[0], "[1, 2]\n"], r"line 2: not a JSON object")
    path.write_bytes(good[0].encode() + b'{"id": "\xff"}\n')
    with pytest.raises(ValueError, match=r"line 2: not UTF-8"):
        read_numerics_jsonl(path)
    path.write_text(good[0] + "\n\n" + good[1])  # blank lines are no prompts
    assert [r.id for r in read_numerics_jsonl(path)] == ["a", "b"]


def test_a_nan_logprob_is_refused_on_writing(tmp_path):
    bad = replace(records()[0], generated=(replace(greedy_pos(1), logprob=math.nan),))
    with pytest.raises(ValueError):
        write_numerics_jsonl(tmp_path / "numerics.jsonl", [bad])
    assert not (tmp_path / "numerics.jsonl").exists()


def test_top_k_reads_back_most_likely_first():
    record = greedy_pos(7).to_dict()
    record["top_k"] = list(reversed(record["top_k"]))
    assert Position.of(record).top_k == greedy_pos(7).top_k


def test_the_results_section_reads_back_as_written():
    other = records()
    other[0] = replace(other[0], generated=(*other[0].generated[:3], greedy_pos(555)))
    result = compare_runs(other, records(forced=False) + [prompt("e", 60)], reference_label="r")
    text = jsonio.dumps(result.to_dict())  # strict JSON: no NaN anywhere
    back = NumericsComparison.of(json.loads(text))
    assert back == result
    a = back.prompt("a") if back else None
    assert a is not None and a.verdict == "diverged" and a.first_divergence == 3
    assert a.greedy is not None and a.greedy.run_rank_in_ref is None
    assert NumericsComparison.of(None) is None
    assert NumericsComparison.of({}) is None


def test_the_reference_forced_pass_is_what_a_forced_run_is_compared_with():
    """Prefill and decode compute logprobs by other kernels: the same engine twice is
    identical prefill against prefill, though its forced pass differs from its decode."""
    ref = prompt("a", 10)
    prefill = tuple(greedy_pos(p.token, p.logprob - 0.125) for p in ref.generated)
    ref = replace(ref, forced=prefill)
    result = compare_runs([ref], [ref])
    a = result.prompt("a")
    assert a is not None and (a.verdict, a.forced_against) == ("identical", "forced")
    # a reference forced on another continuation: its generated tokens instead, where
    # the same engine's prefill-against-decode difference counts
    elsewhere = replace(ref, forced=prompt("x", 50).generated)
    a = compare_runs([ref], [elsewhere]).prompt("a")
    assert a is not None and (a.verdict, a.forced_against) == ("diverged", "generated")
    assert a.forced is not None and a.forced.mean_abs_delta == 0.125
    assert a.reason is not None and a.reason.startswith("mean |Δ logprob| 0.125 > 0.05")


def test_passes_cut_short_by_re_tokenization_are_compared_where_both_have_positions():
    """vLLM's Phi3V path may force only the first tokens of a continuation (it re-tokenizes
    prompts with images), on either side and at another place on each: the positions both
    passes have are compared, and the reason says how many."""
    ref = prompt("a", 10)
    short_ref = replace(ref, forced=ref.generated[:5])  # the reference's own pass cut at 5
    for run_forced, compared in ((ref.generated, 5), (ref.generated[:3], 3)):
        a = compare_runs([replace(ref, forced=run_forced)], [short_ref]).prompt("a")
        assert a is not None and (a.verdict, a.forced_against) == ("identical", "forced")
        assert a.forced is not None and a.forced.positions == compared
        assert a.reason == f"teacher-forced on the first {compared} of {LENGTH} tokens " + (
            "(the engine re-tokenized the rest of the continuation)"
        )
