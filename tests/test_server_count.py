"""``perf.server_count``: what a server the kit did not start counted for the run's images,
as results.json keeps it and the report says it (the measurement itself: test_server_faults)."""

from __future__ import annotations

import json

import pytest

from kit.records.base import ResultsError
from kit.records.perf import PerfSection
from kit.records.server_count import ServerCount

COUNT = ServerCount(((336, 336),), 790, 346, 313, "num_crops 1", "num_crops 4")


def test_it_reads_back_as_written_and_says_what_was_learned():
    section = PerfSection("CPU", (), COUNT)
    read = PerfSection.of(json.loads(json.dumps(section.to_dict())))
    assert read.server_count == COUNT and read.server_count.offset == 444
    assert COUNT.describe() == (
        "The server counts 757 tokens for 336x336 where the kit counts 313 with num_crops 1: "
        "its setting matches num_crops 4. Every prompt is built to input_len by the server's "
        "count."
    )
    same = ServerCount(((336, 336),), 346, 346, 313, "the processor's own settings")
    assert same.describe() == (
        "The server counts 313 tokens for 336x336, as the kit does with the processor's own "
        "settings."
    )
    assert PerfSection.of({"device": "CPU", "points": []}).server_count is None  # older runs


@pytest.mark.parametrize(
    "broken",
    [
        {**COUNT.to_dict(), "server_tokens": "many"},
        {"kit_tokens": 1},  # no server_tokens
        {**COUNT.to_dict(), "image_sizes": [1, 2]},
    ],
    ids=["not a number", "missing", "odd sizes"],
)
def test_a_malformed_one_is_a_results_error(broken):
    """So kit index lists the run under "could not be read" and goes on."""
    with pytest.raises(ResultsError, match="perf.server_count is malformed"):
        ServerCount.of(broken)
