"""The README's five-minute tour runs as written: its shell blocks, in order, in one bash, in a fresh folder.

The runner (`shell_blocks`, `run_tour`) takes every ```sh block of the README's "A five-minute tour" section and
runs them as one script under ``set -euo pipefail``: a command that fails, an option that does not exist or a
variable the tour never set fails the test. The tour's port (8470) is swapped for a free one, so the test can
run beside other servers. A second test breaks one command of the tour and checks that the runner notices.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from onshore.web.server import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## A five-minute tour"


def shell_blocks(markdown: str, section: str) -> list[str]:
    """The ```sh blocks of ``section`` (up to the next ``## `` heading), in order."""
    start = markdown.index(section)
    end = markdown.find("\n## ", start + len(section))
    body = markdown[start : end if end != -1 else None]
    return re.findall(r"^```sh\n(.*?)^```", body, flags=re.S | re.M)


def run_tour(blocks: list[str], folder: Path, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    port = str(free_port())
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(blocks)
    script = script.replace("8470", port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSHORE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["ONSHORE_SERVER__PORT"] = port
    return subprocess.run(
        ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = shell_blocks(README.read_text(encoding="utf-8"), SECTION)
    assert len(blocks) >= 4, "the tour lost its shell blocks"
    done = run_tour(blocks, tmp_path)
    assert done.returncode == 0, (
        f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    out = done.stdout
    assert '"accepted":1' in out and '"dropped_no_consent":1' in out  # the speed kept, the position dropped
    assert re.search(r"[}\]\n]403\n", out), out  # the analyst of cn refused the eu region (curl's -w line)
    assert '"stored":true' in out  # the frame
    assert (tmp_path / "anonymised.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_a_broken_tour_command_fails_the_runner(tmp_path: Path) -> None:
    blocks = shell_blocks(README.read_text(encoding="utf-8"), SECTION)
    broken = [b.replace("--validity 90d", "--days 30") for b in blocks]
    assert broken != blocks, "the tour no longer grants a consent with --validity"
    # only what it takes to reach the broken command: the setup block, then the consent block
    setup, consent = broken[0], next(b for b in broken if "--days 30" in b)
    done = run_tour([setup, consent], tmp_path)
    assert done.returncode != 0
    assert "--days" in done.stderr
