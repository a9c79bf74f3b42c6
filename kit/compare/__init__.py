"""The compare notebook: runs from several devices side by side, against a baseline.

Layer 5, one of the notebooks' capabilities (independent of each other), above kit.runs; it
reads runs from their results.json only and never imports vLLM, an engine or kit.runs.
Modules: inputs (the runs compared), table (the vendor-style table with ratios and flags),
agreement (how far two generated texts agree), numerics (each numerics run's verdict
against its reference), plots (its figures), params (the notebook's parameters).
"""
