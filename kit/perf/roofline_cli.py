"""``python -m kit roofline MODEL``: a model's roofline bounds on named devices, no engine.

The bounds are the perf notebook's own: the point's shape comes from
:func:`kit.perf.point_records.point_shape` (vendor scheduling, as the notebook's default:
chunked prefill off, a token budget of ``max_model_len``) and the numbers from
:func:`kit.perf.roofline.bounds`, with the model's figures read from its config.json
(``read_model_figures``) and the image-encoder passes from the family's processor. Without
an engine the KV cache's capacity is unknown, so the whole batch decodes together (a run
whose KV cache holds fewer sequences gets a smaller decode bound). Defaults are the perf
notebook's (``PerfParams``): input 8192, output 1024, batch 1, one 1024x1024 image,
``num_crops`` 4; devices: every device with datasheet peaks in params/references.yaml.

Where the family's processor cannot load here (a processor part that needs a library this
machine lacks), the image tower is left out of the prefill bound, which stays a lower bound,
and a one-line note says why. Exit status: 0 bounds printed; 2 a bad model, device or
shape (one paragraph on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from dataclasses import dataclass
from typing import Any

from kit.core import jsonio
from kit.core.params import ParameterError
from kit.engines.scheduling import scheduling_args
from kit.models.checkpoint import is_hub_id
from kit.models.family import ModelFamily
from kit.models.figures import ModelFigures
from kit.models.registry import family_for_model, read_model_figures, resolve_model
from kit.models.tokens import PromptTokenCounter
from kit.perf.grid import parse_vision_shape
from kit.perf.params import PerfParams
from kit.perf.point_records import RecordContext, point_shape
from kit.perf.roofline import DevicePeaks, bounds, find_device, load_device_peaks
from kit.records.engine import EngineRecord
from kit.records.perf import PerfPointRecord, PointShape, RooflineRecord, point_label

DEFAULTS = PerfParams()  # the perf notebook's defaults
SCHEDULING = "vendor"
DEFAULT_IMAGES = [(w, h) for h, w in parse_vision_shape(DEFAULTS.input_vision_shape)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a named model (python -m kit models) or a checkpoint folder")
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="NAME",
        help="as torch or nvidia-smi prints it, or a params/references.yaml entry; repeatable "
        "(default: every device with datasheet peaks)",
    )
    parser.add_argument("--input-len", type=int, default=DEFAULTS.input_len[0], metavar="N")
    parser.add_argument("--output-len", type=int, default=DEFAULTS.max_output_len[0], metavar="M")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size[0], metavar="B")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="WxH",
        help="one image per request, width x height; repeatable; 'none': text only "
        "(default: one 1024x1024 image, as the perf notebook)",
    )
    parser.add_argument("--num-crops", type=int, default=DEFAULTS.num_crops, metavar="K")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


@dataclass
class Estimate:
    """Everything the command prints: the model, its figures, the shape, a bound per device."""

    model: str
    model_path: str
    family: ModelFamily
    figures: ModelFigures
    images: list[tuple[int, int]]  # (width, height)
    num_crops: int
    shape: PointShape
    budget_tokens: int
    records: list[RooflineRecord]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_path": self.model_path,
            "family": self.family.name,
            "figures": {**self.figures.to_dict(), "vision_params": self.figures.vision_params},
            "images": [{"width": w, "height": h} for w, h in self.images],
            "num_crops": self.num_crops,
            "scheduling": SCHEDULING,
            "max_num_batched_tokens": self.budget_tokens,
            "shape": self.shape.to_dict(),
            "note": self.note,
            "roofline": [record.to_dict() for record in self.records],
        }


def parse_images(values: list[str]) -> list[tuple[int, int]]:
    """``--image`` values as (width, height); none given: the perf notebook's default."""
    if not values:
        return list(DEFAULT_IMAGES)
    if [v.strip().lower() for v in values] == ["none"]:
        return []
    images = []
    for value in values:
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if match is None or 0 in (int(match[1]), int(match[2])):
            raise ParameterError(
                f"--image {value!r} is not WIDTHxHEIGHT in positive pixels (e.g. --image "
                "1024x1024), nor 'none' alone for a text-only prompt. Fix it and run again."
            )
        images.append((int(match[1]), int(match[2])))
    return images


def check_lengths(args: argparse.Namespace) -> None:
    for flag, value in (
        ("--input-len", args.input_len),
        ("--output-len", args.output_len),
        ("--batch-size", args.batch_size),
    ):
        if value < 1:
            raise ParameterError(f"{flag} must be a positive integer, got {value}.")


def devices(names: list[str], peaks: dict[str, DevicePeaks]) -> list[str]:
    """The devices asked for (find_device's reason for one without peaks), else all."""
    if not names:
        return list(peaks)
    for name in names:
        _, reason = find_device(name, peaks)
        if reason is not None:
            raise ParameterError(f"--device: {reason}.")
    return names


def model_figures_of(model: str, model_path: str) -> ModelFigures:
    figures = read_model_figures(model_path)
    if figures is not None:
        return figures
    if is_hub_id(model_path):  # not fetched: its config.json is not here
        raise ParameterError(
            f"Parameter 'model': {model!r} is not a folder here, and the roofline reads the "
            "model's dimensions from a local config.json. Download the checkpoint (python -m "
            "kit run download ...) and pass its folder, or name one of the kit's models "
            "(python -m kit models lists them)."
        )
    raise ParameterError(
        f"Parameter 'model': {model_path}/config.json lacks the decoder dimensions the "
        "roofline needs (hidden_size, num_hidden_layers, num_attention_heads, "
        "intermediate_size, vocab_size). Restore the checkpoint's config.json."
    )


def image_views(
    model_path: str, family: ModelFamily, crops: int, images: list[tuple[int, int]]
) -> tuple[int, str | None]:
    """Image-encoder passes per request, counted as the perf notebook counts them (the
    family's processor); 0 and why where the processor cannot load here."""
    if not images:
        return 0, None
    counter = PromptTokenCounter(model_path, family, crops)
    try:
        return sum(counter.image_views(w, h) for w, h in images), None
    except Exception as exc:  # ImportError (torchvision), OSError, ValueError, ...
        said = " ".join(str(exc).split()).split(". ")[0].rstrip(".")  # its first sentence
        why = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
        return 0, (
            f"image tower left out of the prefill bound (still a lower bound): {family.name}'s "
            f"processor cannot load here ({why})"
        )


def estimate(args: argparse.Namespace) -> Estimate:
    check_lengths(args)
    images = parse_images(args.image)
    peaks = load_device_peaks()
    names = devices(args.device, peaks)
    model_path = resolve_model(args.model)
    figures = model_figures_of(args.model, model_path)
    family = family_for_model(model_path)
    if images:
        family.check_crops(args.num_crops)
    views, note = image_views(model_path, family, args.num_crops, images)
    # a run of this point needs max_model_len >= input + output; vendor scheduling makes that
    # the token budget
    budget = max(DEFAULTS.max_model_len, args.input_len + args.output_len)
    engine_args = scheduling_args(SCHEDULING, budget)
    context = RecordContext(
        device=names[0],
        scheduling=SCHEDULING,
        engine_config=EngineRecord(
            scheduling=SCHEDULING,
            chunked_prefill=engine_args["enable_chunked_prefill"],
            max_num_batched_tokens=engine_args["max_num_batched_tokens"],
            max_num_seqs=engine_args["max_num_seqs"],
        ),
        references=None,
        peaks=peaks,
        figures=figures,
        views_per_request=views,
    )
    point = PerfPointRecord(
        params={
            "input_len": args.input_len,
            "max_output_len": args.output_len,
            "batch_size": args.batch_size,
        }
    )
    shape = point_shape(point, context)
    return Estimate(
        model=args.model,
        model_path=model_path,
        family=family,
        figures=figures,
        images=images,
        num_crops=args.num_crops,
        shape=shape,
        budget_tokens=budget,
        records=[bounds(figures, shape, name, peaks) for name in names],
        note=note,
    )


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def text_report(est: Estimate) -> str:
    f, s = est.figures, est.shape
    pictures = ", ".join(f"{w}x{h}" for w, h in est.images) or "none (text only)"
    crops = f", num_crops {est.num_crops}" if est.family.crops_argument and est.images else ""
    lines = [
        f"{est.model}: {est.family.name} ({est.model_path})",
        f"figures: {f.num_params / 1e9:.2f} B params ({f.vision_params / 1e9:.2f} B vision), "
        f"dtype {f.dtype_bytes} bytes, KV {f.kv_bytes_per_token:,} bytes/token, "
        f"{f.decode_weight_bytes / 1e9:.2f} GB of weights read per decode step",
        f"shape: {point_label(s.input_len, s.max_output_len, s.batch_size)}; images {pictures}"
        f" = {s.image_views} encoder views per request{crops}; mean context "
        f"{s.mean_context:g} tokens",
        f"scheduling: {SCHEDULING} (chunked prefill off, {est.budget_tokens} tokens per step): "
        f"{s.prefilled_together} request(s) prefilled together, {s.decoding_together} "
        "decoding together (KV cache capacity unknown without an engine)",
    ]
    if est.note:
        lines.append(f"note: {est.note}")
    header = (
        "device",
        "prefill TFLOP",
        "prefill >= ms",
        "decode GB/step",
        "decode >= ms/token",
        "source",
    )
    rows = [
        (
            r.device or "-",
            _number(r.prefill_tflop, 2),
            _number(r.prefill_ms, 1),
            _number(r.decode_gb_per_step, 2),
            _number(r.decode_ms_per_token, 2),
            r.source or r.reason or "",
        )
        for r in est.records
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    lines.append("")
    for row in (header, *rows):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def roofline_main(args: argparse.Namespace) -> int:
    with contextlib.redirect_stdout(sys.stderr):  # transformers may print as it loads
        est = estimate(args)
    print(jsonio.dumps(est.to_dict(), indent=2) if args.json else text_report(est))
    return 0
