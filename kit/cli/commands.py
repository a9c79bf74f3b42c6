"""Command line: ``python -m kit run demo -f params/smoke-demo.yaml -p max_output_len 64``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from kit.cli.notebooks import NOTEBOOKS, schema_for
from kit.core import jsonio
from kit.core.files import NO_ROOM, write_failure
from kit.core.images import DEMO_IMAGE, draw_demo_image
from kit.core.params import ParameterError
from kit.download.verify import verify_main
from kit.mmmu.cli import score_main
from kit.models.registry import NAMED_MODELS, TINY_MODEL, model_list
from kit.perf.roofline_cli import add_arguments as add_roofline_arguments
from kit.perf.roofline_cli import roofline_main
from kit.records.results import RESULTS_FILE, read_document
from kit.report.render import NotebookUnreadable, render_html, render_markdown
from kit.runs.index import write_index
from kit.runs.parameters import RunRequest
from kit.runs.runner import main_run
from kit.share.command import add_arguments as add_share_arguments
from kit.share.command import share_main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a notebook into a new run folder and render it")
    run.add_argument("notebook", help=f"notebook name: {', '.join(NOTEBOOKS)}")
    run.add_argument("-f", "--parameters-file", action="append", default=[], metavar="YAML")
    run.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="TEXT")
    run.add_argument(
        "-p", "--parameters", action="append", nargs=2, default=[], metavar=("NAME", "VALUE")
    )
    run.add_argument(
        "-r", "--parameters-raw", action="append", nargs=2, default=[], metavar=("NAME", "VALUE")
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_FOLDER",
        help="continue an interrupted run in its folder, with its saved parameters",
    )

    render = sub.add_parser("render", help="render an executed notebook as an offline HTML report")
    render.add_argument("notebook_path", type=Path)
    render.add_argument("-o", "--output", type=Path, help="default: next to the notebook")

    smoke = sub.add_parser("build-smoke-model", help="build (or reuse) the embedded tiny model")
    smoke.add_argument("--seed", type=int, default=0)

    sub.add_parser("draw-demo-image", help="redraw kit/assets/demo_robot.png")

    models = sub.add_parser("models", help="list the model names the kit knows")
    models.add_argument("--json", action="store_true", help="a JSON list of objects")

    roofline = sub.add_parser(
        "roofline", help="a model's roofline bounds on named devices, without an engine"
    )
    add_roofline_arguments(roofline)

    score = sub.add_parser(
        "mmmu-score", help="score MMMU responses made anywhere, official and vendor-strict"
    )
    score.add_argument("--dataset", required=True, help="MMMU-layout folder, or 'fixture'")
    score.add_argument(
        "--predictions", required=True, type=Path, help='JSONL of {"id", "response"}'
    )
    score.add_argument("--split", default="validation")
    score.add_argument(
        "--out", type=Path, help="write the mmmu JSON (both scorings, one record per question)"
    )

    index = sub.add_parser("index", help="write outputs/index.html listing every run")
    index.add_argument("--outputs", type=Path, help="default: the repo's outputs/ folder")

    verify = sub.add_parser("verify", help="verify a downloaded model or dataset folder")
    verify.add_argument("folder", type=Path)

    share = sub.add_parser(
        "share", help="put runs on a wiki: a git-based wiki's clone, Confluence or MediaWiki"
    )
    add_share_arguments(share)
    return parser


def _render(notebook_path: Path, output: Path | None) -> int:
    """HTML and Markdown reports of an executed notebook, with its results when found."""
    if not notebook_path.is_file():
        print(f"error: {notebook_path} does not exist", file=sys.stderr)
        return 2
    results = None
    for candidate in (
        notebook_path.with_suffix(f".{RESULTS_FILE}"),
        notebook_path.parent / RESULTS_FILE,
    ):
        if candidate.is_file():
            results = read_document(candidate)
            break
    out = output or notebook_path.with_suffix(".html")
    try:
        print(render_html(notebook_path, out, results))
        print(render_markdown(notebook_path, out.with_suffix(".md"), results))
    except NotebookUnreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    try:
        return _dispatch(args)
    except ParameterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave or set cannot be used: no traceback
        if exc.errno in NO_ROOM:  # not a bad input: the same command works once there is room
            print(f"error: {write_failure(exc)}, then run the command again.", file=sys.stderr)
            return 1
        where = f" {exc.filename!r}" if exc.filename else ""
        print(
            f"error: cannot use{where}: {exc.strerror or exc}. Check that the path exists and "
            "that you may read (or write) it, then run the command again.",
            file=sys.stderr,
        )
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return main_run(
            RunRequest(
                notebook=args.notebook,
                schema=schema_for(args.notebook),
                files=args.parameters_file,
                yaml_strings=args.parameters_yaml,
                params=[tuple(p) for p in args.parameters],
                raw_params=[tuple(p) for p in args.parameters_raw],
                resume=args.resume,
            )
        )
    if args.command == "render":
        return _render(args.notebook_path, args.output)
    if args.command == "index":
        if args.outputs is not None and not args.outputs.is_dir():
            raise ParameterError(
                f"--outputs {str(args.outputs)!r} is not a folder, so it holds no runs. Give "
                "the outputs folder your runs are in (default: the repo's outputs/)."
            )
        print(write_index(args.outputs))
        return 0
    if args.command == "build-smoke-model":
        print(NAMED_MODELS[TINY_MODEL].ensure(args.seed))
        return 0
    if args.command == "mmmu-score":
        return score_main(args)
    if args.command == "verify":
        return verify_main(args)
    if args.command == "models":
        with contextlib.redirect_stdout(sys.stderr):  # vLLM may log as its modules import
            listing = model_list()
        if args.json:
            print(jsonio.dumps(listing, indent=2))
            return 0
        for entry in listing:
            where = "runs here" if entry["runs_here"] else "does not run here"
            print(f"{entry['name']}: {entry['family']}, {entry['kind']}, {where}: {entry['about']}")
        return 0
    if args.command == "roofline":
        return roofline_main(args)
    if args.command == "share":
        return share_main(args)
    if args.command == "draw-demo-image":
        draw_demo_image().save(DEMO_IMAGE, optimize=True)
        print(DEMO_IMAGE)
        return 0
    return 2
