"""The download notebook: pinned, verified snapshots of the model and of MMMU, and ``kit verify``.

Layer 5, one of the notebooks' capabilities (independent of each other), above kit.runs.
Modules: params (source, repositories, pins, folders), plan (what is to fetch, before
anything is written), fetch (fetching, checking, ``manifest.json``), hub_clients (the Hugging
Face Hub and ModelScope clients), progress (what a download prints), verify
(``python -m kit verify``).
"""
