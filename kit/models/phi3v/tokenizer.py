"""The tiny model's tokenizer: a byte-level BPE trained here on seeded pseudo-text (so
random token ids decode to visible words), with the Phi-3 chat specials and template.
``<|image_1|>`` is deliberately not a special token: vLLM matches its token sequence."""

from __future__ import annotations

from typing import Any

import numpy as np

TOKENIZER_VOCAB = 32000

SPECIAL_TOKENS = [
    "<unk>",
    "<s>",
    "</s>",
    "<|endoftext|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "<|system|>",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}"
    "{{ '<|assistant|>\\n' }}"
    "{% endif %}"
)


def train_tokenizer(seed: int):
    """Byte-level BPE trained on seeded pseudo-text, so random ids decode to visible text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_pseudo_corpus(seed), trainer=trainer)
    return tokenizer


def special_ids(tokenizer: Any) -> dict[str, int]:
    """The ids of the chat specials, which every tokenizer built here holds."""
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
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
