"""Shared fixtures. Engine tests are marked ``slow``; the tiny model is built once and cached.

Runs that several test modules read (the demo, the perf sweep, a vllm-scheduling perf run)
are made once per session into one outputs folder: each costs an engine start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.roofline_checks")  # its asserts explain themselves

REPO = Path(__file__).resolve().parents[1]


# The runs several modules read; a test that needs one runs on the worker that made it.
SHARED_RUNS = {"demo_run", "mmmu_run", "perf_sweep_run", "perf_vllm_run"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Under ``-n 2 --dist loadgroup`` (``make test``): a session fixture is made once per
    worker and a module fixture once per worker that runs a test of its module, so each
    costs an engine start there. Tests that read the shared runs share one worker; a
    module with a module-scoped fixture stays on one worker; every other test goes
    wherever a worker is free."""
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures is None:
            continue
        if SHARED_RUNS & set(fixtures.names_closure):
            group = "shared-runs"
        elif any(
            definitions[-1].scope == "module" for definitions in fixtures.name2fixturedefs.values()
        ):
            group = item.module.__name__
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
    # The longest group first, so that the other worker takes the rest meanwhile.
    items.sort(key=lambda item: xdist_group(item) != "shared-runs")


def pytest_configure(config):
    """pytest 9 no longer lets pytest-xdist 3.8 rename node ids, so ``--dist loadgroup``
    would spread every group over both workers, each starting the group's engines again:
    refused, instead of a suite twice as slow."""
    if config.getoption("dist", "no") == "loadgroup" and pytest.version_tuple >= (9,):
        raise pytest.UsageError(
            f"--dist loadgroup does not group tests with pytest {pytest.__version__} "
            "(pytest-xdist 3.8 cannot rename its node ids): install the pytest that "
            "pyproject.toml's dev extra pins (make test does), or run with -n 0."
        )


def xdist_group(item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return mark.args[0] if mark else None


@pytest.fixture(scope="session")
def smoke_model() -> Path:
    from kit.models.phi3v.tiny import ensure_smoke_model

    return ensure_smoke_model()


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    """Run folders go to a temporary outputs/ instead of the repo's."""
    folder = tmp_path / "outputs"
    monkeypatch.setenv("KIT_OUTPUTS_DIR", str(folder))
    return folder


def run_kit(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: int = 900):
    """``python -m kit ...`` in a subprocess, as a user types it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kit", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


TRICKY_PROMPT = 'Is <b>this</b> a robot & "what" is it?'


@pytest.fixture(scope="session")
def shared_outputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-outputs")


def kit_in_process(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m kit ...`` run by this process: the same entry point, arguments and
    output as the command, without a new interpreter importing vLLM again (seconds per
    run). Tests of signals and of the command line itself use ``run_kit``."""
    from kit.cli.commands import main
    from kit.engines.logs import redirected_output

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    os.chdir(REPO)
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    try:
        with redirected_output(out, err):
            code = main(list(args))
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    out.seek(0)
    err.seek(0)
    return subprocess.CompletedProcess(["kit", *args], code, out.read(), err.read())


def run_into(
    outputs: Path, notebook: str, *args: str, env: dict | None = None, cli: bool = False
) -> tuple[Path, subprocess.CompletedProcess]:
    """``python -m kit run NOTEBOOK ...`` into ``outputs`` (in this process, or with ``cli``
    as a user types it); the run folder it printed."""
    run = run_kit if cli else kit_in_process
    proc = run("run", notebook, *args, env={"KIT_OUTPUTS_DIR": str(outputs), **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = re.search(r"^run folder: (.+)$", proc.stdout, re.MULTILINE).group(1)
    return Path(folder), proc


def exif_rotated_photo(path: Path) -> Path:
    """A JPEG stored 200 wide x 100 tall whose EXIF orientation (6) makes it 100 x 200 upright,
    as phone cameras write them."""
    from PIL import ExifTags, Image

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    Image.new("RGB", (200, 100), (200, 60, 60)).save(path, "JPEG", exif=exif)
    return path


@pytest.fixture(scope="session")
def demo_run(shared_outputs, smoke_model, tmp_path_factory):
    """The demo as users start it, with a prompt that needs escaping, about the kit's picture
    and a phone photo whose EXIF orientation rotates it."""
    photo = exif_rotated_photo(tmp_path_factory.mktemp("photos") / "phone.jpg")
    return run_into(
        shared_outputs,
        *("demo", "-f", "params/smoke-demo.yaml", "-p", "prompt", TRICKY_PROMPT),
        *("-p", "image", f"demo,{photo}"),
    )


MMMU_SUBJECTS = ["Art", "Computer_Science", "Economics", "History", "Pharmacy", "Physics"]
BROKEN_ID = "validation_Physics_2"


@pytest.fixture(scope="session")
def mmmu_dataset(tmp_path_factory) -> Path:
    """Six fixture subjects (one per group); image_1 of BROKEN_ID is not an image."""
    import shutil

    import pyarrow.parquet as pq

    from kit.mmmu.dataset import fixture_dataset

    source = fixture_dataset()
    dest = tmp_path_factory.mktemp("mmmu-data")
    for subject in MMMU_SUBJECTS:
        shutil.copytree(source / subject, dest / subject)
    path = dest / "Physics" / "validation-00000-of-00001.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    for row in rows:
        if row["id"] == BROKEN_ID:
            row["image_1"] = {"bytes": b"\x89PNG but not really", "path": "broken.png"}
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)
    return dest


@pytest.fixture(scope="session")
def mmmu_run(shared_outputs, mmmu_dataset, smoke_model):
    """MMMU on two questions of each of the six subjects, one of which cannot be decoded."""
    return run_into(
        shared_outputs,
        *("mmmu", "-f", "params/smoke-mmmu.yaml", "-p", "dataset", str(mmmu_dataset)),
        *("-p", "subjects", ",".join(MMMU_SUBJECTS), "-p", "limit", "2", "-p", "chunk_size", "5"),
    )


@pytest.fixture(scope="session")
def perf_sweep_run(shared_outputs, smoke_model):
    """A 2 x 2 sweep under the default vendor scheduling, labelled 'first'."""
    return run_into(
        shared_outputs,
        "perf",
        *("-f", "params/smoke-perf-sweep.yaml", "-p", "max_output_len", "8", "-p", "warmup", "0"),
        *("-p", "batch_size", "1,2", "-p", "input_len", "800,1024", "-p", "label", "first"),
    )


@pytest.fixture(scope="session")
def perf_vllm_run(shared_outputs, smoke_model):
    """One point of the sweep's scenarios under scheduling: vllm, labelled 'second' (the
    command line in a new interpreter is tests/test_faults.py's, which runs it so)."""
    return run_into(
        shared_outputs,
        "perf",
        *("-f", "params/smoke-perf.yaml", "-p", "scheduling", "vllm", "-p", "label", "second"),
        *("-p", "input_len", "800", "-p", "max_output_len", "8", "-p", "iterations", "1"),
        *("-p", "warmup", "0", "-p", "ttft_probe", "false"),
    )
