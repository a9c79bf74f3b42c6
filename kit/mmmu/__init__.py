"""The MMMU notebook and ``kit mmmu-score``: the official protocol, the vendor's scoring beside it.

Layer 5, one of the notebooks' capabilities (independent of each other), above kit.runs.
Modules: questions, parsing, scoring (the protocol as pure functions), dataset (the parquet
split), fixture (a synthetic MMMU folder), params (the notebook's parameters), answer
(batched, resumable answering), predictions (``predictions.jsonl``), outcome (scoring a run,
its deviations from the vendor's), section (the ``mmmu`` section), report (tables, charts,
gallery), cli (``python -m kit mmmu-score``).
"""
