"""The performance notebook: a grid of points timed like the vendor's table, with roofline bounds.

Layer 5, one of the notebooks' capabilities (independent of each other), above kit.runs.
Modules: params (the grid, planned points), grid (parsing and fit checks), workload
(exact-length prompts), sweep (each point's warm-up, probe and timed batches), batches (one
timed batch and its scheduling), columns (vendor and standard columns), arrivals (a server
sweep's load), roofline (lower bounds), point_records (a point as its results.json record),
tables and plots (the report).
"""
