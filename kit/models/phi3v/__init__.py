"""Phi-3.5-vision-instruct: its family (prompt, placeholders, token count, image tower), the
image processor the kit copies into the checkpoints it builds, and those builds (the tiny
random-weight model ``smoke``, the weightless full-size ``phi35v-dummy``)."""
