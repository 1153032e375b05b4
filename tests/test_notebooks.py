"""The example notebooks execute without error, and are committed as valid notebooks without
outputs (they are their own source: edit them in Jupyter, clear the outputs, commit).

Each notebook runs in a fresh kernel of this interpreter (sys.executable, via a kernelspec
written to a temporary folder, so no installed "python3" kernel of another environment can
be picked up), with cwd = notebooks/, PYTHONPATH = the repository root (this checkout's
jaxglmm) and MPLBACKEND=Agg.
"""
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "jaxglmm-test"
CELL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def kernel_dirs(tmp_path_factory) -> list[str]:
    """A folder holding one kernelspec: ipykernel on this interpreter, with the test env."""
    folder = tmp_path_factory.mktemp("kernels")
    spec_dir = folder / KERNEL_NAME
    spec_dir.mkdir()
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jaxglmm test kernel",
        "language": "python",
        "env": {"PYTHONPATH": pythonpath, "MPLBACKEND": "Agg"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return [str(folder)]


def test_there_is_a_notebook_per_worked_example():
    # six worked examples of the course notes, the lesson of its "vague" Wishart prior and the
    # sampling experiments
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) == 8, names


def test_notebooks_are_valid_and_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for k, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, \
                    f"{path.name}: cell {k} was committed with outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, kernel_dirs):
    nb = nbformat.read(path, as_version=4)
    with_outputs = [k for k, c in enumerate(nb.cells)
                    if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"{path.name}: committed with outputs in cells {with_outputs}"

    # one extra cell at the end: which jaxglmm the kernel imported
    nb.cells.append(nbformat.v4.new_code_cell("import jaxglmm; print(jaxglmm.__file__)"))
    km = KernelManager(kernel_name=KERNEL_NAME,
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs))
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()  # raises CellExecutionError naming the cell on the first failure
    finally:  # the client does not own a kernel manager it was given: stop the kernel here
        if km.has_kernel:
            km.shutdown_kernel(now=True)

    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    assert Path(printed).resolve().is_relative_to(ROOT), f"kernel imported {printed}"
