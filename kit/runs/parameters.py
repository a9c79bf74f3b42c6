"""A run's parameters: merged as papermill merges them (``-f`` < ``-y`` < ``-p`` < ``-r``),
checked against the notebook's parameter dataclass and pre-flighted (model folder, images,
engine arguments) before a run folder is made or an engine is started; kept in the run
folder's ``parameters.yaml`` (read and written here only) for ``--resume``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.core.files import write_atomic
from kit.core.params import ParameterError, build

PARAMETERS_FILE = "parameters.yaml"


@dataclass
class RunRequest:
    notebook: str  # notebooks/<notebook>.ipynb
    schema: type  # its parameter dataclass
    files: list[str] = field(default_factory=list)
    yaml_strings: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    raw_params: list[tuple[str, str]] = field(default_factory=list)
    resume: Path | None = None  # an earlier run folder to continue in place


def load_yaml_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ParameterError(f"Parameter file {path!r} does not exist (option -f).")
    try:
        data = yaml.load(file.read_text(), Loader=_loader()) or {}
    except ParameterError as exc:
        raise ParameterError(f"Parameter file {path!r} (option -f): {exc}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"Parameter file {path!r} must hold a mapping of name: value.")
    return data


def merge_parameters(request: RunRequest) -> dict[str, Any]:
    from papermill.cli import _resolve_type

    merged: dict[str, Any] = {}
    for path in request.files:
        merged.update(load_yaml_file(path))
    for text in request.yaml_strings:
        merged.update(yaml.load(text, Loader=_loader()) or {})
    for name, value in request.params:
        merged[name] = _resolve_type(value)
    for name, value in request.raw_params:
        merged[name] = value
    return merged


def preflight(schema: type, values: dict[str, Any]) -> Any:
    """Everything that can be checked without an engine: types, names, files, engine_args."""
    params = build(schema, values)
    # vLLM, imported by the checks, warns before it configures its logging: the run's
    # engine.log gets those lines; the terminal should not
    vllm_logger = logging.getLogger("vllm")
    if not vllm_logger.handlers:
        vllm_logger.addHandler(logging.NullHandler())
    preflight_hook = getattr(params, "preflight", None)
    if preflight_hook is not None:
        preflight_hook()
    return params


def read_parameters(folder: Path) -> dict[str, Any] | None:
    """The parameters a run folder was started with (None: not a run folder)."""
    saved = folder / PARAMETERS_FILE
    if not saved.is_file():
        return None
    return yaml.load(saved.read_text(), Loader=_loader()) or {}


def write_parameters(folder: Path, values: dict[str, Any]) -> None:
    write_atomic(folder / PARAMETERS_FILE, yaml.safe_dump(values, sort_keys=True))


def resume_values(folder: Path, notebook: str) -> dict[str, Any]:
    """The parameters an earlier run folder was started with, for ``--resume``."""
    values = read_parameters(folder)
    if values is None:
        raise ParameterError(
            f"--resume {str(folder)!r}: no {PARAMETERS_FILE} there, so it is not a run folder "
            f"made by 'python -m kit run {notebook}'."
        )
    return values


#: What a --resume may change: none of it changes what is measured.
RESUME_MAY_CHANGE = frozenset({"label", "request_timeout_s", "server_start_timeout_s"})


def check_resume(
    folder: Path, params: Any, schema: type, saved: dict[str, Any], given: dict[str, Any]
) -> None:
    """Refuse a --resume whose parameters would change what was measured, before touching
    files: a notebook with its own rule (MMMU: the answers' parameters) applies it; every
    other refuses any parameter given now that differs from the one the run started with."""
    hook = getattr(params, "check_resume", None)
    if hook is not None:
        hook(folder)
        return
    before, after = build(schema, dict(saved)), build(schema, {**saved, **given})
    changed = {
        name: (getattr(before, name), getattr(after, name))
        for name in given
        if name not in RESUME_MAY_CHANGE and getattr(before, name) != getattr(after, name)
    }
    if changed:
        detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise ParameterError(
            f"--resume {str(folder)!r} continues the run it names, and these parameters "
            f"differ from the ones it started with ({detail}): its results would mix two "
            "experiments. Resume without them, or start a new run (drop --resume)."
        )


def _loader():
    """papermill's YAML loader (dates stay strings), refusing a key given twice: YAML would
    keep the last silently, and a parameter file with two ``input_len`` lines is a mistake."""
    from papermill.iorw import NoDatesSafeLoader

    class StrictLoader(NoDatesSafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ParameterError(
                        f"{key!r} is given twice in the same YAML mapping (line "
                        f"{key_node.start_mark.line + 1}): YAML would keep the last one "
                        "silently. Keep one of them."
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader
