"""Which family a checkpoint belongs to, and what the kit's named models are.

As vLLM's own model registry, a checkpoint's family is looked up from its config.json
``architectures``. A model parameter is one of the kit's named models (``smoke``,
``phi35v-dummy``: built on first use), a checkpoint folder, or a hub id. Adding a family
means adding its package beside kit.models.phi3v and listing it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kit.core.params import ParameterError
from kit.models.checkpoint import (
    CONFIG_FILE,
    architectures,
    checkpoint_folder,
    has_config,
    is_hub_id,
    read_config,
)
from kit.models.family import ModelFamily, NamedModel
from kit.models.figures import ModelFigures, model_figures
from kit.models.idefics3.dummy import SMOLVLM_DUMMY
from kit.models.idefics3.family import IDEFICS3
from kit.models.idefics3.tiny import SMOKE_IDEFICS3
from kit.models.llava.dummy import LLAVA15_DUMMY, LLAVA_NEXT_DUMMY
from kit.models.llava.family import LLAVA, LLAVA_NEXT
from kit.models.llava.tiny import SMOKE_LLAVA, SMOKE_LLAVA_NEXT
from kit.models.minicpmv.family import MINICPMV
from kit.models.minicpmv.minicpmo import MINICPMO, MINICPMO26_DUMMY, SMOKE_MINICPMO
from kit.models.minicpmv.tiny import MINICPMV26_DUMMY, SMOKE_MINICPMV
from kit.models.phi3v.family import PHI3V
from kit.models.phi3v.tiny import DUMMY, SMOKE
from kit.models.qwen2vl.dummy import QWEN2VL_DUMMY, QWEN25VL_DUMMY
from kit.models.qwen2vl.family import QWEN2VL, QWEN25VL
from kit.models.qwen2vl.tiny import SMOKE_QWEN2VL, SMOKE_QWEN25VL

FAMILIES: dict[str, ModelFamily] = {
    family.name: family
    for family in (PHI3V, IDEFICS3, QWEN2VL, QWEN25VL, LLAVA, LLAVA_NEXT, MINICPMV, MINICPMO)
}
NAMED_MODELS: dict[str, NamedModel] = {
    model.name: model
    for model in (
        SMOKE,
        DUMMY,
        SMOKE_IDEFICS3,
        SMOKE_MINICPMV,
        MINICPMV26_DUMMY,
        SMOKE_MINICPMO,
        MINICPMO26_DUMMY,
        SMOLVLM_DUMMY,
        SMOKE_QWEN2VL,
        QWEN2VL_DUMMY,
        SMOKE_QWEN25VL,
        QWEN25VL_DUMMY,
        SMOKE_LLAVA,
        LLAVA15_DUMMY,
        SMOKE_LLAVA_NEXT,
        LLAVA_NEXT_DUMMY,
    )
}
TINY_MODEL = SMOKE.name  # the default model: runs anywhere, no download
MAX_CROPS = max(family.max_crops for family in FAMILIES.values())  # any family's most


def model_list() -> list[dict[str, Any]]:
    """Every name the kit knows, for ``python -m kit models``: family, kind, whether this
    machine's vLLM can load it, and what it is for."""
    runs = {name: FAMILIES[name].runs_here() for name in {m.family for m in NAMED_MODELS.values()}}
    return [
        {
            "name": model.name,
            "family": model.family,
            "kind": model.kind,
            "runs_here": runs[model.family],
            "architectures": list(FAMILIES[model.family].architectures),
            "mirrors": model.mirrors or None,  # the published checkpoint a dummy stands for
            "mirrors_revision": model.mirrors_revision or None,
            "about": model.about,
        }
        for model in NAMED_MODELS.values()
    ]


def hub_pin(repo_id: str) -> str:
    """The commit of a hub checkpoint that a kit model mirrors, for the download notebook;
    "" when the kit knows none."""
    pins = {m.mirrors: m.mirrors_revision for m in NAMED_MODELS.values() if m.mirrors}
    return pins.get(repo_id, "")


def named_model(model: str) -> NamedModel | None:
    return NAMED_MODELS.get(model)


def is_tiny_model(model: str | None) -> bool:
    """A named model with random weights: its answers and timings are noise."""
    named = NAMED_MODELS.get(model or "")
    return named is not None and named.weights == "random"


def family_for_architectures(names: list[str], where: str) -> ModelFamily:
    for name in names:
        for family in FAMILIES.values():
            if name in family.architectures:
                return family
    known = ", ".join(a for f in FAMILIES.values() for a in f.architectures)
    raise ParameterError(
        f"Parameter 'model': {where} names architectures {names or 'none'}, and the kit knows "
        f"no model family for them (known: {known}). Add the family beside kit/models/phi3v "
        "(docs/architecture.md says how)."
    )


def family_for_config(config: Mapping[str, Any], where: str = CONFIG_FILE) -> ModelFamily:
    return family_for_architectures(architectures(dict(config)), where)


def family_for_model(model_path: str) -> ModelFamily:
    """The family of a resolved model: a folder's config.json, or a hub id's (from the hub
    cache, fetched when online)."""
    if has_config(model_path):
        return family_for_config(read_config(model_path), f"{model_path}/{CONFIG_FILE}")
    try:
        from huggingface_hub import hf_hub_download

        config = hf_hub_download(model_path, CONFIG_FILE)
    except Exception as exc:  # offline, unknown repo, gated, ...
        raise ParameterError(
            f"Parameter 'model': the config.json of {model_path!r} cannot be read "
            f"({type(exc).__name__}), so its model family is unknown. Download the checkpoint "
            "(python -m kit run download ...) and pass its folder."
        ) from None
    return family_for_config(read_config(Path(config).parent), f"{model_path}/{CONFIG_FILE}")


def resolve_model(model: str) -> str:
    """A named model -> its folder (built if needed); a folder; or a hub id."""
    named = NAMED_MODELS.get(model)
    if named is not None:
        return str(named.ensure())
    path = Path(model).expanduser()
    if path.is_dir():
        return checkpoint_folder(path)
    if is_hub_id(model):
        return model
    raise ParameterError(
        f"Parameter 'model': folder {model!r} does not exist. Download the checkpoint first "
        "(python -m kit run download -f params/download-phi35v-hf.yaml) and pass its folder, "
        "pass a hub id such as microsoft/Phi-3.5-vision-instruct when online, or use "
        f"model: {TINY_MODEL} for the embedded tiny model."
    )


def read_model_figures(model_path: str, dtype: str | None = None) -> ModelFigures | None:
    """Roofline figures of a local model folder; None for a hub id or a config without the
    fields."""
    if not has_config(model_path):
        return None
    try:
        config = read_config(model_path)
        family = family_for_config(config)
        return model_figures(config, dtype, family.vision_tower(config))
    except (KeyError, TypeError, ValueError):
        return None
