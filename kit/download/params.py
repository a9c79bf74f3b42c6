"""The download notebook's parameters: the source, the repositories, their revisions and folders.

An empty revision means a pinned commit where the kit knows one: Phi-3.5-vision-instruct on
ModelScope (the vendor's), every hub checkpoint a kit model mirrors (``kit.models.registry``:
Phi-3.5-vision-instruct, Qwen2-VL, LLaVA, SmolVLM, MiniCPM-V, ...; ``python -m kit models``
lists them) and MMMU on the hub (a commit with the 900-question validation split); another
repository, or MMMU on ModelScope, gets the default branch, resolved and recorded.
``preflight`` plans every target, so an unreachable source, an unknown revision or files that
do not fit on the disk stop the run before a folder is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kit.core.params import ParameterError
from kit.download.hub_clients import Target
from kit.download.plan import DownloadPlan, plan_target
from kit.models.registry import hub_pin

SOURCES = ("huggingface", "modelscope")

WHAT = ("model", "dataset", "both")

SPLITS = ("dev", "validation", "test")


#: The model fetched when ``model_id`` is empty: Phi-3.5-vision-instruct on each source.
DEFAULT_MODEL = {
    "huggingface": "microsoft/Phi-3.5-vision-instruct",
    "modelscope": "LLM-Research/Phi-3.5-vision-instruct",
}

#: ModelScope pins: the vendor's (branch master, commit 1ce2adc1). The hub's pins belong to
#: the kit models that mirror those checkpoints (kit.models.registry.hub_pin).
MODELSCOPE_PINS = {"LLM-Research/Phi-3.5-vision-instruct": "1ce2adc1"}


def pinned_revision(source: str, repo_id: str) -> str:
    """The commit fetched for ``repo_id`` when no revision is given; "" when none is pinned."""
    if source == "huggingface":
        return hub_pin(repo_id)
    return MODELSCOPE_PINS.get(repo_id, "")


#: MMMU/MMMU on the hub: a commit of the dataset repo with the 900-question validation split.
#: No pin is known for a ModelScope mirror: its branch is resolved and the commit recorded.
PINNED_DATASET = {
    "huggingface": "98e6ac0cb9b7b2cd2c991b85a50762edc4aedc68",
    "modelscope": "master",
}

DEFAULT_BRANCH = {"huggingface": "main", "modelscope": "master"}


@dataclass
class DownloadParams:
    source: str = "huggingface"  # "huggingface" or "modelscope"
    model_id: str = ""  # "": Phi-3.5-vision-instruct on the chosen source
    revision: str = ""  # branch, tag or commit; "": the pinned commit, if the kit knows one
    model_dir: str = "models/Phi-3.5-vision-instruct"
    dataset_id: str = "MMMU/MMMU"
    dataset_revision: str = ""  # "": the pinned commit (hub); ModelScope: master, recorded
    dataset_dir: str = "data/MMMU"
    dataset_splits: list[str] = field(default_factory=lambda: ["validation"])
    what: str = "both"  # "model", "dataset" or "both"
    verify: bool = True  # check sizes and sha256 against the source after downloading
    endpoint: str = ""  # "": the client default (or HF_ENDPOINT / MODELSCOPE_ENDPOINT)
    label: str = ""  # free text that names this run in the run index

    def check(self) -> None:
        self.source = self.source.strip().lower()
        if self.source not in SOURCES:
            raise ParameterError(
                f"Parameter 'source' must be one of {', '.join(SOURCES)}, got {self.source!r}."
            )
        self.what = self.what.strip().lower()
        if self.what not in WHAT:
            raise ParameterError(
                f"Parameter 'what' must be one of {', '.join(WHAT)}, got {self.what!r}."
            )
        splits = list(dict.fromkeys(s.strip() for s in self.dataset_splits if s.strip()))
        bad = [s for s in splits if s not in SPLITS]
        if bad or not splits:
            raise ParameterError(
                f"Parameter 'dataset_splits' must list MMMU splits among {', '.join(SPLITS)} "
                f"(got {self.dataset_splits!r}). Fix: -p dataset_splits validation,dev"
            )
        self.dataset_splits = splits
        for name in ("model_id", "revision", "dataset_id", "dataset_revision", "endpoint"):
            setattr(self, name, getattr(self, name).strip())
        for name in ("model_dir", "dataset_dir"):
            if not getattr(self, name).strip():
                raise ParameterError(f"Parameter {name!r} is empty: give the folder to write.")
        if self.what == "both" and _resolved(self.model_dir) == _resolved(self.dataset_dir):
            raise ParameterError(
                "Parameters 'model_dir' and 'dataset_dir' name the same folder; each needs "
                "its own (each gets its own manifest.json)."
            )
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ParameterError(
                f"Parameter 'endpoint' must be a URL starting with http:// or https://, got "
                f"{self.endpoint!r}. Leave it empty for the source's default."
            )

    def targets(self) -> list[Target]:
        out = []
        if self.what in ("model", "both"):
            repo_id = self.model_id or DEFAULT_MODEL[self.source]
            out.append(
                Target(
                    kind="model",
                    source=self.source,
                    repo_id=repo_id,
                    revision=self.revision
                    or pinned_revision(self.source, repo_id)
                    or DEFAULT_BRANCH[self.source],
                    folder=Path(self.model_dir).expanduser(),
                    endpoint=self.endpoint or None,
                )
            )
        if self.what in ("dataset", "both"):
            out.append(
                Target(
                    kind="dataset",
                    source=self.source,
                    repo_id=self.dataset_id,
                    revision=self.dataset_revision or PINNED_DATASET[self.source],
                    folder=Path(self.dataset_dir).expanduser(),
                    splits=list(self.dataset_splits),
                    endpoint=self.endpoint or None,
                )
            )
        return out

    def plans(self) -> list[DownloadPlan]:
        """What each target needs (the source is asked unless its folder is complete)."""
        return [plan_target(target) for target in self.targets()]

    def preflight(self) -> None:
        """Before the notebook runs: the source answers, the revision exists, the files fit."""
        self.plans()


def _resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()
