"""What runs show: escaped HTML and Markdown pieces, figures, notebook outputs, rendered reports.

Layer 3, beside kit.engines, above kit.models, kit.records and kit.core; it never imports
vLLM, an engine or kit.runs. Modules: html (escaping, tables, text blocks), markdown (pipe
tables and text for report.md), figures (PNG with alt text), display (what notebooks show,
in both views), render (an executed notebook as report.html and report.md).
"""
