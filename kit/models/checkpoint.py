"""A checkpoint folder: its config.json (read here and nowhere else), whether it holds
weights, and what a model parameter that names no folder may be (a hub id)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError

CONFIG_FILE = "config.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DUMMY_MARKER = "kit_dummy_weights"  # config.json key of a folder built without weights
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth")


def is_hub_id(model: str) -> bool:
    """``org/name`` that is not a path (a folder that does not exist is not a hub id)."""
    return bool(HUB_ID.match(model)) and not model.startswith((".", "/", "~"))


def read_config(folder: str | Path) -> dict[str, Any]:
    """A checkpoint folder's config.json, or a ParameterError that names the file and the
    JSON error."""
    config = Path(folder) / CONFIG_FILE
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(
            f"Parameter 'model': {str(config)!r} is not valid JSON ({exc}). Restore the file "
            "from the download (python -m kit verify <folder> shows what changed)."
        ) from exc
    if not isinstance(data, dict):
        raise ParameterError(f"Parameter 'model': {str(config)!r} does not hold a JSON object.")
    return data


def has_config(folder: str | Path) -> bool:
    return (Path(folder) / CONFIG_FILE).is_file()


def architectures(config: dict[str, Any]) -> list[str]:
    return [str(a) for a in config.get("architectures") or []]


def is_weightless_folder(model_path: str | Path) -> bool:
    """A folder the kit built for ``load_format: dummy`` (config only, no weights)."""
    return has_config(model_path) and bool(read_config(model_path).get(DUMMY_MARKER))


def has_weight_files(folder: str | Path) -> bool:
    folder = Path(folder)
    return any(next(folder.glob(pattern), None) for pattern in WEIGHT_FILES)


def checkpoint_folder(path: Path) -> str:
    """An existing folder as a checkpoint: it must hold a config.json."""
    if not has_config(path):
        raise ParameterError(
            f"Parameter 'model': folder {str(path)!r} has no config.json, so it is not a "
            "model checkpoint. Point it at the folder holding config.json and the weights "
            "(see notebooks/download.ipynb), or use model: smoke for the tiny test model."
        )
    return str(path.resolve())
