"""How a server the kit did not start counts the run's images, measured instead of assumed.

Its processor settings (Phi3V's ``num_crops``, ...) and chat template are the server's, and
a user pointing the kit at a vendor's build or a shared deployment often does not know them.
One small request with pictures of the run's image sizes (``max_tokens`` 1, a seed no timed
request uses, so it warms no cache a timed request could hit) gives the server's prompt-token
count; the difference from the kit's own count of the same prompt is added to every prompt
the kit builds, so each is exactly ``input_len`` by the server's count. Where a value of the
family's crops setting gives the server's count locally, the report names it. Every timed
request's count is still checked, so a server that counts inconsistently fails as before.
A server the kit started runs the run's own settings: nothing to learn.
"""

from __future__ import annotations

from dataclasses import replace

from kit.engines.types import Backend, GenSampling
from kit.models.tokens import PromptTokenCounter
from kit.perf.workload import WorkloadBuilder
from kit.records.server_count import ServerCount

CALIBRATION_SEED = -1  # the timed, warm-up and probe batches use seeds >= 0


class CalibrationFailed(RuntimeError):
    """The server did not answer the calibration request with a prompt-token count."""


def needs_calibration(engine: Backend) -> bool:
    config = engine.config
    return config.backend == "server" and config.started_by_kit is False


def calibrated(
    engine: Backend, builder: WorkloadBuilder, seed: int = 0
) -> tuple[WorkloadBuilder, ServerCount | None]:
    """``builder`` building prompts by the server's count, and what the server counted;
    unchanged (and None) for an engine the kit runs with the run's own settings."""
    if not needs_calibration(engine):
        return builder, None
    request = builder.smallest(seed=CALIBRATION_SEED)
    batch = engine.generate([request.as_request()], GenSampling(max_tokens=1, seed=seed))
    (answer,) = batch.completions
    if answer.error or answer.prompt_tokens is None:
        raise CalibrationFailed(
            "the server did not say how many prompt tokens a request with the run's images "
            f"has ({answer.error or 'no usage.prompt_tokens in its answer'}), so prompts of "
            "exactly input_len cannot be built for it."
        )
    counter = builder.counter
    count = ServerCount(
        image_sizes=tuple((w, h) for h, w in builder.vision_shapes),
        server_tokens=answer.prompt_tokens,
        kit_tokens=request.num_tokens,
        kit_image_tokens=builder.kit_image_tokens,
        kit_setting=describe_setting(counter, counter.num_crops),
    )
    if count.offset and counter.family.crops_argument is not None:
        count = replace(count, matches=matching_setting(builder, count.server_image_tokens))
    return builder.counted_by_server(count.offset), count


def matching_setting(builder: WorkloadBuilder, server_image_tokens: int) -> str | None:
    """The family's crops setting under which its processor counts the run's images as the
    server did, if one does."""
    counter = builder.counter
    for crops in range(1, counter.family.max_crops + 1):
        other = PromptTokenCounter(
            counter.model_path, counter.family, crops, counter.trust_remote_code
        )
        if sum(other.image_tokens(w, h) for h, w in builder.vision_shapes) == server_image_tokens:
            return describe_setting(counter, crops)
    return None


def describe_setting(counter: PromptTokenCounter, crops: int) -> str:
    if counter.family.crops_argument is None:  # its processor has no such setting
        return "the processor's own settings"
    return f"{counter.family.crops_argument} {crops}"
