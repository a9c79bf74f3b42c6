"""An interactive explorer on a live engine, for JupyterLab (``notebooks/explore.ipynb``).

Images (paths and/or uploads), a question, num_crops, max_output_len and temperature go in;
the answer comes out token by token, with the request's TTFT, prompt tokens split into text
and image tokens, output tokens and tokens/s, and a history of the session's last answers.

- The engine starts once (on the first Generate, with the Start button, or at once with the
  notebook parameter ``start_engine``) and serves every later click.
- num_crops, max_output_len and temperature are per request: num_crops travels in the
  request's ``mm_processor_kwargs`` (vLLM applies them per request), so changing it needs
  no restart.
- Engine-level settings (model, dtype, max_model_len, limit_images) need a new engine: when
  they differ from the running one, Generate refuses and the Restart button applies them.
- Bad input (no image, an unreadable upload or path, a prompt longer than max_model_len,
  more images than the engine takes) is reported in the widget; the engine keeps running.
- Streaming and shutdown are the backend's own (kit.engines.registry: vLLM in this kernel,
  or a server, attached with ``backend: server`` and ``base_url``).

Everything shown that comes from the model or the user is escaped (kit.report helpers).
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from kit.core import jsonio
from kit.core.params import ParameterError
from kit.engines.params import EngineParams
from kit.engines.registry import start_backend
from kit.engines.types import Backend, GenSampling
from kit.explore.params import DTYPES, ENGINE_SETTINGS, ExploreParams
from kit.explore.requests import (
    Answer,
    ImageInput,
    Request,
    RestartRequired,
    TokenCounts,
    chat_prompt,
    check_length,
    describe_changes,
    images_from_paths,
    images_from_upload,
    result_from_completion,
    short,
)
from kit.models.registry import MAX_CROPS, family_for_model, resolve_model
from kit.report.html import html_table, text_block
from kit.runs.record import new_run_dir, outputs_dir


def start_engine_logged(params: EngineParams, log_file: Path) -> Backend:
    """The backend the parameters name: vLLM in this kernel, or a server (``base_url`` to
    attach to a running one)."""

    return start_backend(params, log_file=log_file)


def _message(text: str, kind: str = "info") -> str:
    colors = {"info": "#235", "ok": "#253", "error": "#a00", "warning": "#850"}
    icon = {"error": "⚠ ", "warning": "⚠ "}.get(kind, "")
    return (
        f'<div style="color:{colors[kind]};white-space:pre-wrap">{html.escape(icon + text)}</div>'
    )


class Explorer:
    """The widget and the live engine behind it (one per notebook kernel)."""

    def __init__(
        self,
        params: ExploreParams | None = None,
        session_dir: Path | None = None,
        engine_factory: Callable[[EngineParams, Path], Backend] | None = None,
    ):
        import ipywidgets as w

        self.params = params or ExploreParams()
        self.params.check()
        self._session_dir = session_dir
        self._factory = engine_factory or start_engine_logged
        self.engine: Backend | None = None
        self.engine_settings: dict[str, Any] | None = None
        self.engine_start_s: float | None = None
        self.history: list[Answer] = []
        self.last_answer: Answer | None = None
        self._answers = 0
        self._counts: dict[str, TokenCounts] = {}
        p = self.params

        wide = w.Layout(width="95%")
        label = {"description_width": "110px"}
        dtypes = DTYPES if p.dtype in DTYPES else [*DTYPES, p.dtype]
        self.model = w.Text(
            value=p.model,
            description="model",
            continuous_update=False,
            layout=wide,
            style=label,
        )
        self.dtype = w.Dropdown(options=dtypes, value=p.dtype, description="dtype", style=label)
        self.max_model_len = w.BoundedIntText(
            value=p.max_model_len, min=1, max=10_000_000, description="max_model_len", style=label
        )
        self.limit_images = w.BoundedIntText(
            value=p.limit_images, min=1, max=64, description="limit_images", style=label
        )
        self.engine_button = w.Button(description="Start engine", icon="play")
        self.engine_status = w.HTML()

        self.paths = w.Textarea(
            value="\n".join(p.image),
            description="image paths",
            placeholder="one path per line; 'demo' is the kit's picture",
            continuous_update=False,
            layout=w.Layout(width="95%", height="4.5em"),
            style=label,
        )
        self.upload = w.FileUpload(accept="image/*", multiple=True, description="Upload images")
        self.clear_uploads = w.Button(description="Clear uploads", icon="trash")
        self.images_info = w.HTML()

        self.prompt = w.Textarea(
            value=p.prompt,
            description="prompt",
            layout=w.Layout(width="95%", height="5em"),
            style=label,
        )
        self.num_crops = w.IntSlider(
            value=p.num_crops, min=1, max=MAX_CROPS, description="num_crops", style=label
        )
        self.max_output_len = w.BoundedIntText(
            value=p.max_output_len, min=1, max=1_000_000, description="max_output_len", style=label
        )
        self.temperature = w.BoundedFloatText(
            value=p.temperature, min=0.0, max=5.0, step=0.1, description="temperature", style=label
        )
        self.generate_button = w.Button(
            description="Generate", button_style="primary", icon="paper-plane"
        )
        self.message = w.HTML()
        self.answer = w.HTML()
        self.metrics = w.HTML()
        self.history_view = w.HTML()

        self.engine_button.on_click(lambda _: self._guard(self.restart_engine))
        self.generate_button.on_click(lambda _: self.generate())
        self.clear_uploads.on_click(lambda _: setattr(self.upload, "value", ()))
        for widget in (self.model, self.dtype, self.max_model_len, self.limit_images):
            widget.observe(lambda _: self._refresh_engine_status(), names="value")
        for widget in (self.paths, self.upload, self.num_crops, self.model):
            widget.observe(lambda _: self.refresh_images(), names="value")

        h3 = "<h4 style='margin:6px 0 2px'>{}</h4>".format
        self.widget = w.VBox(
            [
                w.HTML(h3("Engine (changing these needs a restart)")),
                w.HBox([self.dtype, self.max_model_len, self.limit_images]),
                self.model,
                w.HBox([self.engine_button]),
                self.engine_status,
                w.HTML(h3("Images")),
                self.paths,
                w.HBox([self.upload, self.clear_uploads]),
                self.images_info,
                w.HTML(h3("Request (per click, no restart needed)")),
                self.prompt,
                w.HBox([self.num_crops, self.max_output_len, self.temperature]),
                w.HBox([self.generate_button]),
                self.message,
                self.answer,
                self.metrics,
                w.HTML(h3(f"History (last {p.history_size} answers)")),
                self.history_view,
            ]
        )
        self._refresh_engine_status()
        self._render_history()

    # ---- settings ------------------------------------------------------------------

    def widget_settings(self) -> dict[str, Any]:
        return {
            "model": self.model.value.strip(),
            "dtype": self.dtype.value,
            "max_model_len": int(self.max_model_len.value),
            "limit_images": int(self.limit_images.value),
        }

    def engine_params(self) -> EngineParams:
        """The notebook's engine parameters with the widget's engine-level settings."""
        params = dataclasses.replace(self.params, **self.widget_settings())
        params.check()
        fields = {f.name for f in dataclasses.fields(EngineParams)}
        return EngineParams(**{k: v for k, v in asdict(params).items() if k in fields})

    def pending_changes(self) -> dict[str, tuple[Any, Any]]:
        if self.engine_settings is None:
            return {}
        now = self.widget_settings()
        return {
            k: (self.engine_settings[k], now[k])
            for k in ENGINE_SETTINGS
            if self.engine_settings[k] != now[k]
        }

    @property
    def session_dir(self) -> Path:
        """Where this session's engine.log and answers.jsonl go (made on first use)."""
        if self._session_dir is None:
            self._session_dir = new_run_dir("explore", outputs_dir())
        self._session_dir.mkdir(parents=True, exist_ok=True)
        return self._session_dir

    def _counts_for(self, model: str) -> TokenCounts:
        if model not in self._counts:  # the same path the engine resolves the model to
            path = resolve_model(model)
            self._counts[model] = TokenCounts(
                path, family_for_model(path), self.params.trust_remote_code
            )
        return self._counts[model]

    # ---- engine --------------------------------------------------------------------

    def start_engine(self) -> Backend:
        """Start the engine with the widget's settings unless one runs already."""
        if self.engine is not None:
            return self.engine
        params = self.engine_params()
        settings = self.widget_settings()
        self.engine_status.value = _message(
            f"Starting the engine (model {settings['model']}); this takes a while (~30-60 s for "
            f"the tiny model on CPU). vLLM's log: {self.session_dir / 'engine.log'}"
        )
        t0 = time.perf_counter()
        self.engine = self._factory(params, self.session_dir / "engine.log")
        self.engine_start_s = time.perf_counter() - t0
        self.engine_settings = settings
        self._refresh_engine_status()
        return self.engine

    def stop_engine(self) -> None:
        engine, self.engine, self.engine_settings = self.engine, None, None
        if engine is not None:
            engine.shutdown()
        self._refresh_engine_status()

    def restart_engine(self) -> Backend:
        """Start, or stop and start again with the widget's engine settings."""
        self.engine_params()  # a bad setting fails here, before the running engine stops
        if self.engine is not None and not self.pending_changes():
            self.message.value = _message("The engine already runs with these settings.")
            return self.engine
        self.stop_engine()
        engine = self.start_engine()
        self.message.value = _message("Engine ready.", "ok")
        return engine

    def _refresh_engine_status(self) -> None:
        if self.engine is None or self.engine_settings is None:
            self.engine_button.description = "Start engine"
            self.engine_button.button_style = ""
            self.engine_status.value = _message(
                "No engine yet: it starts on the first Generate, or press Start engine."
            )
            return
        s = self.engine_settings
        running = (
            f"Engine running: model {s['model']} ({self.engine.model_path}), dtype {s['dtype']}, "
            f"max_model_len {s['max_model_len']}, limit_images {s['limit_images']}, device "
            f"{self.engine.device}; started in {self.engine_start_s:.0f} s. "
            f"vLLM's log: {self.session_dir / 'engine.log'}"
        )
        changes = self.pending_changes()
        if changes:
            self.engine_button.description = "Restart engine"
            self.engine_button.button_style = "warning"
            self.engine_status.value = _message(running) + _message(
                f"Changed: {describe_changes(changes)}. Press 'Restart engine' to apply "
                "(Generate is paused until then), or set them back.",
                "warning",
            )
        else:
            self.engine_button.description = "Restart engine"
            self.engine_button.button_style = ""
            self.engine_status.value = _message(running, "ok")

    # ---- inputs --------------------------------------------------------------------

    def read_images(self) -> list[ImageInput]:
        return images_from_paths(self.paths.value) + images_from_upload(self.upload.value)

    def read_request(self) -> Request:
        """The widget's request, or a ParameterError that says what to fix."""
        images = self.read_images()
        limit = int(self.limit_images.value)
        if len(images) > limit:
            raise ParameterError(
                f"{len(images)} images are given, but the engine takes at most {limit} per "
                "prompt (limit_images). Remove some, or raise limit_images and restart."
            )
        question = self.prompt.value
        return Request(
            question=question,
            prompt=chat_prompt(
                question, len(images), self._counts_for(self.model.value.strip()).family
            ),
            images=images,
            num_crops=int(self.num_crops.value),
            max_output_len=int(self.max_output_len.value),
            temperature=float(self.temperature.value),
        )

    def refresh_images(self) -> None:
        """Image sizes and their image tokens at every num_crops (no engine needed)."""
        try:
            images = self.read_images()
            if not images:
                self.images_info.value = _message("No image yet.")
                return
            counts = self._counts_for(self.model.value.strip())
            selected = int(self.num_crops.value)
            rows = []
            for item in images:
                row: dict[str, Any] = {
                    "image": item.name,
                    "size (w x h)": "{} x {}".format(*item.image.size),
                }
                for crops in range(1, counts.family.max_crops + 1):
                    mark = " ◀" if crops == selected else ""
                    row[f"{crops}{mark}"] = counts.image_tokens(item.image, crops)
                rows.append(row)
            self.images_info.value = html_table(
                rows, caption="Image tokens at each num_crops (◀ the selected one)"
            )
        except Exception as exc:  # shown in the widget; nothing else depends on it
            self.images_info.value = _message(str(exc), "error")

    # ---- generate ------------------------------------------------------------------

    def _guard(self, action: Callable[[], Any]) -> Any:
        """Run a button's action; errors become a message, the engine keeps running."""
        self.generate_button.disabled = self.engine_button.disabled = True
        try:
            return action()
        except (ParameterError, RestartRequired) as exc:
            self.message.value = _message(str(exc), "error")
        except Exception as exc:
            alive = " The engine keeps running." if self.engine is not None else ""
            self.message.value = _message(f"{type(exc).__name__}: {exc}.{alive}", "error")
        finally:
            self.generate_button.disabled = self.engine_button.disabled = False
            self._refresh_engine_status()
        return None

    def generate(self) -> Answer | None:
        """What the Generate button does; returns the answer, or None after a message."""
        self.message.value = _message("Working…")
        return self._guard(self._generate)

    def _generate(self) -> Answer:
        changes = self.pending_changes()
        if changes:
            raise RestartRequired(
                f"Engine settings changed ({describe_changes(changes)}): press 'Restart engine' "
                "to apply them, or set them back. Nothing was sent to the running engine."
            )
        request = self.read_request()
        settings = self.widget_settings()
        counts = self._counts_for(settings["model"])
        text_tokens = counts.text_tokens(request.prompt)
        image_tokens = [counts.image_tokens(i.image, request.num_crops) for i in request.images]
        check_length(text_tokens, image_tokens, request.num_crops, settings["max_model_len"])
        engine = self.start_engine()
        self.message.value = _message("Generating…")
        self.answer.value = text_block("")
        self.metrics.value = ""
        sampling = GenSampling(
            max_tokens=request.max_output_len,
            temperature=request.temperature,
            seed=self.params.seed,
        )
        started_at = datetime.now().isoformat(timespec="seconds")
        t0 = time.perf_counter()
        completion = engine.stream(request.gen_request(engine.family), sampling, self._show_partial)
        wall_ms = (time.perf_counter() - t0) * 1000
        result = result_from_completion(completion, request, text_tokens, image_tokens, wall_ms)
        self._answers += 1
        answer = Answer(
            index=self._answers,
            started_at=started_at,
            image_names=[item.name for item in request.images],
            num_crops=request.num_crops,
            max_output_len=request.max_output_len,
            temperature=request.temperature,
            streamed=completion.streamed,
            cached_prompt_tokens=completion.cached_tokens,
            result=result,
        )
        self._record(answer)
        self.message.value = _message(f"Answer {answer.index} done.", "ok")
        return answer

    def _show_partial(self, text: str) -> None:
        self.answer.value = text_block(text)

    def _record(self, answer: Answer) -> None:
        self.last_answer = answer
        self.history = [*self.history, answer][-self.params.history_size :]
        self.answer.value = text_block(answer.result.generated_text or "")
        self.metrics.value = html_table(
            answer.metric_rows(), caption=f"Answer {answer.index}: request timing"
        )
        self._render_history()
        with (self.session_dir / "answers.jsonl").open("a") as fh:
            fh.write(jsonio.dumps(answer.to_dict()) + "\n")

    def history_rows(self) -> list[dict]:
        return [
            {
                "#": a.index,
                "time": a.started_at[11:],
                "images": ", ".join(a.image_names),
                "num_crops": a.num_crops,
                "prompt": short(a.result.question, 60),
                "answer": short(a.result.generated_text, 80),
                "TTFT (ms)": a.result.ttft_ms,
                "prompt tokens (text + image)": a.prompt_tokens_text(),
                "output tokens": a.result.num_output_tokens,
                "tokens/s": a.result.output_tokens_per_s,
            }
            for a in reversed(self.history)
        ]

    def _render_history(self) -> None:
        rows = self.history_rows()
        self.history_view.value = html_table(rows) if rows else _message("No answers yet.")

    def display(self) -> None:
        from IPython.display import display

        self.refresh_images()
        display(self.widget)
