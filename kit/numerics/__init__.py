"""Token-level numerics: a run's greedy tokens and logprobs against a reference run's, the
way vLLM checks its own models, and teacher-forced on the reference's tokens so that one
early difference cannot cascade.

Layer 5, one of the notebooks' capabilities (independent of each other), above kit.runs.
Modules: thresholds (what "close" allows, in one place), compare (the comparison as pure
functions, into kit.records.numerics' section).
"""
