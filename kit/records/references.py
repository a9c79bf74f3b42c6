"""Vendor reference numbers (params/references.yaml) and measured/reference ratios.

The YAML is the single place the vendor's table lives, so notebooks and tests compare
against the same numbers and a reader can check them against the vendor document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.core.paths import PARAMS_DIR

# Metric keys shared by the YAML rows, perf.VendorColumns and ratios().
PERF_METRICS: tuple[str, ...] = ("ttft_ms", "tps", "prefill_ms", "decode_ms_per_token")


def default_references_path() -> Path:
    """params/references.yaml of the repository this package sits in."""
    return PARAMS_DIR / "references.yaml"


@dataclass(frozen=True)
class ReferenceRow:
    """One row of the vendor's performance table."""

    device: str
    card: int
    max_model_len: int
    input_len: int
    output_len: int
    num_prompts: int
    ttft_ms: float | None = None
    tps: float | None = None
    prefill_ms: float | None = None
    decode_ms_per_token: float | None = None

    def metrics(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in PERF_METRICS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AccuracyReference:
    """A published MMMU (validation) accuracy, as a fraction."""

    device: str
    accuracy: float
    label: str | None = None
    source: str | None = None
    scoring: str | None = None  # "vendor_strict" or "official" (docs/mmmu.md)


@dataclass(frozen=True)
class ModelIdentity:
    """The model revision the document ran (source, repository, commit as printed)."""

    source: str
    repo_id: str
    commit: str  # possibly short: compare by prefix
    branch: str | None = None
    architectures: tuple[str, ...] = ()  # config.json architectures of the model the figures are of

    def matches(self, source: str | None, repo_id: str | None, commit: str | None) -> bool:
        """Whether a manifest's source, repository and (full) commit are this revision."""
        return (
            (source or "").lower() == self.source.lower()
            and (repo_id or "") == self.repo_id
            and bool(commit)
            and str(commit).lower().startswith(self.commit.lower())
        )

    def text(self) -> str:
        return f"{self.source} {self.repo_id}@{self.commit}"


@dataclass(frozen=True)
class DemoReference:
    """The document's demo: the prompt, its decoding, and each device's answer."""

    prompt: str
    max_output_len: int
    temperature: float
    answers: dict[str, str]  # device -> generated text, verbatim
    dtype: str | None = None
    image: str = ""  # what the picture was (it is not published)
    source: str = ""


@dataclass(frozen=True)
class EnvironmentReference:
    """The test environment the document states, per device (values as printed)."""

    devices: dict[str, dict[str, Any]]
    source: str = ""


@dataclass
class References:
    """Everything in references.yaml, typed where the kit reads it."""

    perf: list[ReferenceRow]
    mmmu: list[AccuracyReference]
    devices: dict[str, dict[str, Any]]
    model: dict[str, Any]
    source: str = ""
    perf_source: str = ""
    perf_command: dict[str, Any] = field(default_factory=dict)  # the vendor's perf settings
    mmmu_source: str = ""
    devices_source: str = ""
    demo: DemoReference | None = None
    environment: EnvironmentReference | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def model_identity(self) -> ModelIdentity | None:
        """The ``model`` section typed; None when the file has none."""
        m = self.model
        if not (m.get("source") and m.get("repo_id") and m.get("commit")):
            return None
        return ModelIdentity(
            source=str(m["source"]),
            repo_id=str(m["repo_id"]),
            commit=str(m["commit"]),
            branch=None if m.get("branch") is None else str(m["branch"]),
            architectures=tuple(str(a) for a in m.get("architectures") or ()),
        )


def _row(d: Mapping[str, Any]) -> ReferenceRow:
    missing = [k for k in ("device", "input_len", "output_len", "num_prompts") if k not in d]
    if missing:
        raise ValueError(f"references.yaml perf row {dict(d)!r} lacks {missing}")
    return ReferenceRow(
        device=str(d["device"]),
        card=int(d.get("card", 1)),
        max_model_len=int(d.get("max_model_len", 0)),
        input_len=int(d["input_len"]),
        output_len=int(d["output_len"]),
        num_prompts=int(d["num_prompts"]),
        **{k: (None if d.get(k) is None else float(d[k])) for k in PERF_METRICS},
    )


def load_references(path: str | Path | None = None) -> References:
    """Parse references.yaml (default: the repository's params/references.yaml)."""
    p = Path(path) if path is not None else default_references_path()
    if not p.is_file():
        raise FileNotFoundError(f"references file not found: {p}")
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    perf = raw.get("perf") or {}
    mmmu = raw.get("mmmu") or {}
    devices = dict(raw.get("devices") or {})
    devices_source = str(devices.pop("source", "") or "")
    return References(
        perf=[_row(r) for r in perf.get("rows") or []],
        mmmu=[
            AccuracyReference(
                device=str(r["device"]),
                accuracy=float(r["accuracy"]),
                label=r.get("label"),
                source=r.get("source"),
                scoring=r.get("scoring"),
            )
            for r in mmmu.get("rows") or []
        ],
        devices={str(k): dict(v) for k, v in devices.items()},
        model=dict(raw.get("model") or {}),
        source=str(raw.get("source", "") or ""),
        perf_source=str(perf.get("source", "") or ""),
        perf_command=dict(perf.get("command") or {}),
        mmmu_source=str(mmmu.get("source", "") or ""),
        devices_source=devices_source,
        demo=_demo(raw.get("demo")),
        environment=_environment(raw.get("environment")),
        raw=raw,
    )


def _demo(d: Mapping[str, Any] | None) -> DemoReference | None:
    if not d:
        return None
    answers = d.get("answers") or {}
    if not d.get("prompt") or not isinstance(answers, Mapping) or not answers:
        raise ValueError("references.yaml demo needs a prompt and answers (device: text)")
    return DemoReference(
        prompt=str(d["prompt"]),
        max_output_len=int(d["max_output_len"]),
        temperature=float(d.get("temperature", 0.0)),
        answers={str(k): str(v) for k, v in answers.items()},
        dtype=d.get("dtype"),
        image=str(d.get("image", "") or ""),
        source=str(d.get("source", "") or ""),
    )


def _environment(d: Mapping[str, Any] | None) -> EnvironmentReference | None:
    if not d:
        return None
    devices = d.get("devices") or {}
    return EnvironmentReference(
        devices={str(k): dict(v or {}) for k, v in devices.items()},
        source=str(d.get("source", "") or ""),
    )


def _param(params: Mapping[str, Any], *names: str) -> int | None:
    for n in names:
        if params.get(n) is not None:
            return int(params[n])
    return None


def match_references(
    point_params: Mapping[str, Any], refs: References | Iterable[ReferenceRow]
) -> list[ReferenceRow]:
    """Vendor rows of the same scenario: equal input_len, output_len and num_prompts.

    Accepts the kit's names too: max_output_len for output_len, batch_size for
    num_prompts (the vendor's num-prompts column is its --batch-size).
    """
    input_len = _param(point_params, "input_len")
    output_len = _param(point_params, "output_len", "max_output_len")
    num_prompts = _param(point_params, "num_prompts", "batch_size")
    if None in (input_len, output_len, num_prompts):
        raise ValueError(
            "point_params needs input_len, output_len (or max_output_len) and num_prompts "
            f"(or batch_size); got keys {sorted(point_params)}"
        )
    rows = refs.perf if isinstance(refs, References) else list(refs)
    return [
        r
        for r in rows
        if (r.input_len, r.output_len, r.num_prompts) == (input_len, output_len, num_prompts)
    ]


def ratios(
    measured: Mapping[str, float | None], reference: ReferenceRow | Mapping[str, Any]
) -> dict[str, float | None]:
    """measured / reference for each perf metric; None where either side is missing or 0.

    For tps above 1 is better; for the latency metrics below 1 is better.
    """
    ref = reference.metrics() if isinstance(reference, ReferenceRow) else reference
    out: dict[str, float | None] = {}
    for key in PERF_METRICS:
        m, r = measured.get(key), ref.get(key)
        out[key] = None if m is None or r is None or r == 0 else float(m) / float(r)
    return out


VENDOR_PROMPT = "What is the content of this image in details?"
