"""The kit's foundation: small pieces every other package needs, with no kit imports of its own.

Layer 1, the bottom of docs/architecture.md: every package may import it and it imports no
other kit package. Modules: params (typed parameters, ``ParameterError``), jsonio (strict
JSON), progress (the one progress printer), stats and intervals (distributions, Wilson and
Student-t intervals), processes and reaper (a run's processes end with it), files (writable
checks, cache folder, digests, locks), images and image_io (images as vLLM prepares them),
pauses (hold points for fault tests), devices (device names compared), paths (the kit's files).
"""
