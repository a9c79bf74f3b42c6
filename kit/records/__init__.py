"""The files the kit writes and reads back: results.json, one class per section, and manifests.

Layer 2, beside kit.models and above kit.core; like kit.report and kit.compare it never
imports vLLM, an engine or kit.runs, so a results.json reads wherever it was copied to.
Modules: results (the envelope, schema versions, reading and writing), base (what section
classes share), engine, environment, perf, mmmu, demo, compare, download, reproduce (one
section each), references (``params/references.yaml``), summary (a run's headline),
manifest (a download's ``manifest.json`` and its checks).
"""
