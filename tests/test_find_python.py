"""tools/find-python, which make uses to pick the interpreter: python3.13, python3.12 (also
through pyenv), then python3, each only if it is Python >= 3.12; else a clear error."""
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


def test_finds_pyenv_versions_behind_shims(bin_dir):
    """A pyenv shim python3.12 that answers only with PYENV_VERSION set (as pyenv's do when
    the version is not the global one), and a pyenv that lists 3.12.1 and 3.12.10: the
    finder asks `pyenv which` for the newest, 3.12.10."""
    real = bin_dir / "versions" / "3.12.10"
    real.mkdir(parents=True)
    (real / "python3.12").symlink_to(sys.executable)
    fake_python(bin_dir, "python3", "3.11.2")
    shim = bin_dir / "python3.12"
    shim.write_text(f'#!/bin/sh\n[ -n "$PYENV_VERSION" ] || exit 127\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    pyenv = bin_dir / "pyenv"
    pyenv.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  versions) printf "3.11.2\\n3.12.1\\n3.12.10\\n";;\n'
        f'  which) [ "$PYENV_VERSION" = 3.12.10 ] && echo {real / "python3.12"} || exit 1;;\n'
        "esac\n")
    pyenv.chmod(0o755)
    out = run(bin_dir)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(real / "python3.12")
