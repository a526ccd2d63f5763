"""What made an artifact: the git commit of the code that trained or assembled it, and
the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform
import subprocess

from signgen.paths import REPO_ROOT


def git_commit() -> str | None:
    """The checkout's HEAD commit (40 hex digits), with ``-dirty`` appended when tracked
    files differ from it; None outside a git checkout or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                              text=True, check=True, timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def machine_info(load_before: float) -> dict:
    """The machine a benchmark ran on: CPU count, platform, processor, and the 1-minute
    load average before (``load_before``, read with ``os.getloadavg()`` when the timing
    started) and now."""
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2)}
