"""Repository contracts: README commands, CI, entry points, no absolute paths."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from signgen.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(pip install torch==2\.13\.0[^\n]*)\n```", README)


def test_readme_gives_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
    assert "pytest" in commands[1]
    # The first command signs text with the shipped demo (tests/test_shipped_demo.py runs it).
    assert "python sample.py --text" in commands[0] and "--model" not in commands[0]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("script", ["sample.py", "train.py"])
def test_entry_points_print_usage(script):
    result = run(script, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout


def test_user_errors_are_one_line_with_exit_status_2():
    result = run("train.py", "--stage", "video", "render.height=tall")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "render.height" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("sample.py", "--text", "hello", "--model", "no/such/folder")
    assert result.returncode == 2 and "no signgen pipeline in no/such/folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_main_job_renders_the_preview(tmp_path):
    out = tmp_path / "preview.png"
    result = run("-m", "signgen.render.preview", "--out", str(out), "--size", "64")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000


def test_import_is_light():
    result = run("-c", "import signgen, sys; print('torch' in sys.modules)")
    assert result.stdout.strip() == "False"


def test_no_machine_paths_in_tracked_text_files():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    # Built from pieces so that this file does not match itself.
    pattern = re.compile("(" + "|".join(["/" + "work/", "/" + "root/", "/" + r"home/\w+"]) + ")")
    for name in files.splitlines():
        path = REPO_ROOT / name
        if path.suffix in {".py", ".yaml", ".md", ".toml", ".json"} and path.is_file():
            assert not pattern.search(path.read_text()), path


def test_display_path_is_relative_below_the_working_directory(tmp_path, monkeypatch):
    from signgen.paths import display_path

    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "a" / "b") == Path("a/b")
    assert display_path("/elsewhere/x") == Path("/elsewhere/x")
