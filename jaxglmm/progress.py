"""What a run shows while it samples: a progress bar only where one can be drawn (a terminal,
or Jupyter with tqdm's notebook bar), never in a log file or CI output; and one summary line
at the end.

The environment variable JAXGLMM_PROGRESS overrides where bars are drawn: "0" never, "1"
always (a text bar, also when the output is not a terminal). `sample(progress=False)` shows
nothing at all.
"""
from __future__ import annotations

import os
import sys

ENV = "JAXGLMM_PROGRESS"


def _in_jupyter() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's ZMQ shell)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def bar_kind(enabled: bool, stream=None) -> str | None:
    """Which bar to draw: "notebook", "text" or None (none).

    Args:
        enabled: the caller's `progress` (False: never a bar).
        stream: where a text bar goes (default sys.stderr).
    Raises:
        ValueError: JAXGLMM_PROGRESS is set to something other than 0 or 1.
    """
    if not enabled:
        return None
    value = os.environ.get(ENV, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{ENV}={value!r}: must be 0 (no progress bars) or 1 (always).")
    if value == "0":
        return None
    if value == "1":
        return "notebook" if _in_jupyter() else "text"
    if _in_jupyter():
        return "notebook"
    return "text" if _is_terminal(sys.stderr if stream is None else stream) else None


def make_bar(total: int, desc: str, kind: str | None):
    """A tqdm bar of `total` steps (shown after two seconds), or None."""
    if kind is None or total == 0:
        return None
    if kind == "notebook":  # tqdm.auto: the widget bar, or text where ipywidgets is missing
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, delay=2.0, leave=False)
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, delay=2.0, leave=False, file=sys.stderr)


def summary_line(info: dict, divergences: int) -> str:
    """One line on a finished run, e.g. "jaxglmm: 4 chains x 1000 draws (1000 warmup) in
    2.1 s + 3.4 s compiling; joint, dense mass matrix; 0 divergences"."""
    run_s = info.get("warmup_s", 0.0) + info.get("sampling_s", 0.0)
    compile_s = info.get("compile_s", 0.0)
    return (f"jaxglmm: {info.get('chains')} chains x {info.get('draws')} draws "
            f"({info.get('warmup')} warmup) in {run_s:.1f} s + {compile_s:.1f} s compiling; "
            f"{info.get('method')}, {info.get('mass_matrix')} mass matrix; "
            f"{divergences} divergence{'' if divergences == 1 else 's'}")


def report(info: dict, divergences: int, enabled: bool, stream=None) -> None:
    """Print `summary_line` to `stream` (default sys.stderr) when `enabled`, whether or not
    a bar was drawn (JAXGLMM_PROGRESS=0 turns bars off, not this line)."""
    if enabled:
        print(summary_line(info, divergences), file=sys.stderr if stream is None else stream,
              flush=True)
