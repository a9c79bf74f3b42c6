"""Common prefix and first divergence of two generated texts (kit.compare.agreement), on made-up
texts and on the vendor's own S60 and L40s answers."""

from __future__ import annotations

import re
from pathlib import Path

from kit.compare.agreement import (
    LabelledText,
    common_prefix_length,
    compare_texts,
    highlighted_html,
    highlighted_markdown,
    pair_rows,
    words,
)
from kit.records.references import load_references

DOC = Path(__file__).resolve().parents[1] / "docs" / "vendor-reference.md"


def char_tokens(text: str) -> list[int]:
    """A stand-in tokenizer: one token per character."""
    return [ord(c) for c in text]


def test_common_prefix_length():
    assert common_prefix_length([], []) == 0
    assert common_prefix_length([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2
    assert common_prefix_length("abc", "xbc") == 0


def test_words_split_on_any_whitespace():
    assert words(" a  b\n\n\nc\t") == ["a", "b", "c"]


def test_identical_texts():
    a = compare_texts("The robot stands.", "The robot stands.", char_tokens, chr)
    assert a.identical and a.words.identical and a.tokens.identical
    assert a.divergence_a is None and a.divergence_b is None
    assert a.describe().startswith("identical (3 words)")


def test_first_divergence_in_words_and_tokens():
    a = compare_texts("The robot is gray.", "The robot was gray.", char_tokens, chr)
    assert (a.words.common, a.words.first_a, a.words.first_b) == (2, "is", "was")
    # characters: "The robot " is 10, then "i" vs "w"
    assert (a.tokens.common, a.tokens.first_a, a.tokens.first_b) == (10, "i", "w")
    assert a.divergence_a == 10 and a.divergence_b == 10
    assert "'is' vs 'was'" in a.describe()


def test_one_text_is_a_prefix_of_the_other():
    a = compare_texts("The robot", "The robot stands", None)
    assert a.words.common == 2 and a.words.first_a is None and a.words.first_b == "stands"
    assert a.divergence_a is None and a.divergence_b == len("The robot ")
    assert "(end) vs 'stands'" in a.describe()
    assert a.tokens is None and "no tokenizer" in a.describe()


def test_whitespace_only_differences_do_not_count_as_words():
    a = compare_texts("A  b\n\nc", "A b c", char_tokens, chr)
    assert a.words.identical
    assert not a.tokens.identical  # the tokens see the whitespace


def vendor_answers() -> dict[str, str]:
    return load_references().demo.answers


def test_vendor_answers_are_the_documents_text():
    """params/references.yaml holds the answers verbatim as docs/vendor-reference.md prints
    them after "Generated text: " (one place for the data, checked against the page)."""
    prefix = "Prompt: 'What is the content of this image in details?', Generated text: "
    blocks = re.findall(r"```text\n(.*?)\n```", DOC.read_text(), re.S)
    assert [b[len(prefix) :] for b in blocks] == list(vendor_answers().values())


def test_the_two_vendor_answers_share_about_four_paragraphs():
    s60, l40s = vendor_answers()["S60"], vendor_answers()["L40s"]
    a = compare_texts(s60, l40s)
    assert (a.words.first_a, a.words.first_b) == ("are", "suggest")
    shared = s60[: a.divergence_a]
    assert shared.endswith("The relative positions of the objects ")
    assert shared == l40s[: a.divergence_b]
    paragraphs = [p for p in re.split(r"\n\s*\n", shared) if p.strip()]
    assert len(paragraphs) == 4  # three whole paragraphs and the start of the fourth
    assert a.words.common == len(words(shared)) == 146


def test_highlight_escapes_and_marks_the_first_differing_word():
    text = "A <b>robot</b> & a rock"
    html = highlighted_html(text, text.index("&"))
    assert "<b>" not in html and "&lt;b&gt;robot&lt;/b&gt;" in html
    assert "<mark>&amp;</mark>" in html
    assert '<span class="kit-after"> a rock</span>' in html
    plain = highlighted_html(text, None)
    assert "<mark>" not in plain and "&lt;b&gt;" in plain
    assert "⟦& a rock" in highlighted_markdown(text, text.index("&"))


def test_pair_rows_cover_every_pair():
    texts = [LabelledText("x", "a b c"), LabelledText("y", "a b d"), LabelledText("z", "a")]
    rows = pair_rows(texts)
    assert [(r["a"], r["b"], r["common words"]) for r in rows] == [
        ("x", "y", 2),
        ("x", "z", 1),
        ("y", "z", 1),
    ]
    assert rows[0]["first difference"] == "'c' vs 'd'"
    assert rows[0]["common tokens"] is None  # no tokenizer given
