"""The notebooks ``python -m kit run`` knows, by the parameter dataclass each is checked
against (notebooks/<name>.ipynb has one cell tagged ``parameters`` with the same names)."""

from __future__ import annotations

from kit.compare.params import CompareParams
from kit.core.params import ParameterError
from kit.download.params import DownloadParams
from kit.reproduce.params import CHILD_SCHEMAS, ReproduceParams

NOTEBOOKS: dict[str, type] = {
    **CHILD_SCHEMAS,  # demo, numerics, mmmu, perf
    "download": DownloadParams,
    "compare": CompareParams,
    "reproduce": ReproduceParams,
}


def schema_for(notebook: str) -> type:
    if notebook not in NOTEBOOKS:
        available = ", ".join(sorted(NOTEBOOKS))
        raise ParameterError(f"Unknown notebook {notebook!r}. Available: {available}.")
    return NOTEBOOKS[notebook]
