"""The realistic mix (benchmarks/wechat_mix.py) stays a benchmark of conversations that work: a small
run must carry every conversation to the end with the replies it expects. Nothing here is timed; a
flow whose replies change without the mix following makes this fail (and the script exit 1, so no
figure of broken conversations is ever written to docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_a_small_mix_carries_every_conversation_to_its_end() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "wechat_mix.py"), "--residents", "20", "--rounds", "1", "--no-pin"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every reply as the conversation expects" in done.stdout, done.stdout[-3000:]
