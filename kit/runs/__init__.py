"""A run: its folder and record, its parameters, and executing its notebook with papermill.

Layer 4, above kit.engines and kit.report, below the notebooks' capabilities. Modules: record
(the run record a notebook keeps), parameters (merging, pre-flight, ``parameters.yaml``),
runner (``python -m kit run``), sections (progress lines per notebook section), signals
(SIGINT and SIGTERM end a run as interrupted), environment (provenance), index
(``outputs/index.html``).
"""
