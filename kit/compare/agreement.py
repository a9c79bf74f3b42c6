"""How far two generated texts agree: the common prefix and the first divergence.

Greedy decoding on two devices gives the same text until the two meet a near-tie between
two tokens that their kernels round differently; from the first differing token on the
texts go separate ways. The length of the common prefix is therefore the measure of
numerical agreement: the vendor's own S60 and L40s answers share about four paragraphs
(docs/vendor-reference.md, section 4, "Demo answers").

Counted in words (whitespace-split, needs nothing) and, where a tokenizer is given, in the
model's tokens. The HTML rendering escapes the texts (they come from a model) and marks
the first differing word.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kit.report.html import TABLE_STYLE, escape, text_block
from kit.report.markdown import markdown_text

WORD = re.compile(r"\S+")


#: A tokenizer as the kit uses one: text -> token ids (no special tokens).
Encode = Callable[[str], Sequence[int]]


@dataclass(frozen=True)
class PrefixAgreement:
    """The common prefix of two unit sequences (words or tokens)."""

    unit: str  # "words" or "tokens"
    common: int  # leading units the two share
    length_a: int
    length_b: int
    first_a: str | None  # a's first unit after the common prefix (None: a ended there)
    first_b: str | None

    @property
    def identical(self) -> bool:
        return self.common == self.length_a == self.length_b

    def describe(self) -> str:
        """``identical (212 words)`` or ``212 of 230 / 241 words, then "are" vs "suggest"``."""
        if self.identical:
            return f"identical ({self.common} {self.unit})"
        first = f"{_shown(self.first_a)} vs {_shown(self.first_b)}"
        return f"{self.common} of {self.length_a} / {self.length_b} {self.unit}, then {first}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "identical": self.identical}


SHOWN_CHARACTERS = 24


def _shown(unit: str | None) -> str:
    """A unit as shown in a sentence: quoted, cut when long (a word of noise can be long)."""
    if unit is None:
        return "(end)"
    if len(unit) > SHOWN_CHARACTERS:
        return repr(unit[:SHOWN_CHARACTERS]) + "…"
    return repr(unit)


def common_prefix_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many leading items ``a`` and ``b`` share."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def prefix_agreement(a: Sequence[Any], b: Sequence[Any], unit: str) -> PrefixAgreement:
    common = common_prefix_length(a, b)
    return PrefixAgreement(
        unit=unit,
        common=common,
        length_a=len(a),
        length_b=len(b),
        first_a=str(a[common]) if common < len(a) else None,
        first_b=str(b[common]) if common < len(b) else None,
    )


def words(text: str) -> list[str]:
    return WORD.findall(text)


def word_offsets(text: str) -> list[int]:
    """Where each word of ``text`` starts (characters)."""
    return [m.start() for m in WORD.finditer(text)]


@dataclass(frozen=True)
class TextAgreement:
    """Two texts compared in words and (with a tokenizer) in tokens, and where each text
    stops agreeing (character offsets of the first differing word; None when identical or
    the text ended)."""

    words: PrefixAgreement
    tokens: PrefixAgreement | None  # None without a tokenizer
    divergence_a: int | None
    divergence_b: int | None
    token_note: str = ""  # why tokens are missing

    @property
    def identical(self) -> bool:
        return self.words.identical and (self.tokens is None or self.tokens.identical)

    def describe(self) -> str:
        parts = [self.words.describe()]
        if self.tokens is not None:
            parts.append(self.tokens.describe())
        elif self.token_note:
            parts.append(self.token_note)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "words": self.words.to_dict(),
            "tokens": None if self.tokens is None else self.tokens.to_dict(),
            "divergence_a": self.divergence_a,
            "divergence_b": self.divergence_b,
            "identical": self.identical,
            "token_note": self.token_note,
        }


def compare_texts(
    a: str, b: str, encode: Encode | None = None, decode: Callable[[int], str] | None = None
) -> TextAgreement:
    """``a`` against ``b``: common prefix in words, and in tokens when ``encode`` is given
    (``decode`` turns a token id into its text for the "first differing token")."""
    word_a, word_b = words(a), words(b)
    by_words = prefix_agreement(word_a, word_b, "words")
    tokens, note = None, "tokens: no tokenizer given"
    if encode is not None:
        ids_a, ids_b = list(encode(a)), list(encode(b))
        common = common_prefix_length(ids_a, ids_b)
        show = decode or str
        tokens = PrefixAgreement(
            unit="tokens",
            common=common,
            length_a=len(ids_a),
            length_b=len(ids_b),
            first_a=show(ids_a[common]) if common < len(ids_a) else None,
            first_b=show(ids_b[common]) if common < len(ids_b) else None,
        )
        note = ""

    def offset(text: str, count: int, total: int) -> int | None:
        return word_offsets(text)[count] if count < total else None

    identical = by_words.identical
    return TextAgreement(
        words=by_words,
        tokens=tokens,
        divergence_a=None if identical else offset(a, by_words.common, len(word_a)),
        divergence_b=None if identical else offset(b, by_words.common, len(word_b)),
        token_note=note,
    )


@dataclass(frozen=True)
class Tokenizer:
    """A model's tokenizer reduced to what the comparison needs."""

    encode: Encode
    decode: Callable[[int], str]
    source: str


def load_tokenizer(model_path: str | None) -> Tokenizer | None:
    """The tokenizer of a local model folder, or None (no folder, not loadable). Never runs
    the checkpoint's Python files: the tokenizer needs none."""
    from pathlib import Path

    if not model_path or not Path(model_path).is_dir():
        return None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_path), trust_remote_code=False)
    except Exception:  # no tokenizer files, a class that needs remote code, ...
        return None
    return Tokenizer(
        encode=lambda text: tokenizer.encode(text, add_special_tokens=False),
        decode=lambda token: str(tokenizer.decode([token])),
        source=str(model_path),
    )


_MARK_STYLE = (
    "<style>.kit-agree mark{background:#ffd27a;padding:0 2px}"
    ".kit-agree .kit-after{color:#777}</style>"
)


def highlighted_html(text: str, divergence: int | None) -> str:
    """``text`` escaped, as a kit text block: the agreeing part plain, the first differing
    word marked, the rest greyed. ``divergence`` None: the text agrees throughout."""
    if divergence is None or divergence >= len(text):
        return text_block(text)
    match = WORD.match(text, divergence)
    end = match.end() if match else divergence
    return (
        f'{TABLE_STYLE}{_MARK_STYLE}<div class="kit-text kit-agree">'
        f"{escape(text[:divergence])}<mark>{escape(text[divergence:end])}</mark>"
        f'<span class="kit-after">{escape(text[end:])}</span></div>'
    )


def highlighted_markdown(text: str, divergence: int | None) -> str:
    """The same for report.md: a verbatim block, with a ``⟦`` marker where it diverges."""
    if divergence is None or divergence >= len(text):
        return markdown_text(text)
    return markdown_text(f"{text[:divergence]}⟦{text[divergence:]}")


@dataclass(frozen=True)
class LabelledText:
    label: str
    text: str
    note: str = ""  # e.g. the image and settings it was generated with


def pair_rows(
    texts: Iterable[LabelledText], tokenizer: Tokenizer | None = None
) -> list[dict[str, Any]]:
    """One row per pair of texts: common prefix in words and tokens, first difference."""
    texts = list(texts)
    rows = []
    for a, b in itertools.combinations(texts, 2):
        agreement = compare_texts(
            a.text,
            b.text,
            tokenizer.encode if tokenizer else None,
            tokenizer.decode if tokenizer else None,
        )
        rows.append(agreement_row(a, b, agreement))
    return rows


def agreement_row(a: LabelledText, b: LabelledText, agreement: TextAgreement) -> dict[str, Any]:
    w, t = agreement.words, agreement.tokens
    differs = (
        "identical"
        if agreement.identical
        else f"{_shown(w.first_a)} vs {_shown(w.first_b)}"
        + (f" (tokens {_shown(t.first_a)} vs {_shown(t.first_b)})" if t and not t.identical else "")
    )
    return {
        "a": a.label,
        "b": b.label,
        "common words": w.common,
        "words (a / b)": f"{w.length_a} / {w.length_b}",
        "common tokens": None if t is None else t.common,
        "tokens (a / b)": None if t is None else f"{t.length_a} / {t.length_b}",
        "first difference": differs,
        "notes": "; ".join(n for n in (a.note, b.note) if n),
    }


def demo_texts(runs: Iterable[Any], vendor: Mapping[str, str] | None = None) -> list[LabelledText]:
    """The demo answers of ``runs`` (kit.records.results.RunRecord) and the vendor's answers
    (device -> text), labelled; runs without a demo answer are skipped."""
    out = []
    for run in runs:
        demo = getattr(run, "demo", None)
        if demo is None or demo.generated_text is None:
            continue
        parameters = run.parameters
        image = ", ".join(map(str, parameters.get("image") or [])) or "?"
        note = f"{run.device}: image {image}, max_output_len {parameters.get('max_output_len')}"
        label = run.label or run.device
        out.append(LabelledText(f"{label} ({run.folder.name})", demo.generated_text, note))
    for device, text in (vendor or {}).items():
        out.append(LabelledText(f"{device} (vendor)", text, f"{device}: the vendor's image"))
    return out


def demo_agreement(
    runs: Iterable[Any], vendor: Mapping[str, str] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Every pair of demo answers among ``runs`` and the vendor's, and a note saying whose
    tokenizer counted the tokens (the first demo run's model folder, when it is here)."""
    runs = [r for r in runs if getattr(r, "demo", None) is not None]
    texts = demo_texts(runs, vendor)
    tokenizer = load_tokenizer(runs[0].environment.model_files.path) if runs else None
    note = (
        f"tokens counted with the tokenizer of {tokenizer.source}"
        if tokenizer
        else "tokens not counted: no run's model folder is on this machine"
    )
    return pair_rows(texts, tokenizer), note
