"""What made an artifact: the git commit of the code that trained or assembled it."""

from __future__ import annotations

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
