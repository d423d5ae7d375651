"""The workspace pages benchmark runs end to end at a tiny size, so it cannot rot unseen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_benchmark_measures_every_page_and_both_imports() -> None:
    command = [sys.executable, "-m", "bench.workspace_pages", "--supporters", "300"]
    command += ["--events", "1500", "--requests", "2", "--import-rows", "300"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DATABASE_"))}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    # Pages found by walking the url_map, one row per wave where a page takes a wave id.
    for page in ("dashboard.index", "supporters.index", "waves.wave_page [wave sending]"):
        assert f"  {page} " in out, out
    assert "waves.confirm_launch [wave draft]" in out and "p95 < 2000 ms" in out
    assert "browser, this" in out and "CLI, this" in out and "ratio to the CLI" in out
    # Both imports add the same rows to copies of the same database.
    after = re.findall(r"supporters after ([\d,]+)", out)
    assert len(after) == 2 and after[0] == after[1] and int(after[0].replace(",", "")) > 300
    assert "gauge" in out and "load average" in out
