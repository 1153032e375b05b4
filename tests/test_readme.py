"""The README's Python examples run as written (so the documentation cannot rot)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    fit = namespace["fit"]
    assert fit.draws["mu"].shape == (4, 500, 2)
    assert set(namespace["natural"]) >= {"mu", "D", "b", "sigma", "tau", "sd", "corr"}
    assert namespace["state"].position.keys() == namespace["position"].keys()
