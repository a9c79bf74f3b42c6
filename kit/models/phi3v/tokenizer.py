"""The Phi-3 chat template of the tiny model (its tokenizer: kit.models.tiny_tokenizer).
``<|image_1|>`` is deliberately not a special token: vLLM matches its token sequence."""

from __future__ import annotations

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}"
    "{{ '<|assistant|>\\n' }}"
    "{% endif %}"
)
