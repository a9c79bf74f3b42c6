"""The download notebook's report reads well: its tables are pipe tables in report.md (not
``<IPython.core.display.HTML object>``), and nothing in either report lacks alt text.

No engine: the model comes from tests/hubserver.py, a local stand-in for the Hub.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_kit
from tests.hubserver import HubServer
from tests.report_checks import check_report_files
from tests.test_download import MODEL_ID, model_repo


def test_download_report_md_shows_its_tables(tmp_path):
    with HubServer() as hub:
        commit = hub.add_repo(MODEL_ID, "model", model_repo("v2"))
        done = run_kit(
            *("run", "download", "-p", "endpoint", hub.url, "-p", "what", "model"),
            *("-p", "model_id", MODEL_ID, "-p", "revision", "main"),
            *("-p", "model_dir", str(tmp_path / "model")),
            env={"KIT_OUTPUTS_DIR": str(tmp_path / "outputs"), "KIT_PROGRESS_INTERVAL": "0"},
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("run folder: ")]
    folder = Path(line.split(": ", 1)[1])
    check_report_files(folder, done.stdout + done.stderr)
    md = (folder / "report.md").read_text()
    for caption in ("Parameters", "What to fetch", "Snapshots", "Python files", "Environment"):
        assert f"**{caption}**\n\n| " in md, caption
    assert f"| model | {MODEL_ID} | main | {commit} |" in md
    assert "| processing_phi3_v.py |" in md
