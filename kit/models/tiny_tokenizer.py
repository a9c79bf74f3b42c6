"""The tokenizer of the kit's tiny models: a byte-level BPE trained here on seeded
pseudo-text (so random token ids decode to visible words) with common chat specials.

Trained once per seed into the kit's cache (about 45 s on a 2-core machine) and shared by
every family's tiny model; a family adds its own special tokens (image placeholders, turn
markers) on top, after these ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kit.core.files import cache_root
from kit.models.builds import ensure_built

TOKENIZER_FILE = "tokenizer.json"
BUILDER_VERSION = 1

TOKENIZER_VOCAB = 32000

BASE_SPECIALS = [
    "<unk>",
    "<s>",
    "</s>",
    "<|endoftext|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "<|system|>",
]


def train_tokenizer(seed: int):
    """Byte-level BPE trained on seeded pseudo-text, so random ids decode to visible text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        min_frequency=2,
        special_tokens=BASE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_pseudo_corpus(seed), trainer=trainer)
    return tokenizer


def special_ids(tokenizer: Any) -> dict[str, int]:
    """The ids of the chat specials, which every tokenizer built here holds."""
    ids = {token: tokenizer.token_to_id(token) for token in BASE_SPECIALS}
    missing = [token for token, i in ids.items() if i is None]
    if missing:
        raise ValueError(f"the tokenizer lacks the special tokens {missing}")
    return {token: int(i) for token, i in ids.items()}


def _pseudo_corpus(seed: int, lines: int = 60000):
    """Zipf-distributed pseudo-words from syllables, plus real English for the prompts."""
    rng = np.random.default_rng(seed)
    onsets = list("bcdfghjklmnprstvwz") + ["ch", "sh", "th", "st", "tr", "pl", "gr", ""]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "ng", "ck"]
    syllables = [o + v + c for o in onsets for v in vowels for c in codas]
    words = []
    for _ in range(60000):
        parts = rng.integers(1, 5)
        words.append("".join(syllables[i] for i in rng.integers(0, len(syllables), parts)))
    ranks = np.arange(1, len(words) + 1)
    weights = 1.0 / ranks**1.05
    weights /= weights.sum()
    english = (
        "What is the content of this image in details? The image shows a robot, a rocky "
        "surface and a starry night sky. Answer with the option's letter from the given "
        "choices directly. Answer the question using a single word or phrase. 0 1 2 3 4 5 "
        "6 7 8 9 10 100 1000 (A) (B) (C) (D) (E) A B C D E, . ! ? ; : ' \" hi"
    )
    for _ in range(lines):
        picks = rng.choice(len(words), size=int(rng.integers(4, 16)), p=weights)
        sentence = " ".join(words[i] for i in picks)
        yield sentence.capitalize() + rng.choice([".", ",", "?", "!", ";"])
        if rng.random() < 0.05:
            yield english


def ensure_tokenizer(seed: int) -> Path:
    """The trained tokenizer's file, trained into the kit's cache on first use."""

    def build(dest: Path) -> None:
        train_tokenizer(seed).save(str(dest / TOKENIZER_FILE))

    folder = ensure_built(
        cache_root() / f"tiny-tokenizer-v{BUILDER_VERSION}-seed{seed}",
        build,
        {"builder_version": BUILDER_VERSION, "seed": seed},
    )
    return folder / TOKENIZER_FILE


def base_tokenizer(seed: int) -> Any:
    """A fresh copy of the trained tokenizer (``tokenizers.Tokenizer``), to add to."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(ensure_tokenizer(seed)))
