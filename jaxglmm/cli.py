"""The `jaxglmm` command line: fit a CSV with a formula, summarise, predict from and plot a
saved fit, run the demo.

    jaxglmm fit data.csv --formula "y ~ x + (1 + t | id)" --family bernoulli --out fit.nc
    jaxglmm summary fit.nc
    jaxglmm predict fit.nc new.csv --out predictions.csv
    jaxglmm plot fit.nc --kind trace --out trace.png
    jaxglmm demo

Every failure prints one line, `jaxglmm: error: <message>`, to stderr and exits non-zero:
2 for usage errors (a bad option or option value, an input file that is missing, a formula
that does not parse), 1 for data, model and sampling errors, 130 when interrupted. Warnings
print as one line each, `warning: <message>`. Set JAXGLMM_DEBUG=1 to get the traceback of an
error instead.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

import jaxglmm

from . import demo
from .cli_args import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, MAX_MESSAGE, PROG, CLIError,
                       UsageError, parse_args)
from .family_registry import make_family
from .formula_syntax import formula_columns

# ------------------------------------------------------------------ errors and warnings

def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line: its lines stripped and joined by spaces, cut to `limit` chars."""
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[:limit - 3].rstrip() + "..."


def describe_exception(exc: BaseException) -> str:
    """A readable message for an exception, without its traceback.

    CLIError, ValueError and OSError messages are shown as they are (they name the argument,
    column or file); a KeyError's key is quoted; any other exception is prefixed by its type,
    which is then the most useful hint of what went wrong.
    """
    if isinstance(exc, CLIError):
        message = str(exc)
    elif isinstance(exc, KeyError):  # str(KeyError) is the repr of its key: unquote it
        key = exc.args[0] if exc.args else ""
        message = key if isinstance(key, str) and " " in key else f"missing key {key!r}"
    elif isinstance(exc, OSError) and exc.filename is not None:
        message = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, (ValueError, OSError)):
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return one_line(message or type(exc).__name__)


def format_error(exc: BaseException) -> str:
    """The one line printed for an error: `jaxglmm: error: <message>`."""
    return f"{PROG}: error: {describe_exception(exc)}"


def exit_code(exc: BaseException) -> int:
    """The exit status for an exception: 130 for an interrupt, 2 for usage errors, else 1."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, CLIError):
        return exc.exit_code
    return EXIT_ERROR


def format_warning(message) -> str:
    """The one line printed for a warning: `warning: <message>`."""
    return f"warning: {one_line(str(message))}"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """`warnings.showwarning` replacement: one line on stderr, no source location."""
    print(format_warning(message), file=sys.stderr if file is None else file)


# ------------------------------------------------------------------------------ inputs

def input_file(path: str, what: str) -> Path:
    """`path` as a Path, or UsageError when it is not an existing file."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {path!r}: no such file")
    if not p.is_file():
        raise UsageError(f"{what} {path!r}: not a file")
    return p


def check_out_path(path: str) -> Path:
    """`path` as a Path whose folder exists, checked before sampling so that a long run is
    not lost at the end; UsageError otherwise."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"argument --out: {path!r} is a folder, not a file name")
    if not p.parent.is_dir():
        raise UsageError(f"argument --out: folder {str(p.parent)!r} does not exist")
    return p


def read_csv(path: str, what: str = "data file"):
    """The CSV file at `path` ("-": standard input) as a pandas DataFrame.

    Raises:
        UsageError: the file does not exist.
        CLIError: pandas cannot read it, or it has no rows.
    """
    p = sys.stdin if path == "-" else input_file(path, what)
    if path == "-":
        path = "<standard input>"
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise CLIError(f"{what} {path!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CLIError(f"{what} {path!r} is not a readable CSV file: "
                       f"{one_line(str(exc), 300)}") from None
    if df.empty:
        raise CLIError(f"{what} {path!r} has a header but no rows")
    return df


def _list_some(names: list[str], most: int = 20) -> str:
    """The first `most` names, comma-separated, and how many there are when cut."""
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])}, ... ({len(names)} in all)"


def full_formula(formula: str, offsets: list) -> str:
    """`formula` with each --offset EXPR added as "+ offset(EXPR)"."""
    return formula + "".join(f" + offset({expr})" for expr in offsets)


def formula_variables(formula: str, family: str = "gaussian") -> set[str]:
    """The data columns `formula` refers to, found by the parser the Python API uses
    (`jaxglmm.formula_syntax.formula_columns`).

    Raises:
        UsageError: the formula has no '~' or does not parse.
    """
    if "~" not in formula:
        raise UsageError(f"argument --formula: {formula!r} has no '~'; write it as "
                         "'response ~ terms', e.g. 'y ~ x + (1 | group)'", f"{PROG} fit")
    try:
        return set(formula_columns(formula, make_family(family)))
    except ValueError as exc:
        reason = one_line(str(exc).removeprefix("formula: "))
        raise UsageError(f"argument --formula: cannot parse {formula!r}: {reason}",
                         f"{PROG} fit") from None


def check_columns(formula: str, family: str, columns, source: str) -> None:
    """CLIError naming every variable of `formula` that is not a column of the data."""
    names = formula_variables(formula, family)
    columns = [str(c) for c in columns]
    missing = sorted(names - set(columns))
    if missing:
        listed = ", ".join(map(repr, missing))
        noun = "column" if len(missing) == 1 else "columns"
        raise CLIError(f"--formula uses {noun} {listed} not found in {source}; its columns "
                       f"are: {_list_some(columns)}")


def build_model(formula: str, data, options: dict):
    """`jaxglmm.GLMM(formula, data, **options)`."""
    return jaxglmm.GLMM(formula, data, **options)


# ----------------------------------------------------------------------------- output

def format_summary(table) -> str:
    """The summary DataFrame as text: every row and column, 4 significant digits."""
    return table.to_string(float_format="{:.4g}".format)


def _indent(text: str) -> str:
    return "  " + text.replace("\n", "\n  ")


# --------------------------------------------------------------------------- commands

def model_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of `jaxglmm.GLMM(formula, data, ...)` from the parsed options."""
    options = {"family": args.family, "link": args.link, "centred": args.centred,
               "na_action": args.na_action}
    if getattr(args, "weights", None) is not None:
        options["weights"] = args.weights
    return options


def sample_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of `GLMM.sample` from the parsed options."""
    return {"chains": args.chains, "warmup": args.warmup, "draws": args.draws,
            "seed": args.seed, "method": args.method, "target_accept": args.target_accept,
            "max_tree_depth": args.max_tree_depth, "dense_mass": args.dense_mass,
            "progress": args.progress}


def run_fit(args: argparse.Namespace) -> int:
    """`jaxglmm fit`: read, check, build, print the priors, sample, save, print the summary."""
    out = check_out_path(args.out) if args.out else None
    if out is not None and not hasattr(jaxglmm.Fit, "save"):
        raise CLIError("argument --out: this version of jaxglmm cannot save fits "
                       "(Fit.save is missing)")
    df = read_csv(args.data)
    formula = full_formula(args.formula, args.offset)
    check_columns(formula, args.family, df.columns, f"data file {args.data!r}")
    model = build_model(formula, df, model_options(args))
    print(f"{formula}: {model!r}")
    print("priors (defaults are scaled to the data):")
    print(_indent(model.describe_priors()))
    sys.stdout.flush()
    t0 = time.perf_counter()
    fit = model.sample(**sample_options(args))
    info = getattr(fit, "info", {})
    print(f"sampled {info.get('chains', args.chains)} chains x "
          f"{info.get('draws', args.draws)} draws in {time.perf_counter() - t0:.1f} s "
          f"({info.get('method', args.method)}, {info.get('parametrisation', '?')}, "
          f"{info.get('mass_matrix', '?')} mass matrix; "
          f"divergences: {fit.num_divergences})")
    if out is not None:
        fit.save(str(out))
        print(f"fit written to {str(out)!r}")
    sys.stdout.flush()
    print(format_summary(fit.summary(include_b=args.include_b)))
    return EXIT_OK


def run_summary(args: argparse.Namespace) -> int:
    """`jaxglmm summary`: load a saved fit and print its summary."""
    fit = _load_fit(args.fit)
    print(f"{args.fit}: {fit!r}")
    sys.stdout.flush()
    print(format_summary(fit.summary(include_b=args.include_b)))
    return EXIT_OK


def _load_fit(path_text: str):
    path = input_file(path_text, "fit file")
    load = getattr(jaxglmm, "load", None)
    if load is None:
        raise CLIError("this version of jaxglmm cannot read saved fits (jaxglmm.load is "
                       "missing)")
    try:
        return load(str(path))
    except Exception as exc:
        raise CLIError(f"cannot read a jaxglmm fit from {path_text!r}: "
                       f"{describe_exception(exc)}") from None


def run_predict(args: argparse.Namespace) -> int:
    """`jaxglmm predict`: a saved fit's summary predictions for new rows, as CSV."""
    out = check_out_path(args.out) if args.out else None
    fit = _load_fit(args.fit)
    new = read_csv(args.newdata, "new data file")
    table = fit.predict(new, kind=args.kind, groups=args.groups, summary=True, seed=args.seed)
    table.index.name = "row"
    if out is None:
        table.to_csv(sys.stdout)
        sys.stdout.flush()
    else:
        table.to_csv(out)
        print(f"predictions for {len(table)} rows written to {str(out)!r}")
    return EXIT_OK


def run_plot(args: argparse.Namespace) -> int:
    """`jaxglmm plot`: an ArviZ plot of a saved fit, written to an image file."""
    out = check_out_path(args.out)
    fit = _load_fit(args.fit)
    import matplotlib
    matplotlib.use("Agg")  # files only: no window, also without a display
    import matplotlib.pyplot as plt

    drawn = getattr(fit, f"plot_{args.kind}")(var_names=args.var)
    try:
        drawn.savefig(out, bbox_inches="tight")
    except ValueError as exc:  # an extension matplotlib cannot write
        raise UsageError(f"argument --out: {one_line(str(exc))}", f"{PROG} plot") from None
    finally:
        plt.close("all")
    print(f"{args.kind} plot written to {str(out)!r}")
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    """`jaxglmm demo`: the bundled sleepstudy example of `jaxglmm.demo`."""
    demo.main(chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed,
              progress=args.progress)
    return EXIT_OK


COMMANDS = {"fit": run_fit, "summary": run_summary, "predict": run_predict, "plot": run_plot,
            "demo": run_demo}


# ------------------------------------------------------------------------------ main

def _silence_stdout() -> None:
    """Point stdout at os.devnull, so that Python's final flush after a closed pipe does not
    print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced, e.g. under pytest
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` (default sys.argv[1:]); returns the exit status.

    Errors print one line on stderr (no traceback unless JAXGLMM_DEBUG=1), warnings one
    line each.
    """
    debug = os.environ.get("JAXGLMM_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                args = parse_args(argv)
            except SystemExit as exc:  # --help and --version print and exit 0
                return exc.code if isinstance(exc.code, int) else EXIT_OK
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `jaxglmm summary fit.nc | head`: stop quietly
        _silence_stdout()
        return EXIT_ERROR
    except Exception as exc:
        if debug:
            raise
        print(format_error(exc), file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
