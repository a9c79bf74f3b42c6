"""The backends a run uses: vLLM in the kernel or an OpenAI-compatible server, behind one interface.

Layer 3, beside kit.report, above kit.models, kit.records and kit.core; notebooks never
branch on where the model runs. Modules: types (requests, completions, the ``Backend``
protocol), registry (backends by name), params (``EngineParams`` and the plan made before an
engine starts), devices, scheduling, versions (device defaults, scheduling modes, the vLLM
version), offline (``vllm.LLM`` in the kernel), served, server_process, openai_client (the
server backend), timing (per-request timing), prometheus (the server's histograms), logs
(``engine.log`` and root causes).
"""
