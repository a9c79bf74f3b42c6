"""``python -m kit models``: every name the kit knows, with its family, kind and whether
this machine's vLLM can load it."""

from __future__ import annotations

import dataclasses
import json

from kit.models.phi3v.family import PHI3V
from kit.models.registry import NAMED_MODELS

from .conftest import kit_in_process


def test_models_json_lists_every_named_model_with_family_kind_and_runs_here():
    proc = kit_in_process("models", "--json")  # stdout only: vLLM's import logs go to stderr
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert [m["name"] for m in listing] == list(NAMED_MODELS)
    by_name = {m["name"]: m for m in listing}
    assert by_name["smoke"]["family"] == "phi3v" and by_name["smoke"]["kind"] == "tiny"
    assert by_name["phi35v-dummy"]["kind"] == "dummy"
    assert by_name["smoke"]["runs_here"] is True  # vLLM's phi3v module imports here
    plain = kit_in_process("models")
    assert plain.returncode == 0 and "smoke: phi3v, tiny, runs here:" in plain.stdout


def test_a_family_whose_vllm_module_cannot_load_does_not_run_here():
    assert PHI3V.runs_here() is True
    assert dataclasses.replace(PHI3V, vllm_module="no_such_module").runs_here() is False
