"""tools/find-python, which make uses to pick the interpreter: python3.13, python3.12 (also
through pyenv), then python3, each only if it is Python >= 3.12; else a clear error."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "find-python"


def fake_python(folder: Path, name: str, version: str | None) -> None:
    """An executable `name` in `folder`: the test interpreter (version None) or a script
    that reports `version` the way the finder asks (exit 1 below 3.12)."""
    path = folder / name
    if version is None:
        path.symlink_to(sys.executable)
        return
    major, minor = (int(v) for v in version.split(".")[:2])
    low = int((major, minor) < (3, 12))
    path.write_text(f"#!/bin/sh\ncase \"$*\" in *version.split*) echo {version};; "
                    f"*) exit {low};; esac\n")
    path.chmod(0o755)


def run(folder: Path):
    env = {"PATH": f"{folder}:/usr/bin:/bin", "HOME": str(folder)}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True)


@pytest.fixture
def bin_dir(tmp_path):
    if shutil.which("sh") is None:  # pragma: no cover - every CI machine has sh
        pytest.skip("no sh")
    return tmp_path


def test_prefers_python3_13_then_3_12(bin_dir):
    fake_python(bin_dir, "python3", "3.11.2")
    fake_python(bin_dir, "python3.12", None)
    out = run(bin_dir)
    assert out.returncode == 0 and out.stdout.strip() == str(bin_dir / "python3.12")
    fake_python(bin_dir, "python3.13", None)
    assert run(bin_dir).stdout.strip() == str(bin_dir / "python3.13")


def test_python3_when_it_is_new_enough(bin_dir):
    fake_python(bin_dir, "python3", None)
    out = run(bin_dir)
    assert out.returncode == 0 and out.stdout.strip() == str(bin_dir / "python3")


def test_says_what_it_needs_when_only_an_old_python3_is_there(bin_dir):
    fake_python(bin_dir, "python3", "3.11.2")
    fake_python(bin_dir, "python3.12", "3.11.2")  # a shim that answers with another version
    out = run(bin_dir)
    assert out.returncode == 1 and out.stdout == ""
    assert "needs Python >= 3.12" in out.stderr and "3.11.2" in out.stderr
    assert "PYTHON=" in out.stderr


@pytest.mark.skipif(os.environ.get("PYENV_ROOT") is None and shutil.which("pyenv") is None,
                    reason="no pyenv here")
def test_finds_pyenv_versions_behind_shims():
    # with pyenv's shims first on PATH and no PYENV_VERSION, python3.12 alone does not answer
    env = dict(os.environ)
    env.pop("PYENV_VERSION", None)
    out = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    version = subprocess.run([out.stdout.strip(), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout
    assert version.strip() in ("(3, 12)", "(3, 13)")
