"""The explorer notebook: an interactive widget on a live engine, for JupyterLab.

Layer 5, one of the notebooks' capabilities (independent of each other), above kit.runs.
Modules: explorer (the widget and the engine behind it), requests (one Generate click: images,
prompt, checks, answer), params (the notebook's parameters).
"""
