"""The demo notebook: one prompt about one or more images, answered with its timing.

Layer 5, one of the notebooks' capabilities (independent of each other), above kit.runs.
Modules: answer (the request, its warm-up and its checks), params (the notebook's parameters).
"""
