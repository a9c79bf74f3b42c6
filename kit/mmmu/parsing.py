"""The MMMU protocol's response parsing as pure functions: official and vendor-strict rules.

Part of the MMMU protocol (MMMU-Benchmark/MMMU, eval/*_utils.py), deterministic and
engine-free: what a free-text response answers, and whether that is the gold.

- Official multiple-choice parsing: a letter is read from "(X)", else " X ", else (responses
  of more than 5 words) an option's text; of several candidates the one found last wins, and
  with none a letter is drawn from the caller's ``random.Random``.
- Official open parsing: the shortest tail after an answer indicator on each line, plus every
  number in it, normalised (numbers rounded to 2 decimals, text lower-cased); a text gold
  must be a substring of a text prediction, a number gold equal to a number prediction.
- The vendor's multiple-choice "parse" (Enflame vllm-gcu, benchmark_vision_language.py
  --acc): the response without surrounding whitespace, which must equal the gold letter.

The official code's quirks are kept where they change a verdict (edge punctuation stripped
one character at a time, ties between candidates going to the earlier letter).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kit.mmmu.questions import Gold

_EDGE_PUNCTUATION = (",", ".", "!", "?", ";", ":", "'")


def parse_multi_choice(
    response: str,
    all_choices: Sequence[str],
    index2ans: Mapping[str, str],
    rng: random.Random,
) -> tuple[str, bool]:
    """Return (letter, used_fallback). Candidates: "(X)", else " X ", else (responses of more
    than 5 words) option texts; several -> the one found last; none -> rng.choice."""
    if not all_choices:
        return "", False
    text = response
    for ch in _EDGE_PUNCTUATION:  # one character at a time, in this order, like the original
        text = text.strip(ch)
    text = f" {text} "

    bracketed = [c for c in all_choices if f"({c})" in text]
    if bracketed:
        return _last_found(bracketed, lambda c: text.rfind(f"({c})")), False
    spaced = [c for c in all_choices if f" {c} " in text]
    if spaced:
        return _last_found(spaced, lambda c: text.rfind(f" {c} ")), False
    if len(text.split()) > 5:
        lowered = text.lower()
        by_text = [c for c, ans in index2ans.items() if ans.lower() in lowered]
        if by_text:
            return _last_found(by_text, lambda c: lowered.rfind(index2ans[c].lower())), False
    return rng.choice(list(all_choices)), True


def _last_found(candidates: list[str], position: Any) -> str:
    """The candidate whose match starts last; ties go to the earlier letter (np.argmax)."""
    best = candidates[0]
    best_pos = position(best)
    for c in candidates[1:]:
        pos = position(c)
        if pos > best_pos:
            best, best_pos = c, pos
    return best


def check_is_number(s: str) -> bool:
    """True when float() accepts the string once commas are removed."""
    try:
        float(s.replace(",", ""))
    except ValueError:
        return False
    return True


def normalize_str(s: str) -> list[str | float]:
    """Numbers -> [round(float, 2)]; text -> [lower]; a single character c -> [" c", "c "]
    so that a one-letter answer cannot match inside any word."""
    s = s.strip()
    if check_is_number(s):
        return [round(float(s.replace(",", "")), 2)]
    s = s.lower()
    if len(s) == 1:
        return [" " + s, s + " "]
    return [s]


_NUM_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")

_NUM_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")

_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def extract_numbers(s: str) -> list[str]:
    """All numbers in the text: comma-grouped, then scientific, then simple (official order)."""
    return _NUM_COMMAS.findall(s) + _NUM_SCIENTIFIC.findall(s) + _NUM_SIMPLE.findall(s)


_KEY_INDICATORS = (
    "could be ",
    "so ",
    "is ",
    "thus ",
    "therefore ",
    "final ",
    "answer ",
    "result ",
)

_TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}


def key_subresponses(response: str) -> list[str]:
    """Per line, the shortest tail after an answer indicator ("=" only on the last line);
    the whole (lower-cased) response when no line has one."""
    text = response.strip().strip(".").lower()
    # The official split is r"\.\s(?=[A-Z])|\n" on lower-cased text: only newlines can match.
    lines = text.split("\n")
    keys: list[str] = []
    for i, line in enumerate(lines):
        indicators = _KEY_INDICATORS + (("=",) if i == len(lines) - 1 else ())
        shortest: str | None = None
        for ind in indicators:
            if ind in line:
                tail = line.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            keys.append(shortest)
    return keys or [text]


def parse_open(response: str) -> list[str | float]:
    """Normalized candidate answers: key sub-responses plus every number in them, unique."""
    keys = key_subresponses(response)
    raw = list(keys)
    for key in keys:
        raw.extend(extract_numbers(key))
    normalized = [v for item in raw for v in normalize_str(item)]
    return list(dict.fromkeys(normalized))


def eval_multi_choice(gold: Gold, pred: str) -> bool:
    """Exact letter match, or membership when the gold is a list."""
    if isinstance(gold, list):
        return pred in gold
    return gold == pred


def eval_open(gold: Gold, pred: Sequence[str | float]) -> bool:
    """A text prediction is right if a text gold is a substring of it; a number prediction
    if it equals a gold number (both rounded to 2 decimals)."""
    golds = [
        g for item in (gold if isinstance(gold, list) else [gold]) for g in normalize_str(item)
    ]
    for p in pred:
        if isinstance(p, str):
            if any(isinstance(g, str) and g in p for g in golds):
                return True
        elif p in golds:
            return True
    return False


def vendor_multi_choice(response: str) -> str:
    """The vendor's multiple-choice "parse": the response without surrounding whitespace
    (its Phi3VImageInput.dataset_pred_post_process); the gold must equal it exactly."""
    return response.strip()
