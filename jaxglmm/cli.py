"""The `jaxglmm` command line: fit a CSV with a formula, summarise a saved fit, run the demo.

    jaxglmm fit data.csv --formula "y ~ x + (1 + t | id)" --family bernoulli --out fit.nc
    jaxglmm summary fit.nc
    jaxglmm demo

Every failure prints one line, `jaxglmm: error: <message>`, to stderr and exits non-zero:
2 for usage errors (a bad option or option value, an input file that is missing, a formula
that does not parse), 1 for data, model and sampling errors, 130 when interrupted. Warnings
print as one line each, `warning: <message>`. Set JAXGLMM_DEBUG=1 to get the traceback of an
error instead.
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

import jaxglmm

from . import demo
from .families import FAMILIES, make_family
from .fitting import METHODS

PROG = "jaxglmm"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
NA_ACTIONS = ("raise", "drop")
MAX_MESSAGE = 1000  # characters of an error message shown on its one line


class CLIError(Exception):
    """An error the command line reports as one line, with its exit code."""

    exit_code = EXIT_ERROR


class UsageError(CLIError):
    """The command line itself is wrong (option, option value, input path, formula syntax).

    Args:
        message: what is wrong, naming the argument.
        prog: the (sub)command whose --help to point to, or None for no hint.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} (see '{self.prog} --help')" if self.prog else message


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


# ------------------------------------------------------------------------ argument parsing

class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise UsageError (one line) instead of printing the
    usage block and exiting."""

    def error(self, message: str):
        raise UsageError(message, self.prog)


def _count(minimum: int):
    """argparse type: an integer >= `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value
    return parse


def _integer(text: str) -> int:
    """argparse type: any integer (a seed)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _probability(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


def _add_sampler_size(parser: argparse.ArgumentParser, chains: int, warmup: int,
                      draws: int) -> None:
    """--chains, --warmup, --draws, --seed and --no-progress, shared by fit and demo."""
    parser.add_argument("--chains", type=_count(1), default=chains, metavar="N",
                        help=f"number of chains (default {chains})")
    parser.add_argument("--warmup", type=_count(0), default=warmup, metavar="N",
                        help=f"warmup (adaptation) iterations per chain (default {warmup})")
    parser.add_argument("--draws", type=_count(1), default=draws, metavar="N",
                        help=f"kept draws per chain (default {draws})")
    parser.add_argument("--seed", type=_integer, default=0, metavar="INT",
                        help="random seed; the same seed gives the same draws (default 0)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide the progress bar")


def _links_help() -> str:
    """'gaussian: identity, log; bernoulli: logit, ...' from the families' allowed links."""
    return "; ".join(f"{name}: {', '.join(cls.links)}" for name, cls in FAMILIES.items())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `jaxglmm` with its subcommands fit, summary and demo."""
    parser = _Parser(
        prog=PROG,
        description="Bayesian generalized linear mixed models sampled by BlackJAX NUTS.",
        epilog="Exit status: 0 success, 1 data/model/sampling error, 2 usage error, "
               "130 interrupted. JAXGLMM_DEBUG=1 shows tracebacks.")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {jaxglmm.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)

    fit = commands.add_parser(
        "fit", help="fit a model to a CSV file and print its summary",
        description="Fit a GLMM to a CSV file, print the priors used and the posterior "
                    "summary, and optionally write the fit to a file.")
    fit.add_argument("data", help="CSV file with a header row")
    fit.add_argument("--formula", required=True, metavar="FORMULA",
                     help='lme4-style formula, e.g. "y ~ x + (1 + t | id)"')
    fit.add_argument("--family", required=True, type=str.lower, choices=list(FAMILIES),
                     metavar="FAMILY", help=f"response family: {', '.join(FAMILIES)}")
    fit.add_argument("--link", default=None, metavar="LINK",
                     help=f"link function ({_links_help()}); default: the first one")
    _add_sampler_size(fit, chains=4, warmup=1000, draws=1000)
    fit.add_argument("--method", choices=METHODS, default="auto", metavar="METHOD",
                     help="auto (default: collapsed for gaussian identity models, else "
                          "joint), joint (b sampled with the parameters) or collapsed (b "
                          "integrated out)")
    fit.add_argument("--target-accept", type=_probability, default=None, metavar="P",
                     help="step-size adaptation target (default 0.8)")
    fit.add_argument("--max-tree-depth", type=_count(1), default=10, metavar="N",
                     help="NUTS's maximum number of doublings (default 10)")
    fit.add_argument("--dense-mass", action=argparse.BooleanOptionalAction, default=None,
                     help="dense or diagonal inverse mass matrix (default: chosen by size)")
    centred = fit.add_mutually_exclusive_group()
    centred.add_argument("--centred", dest="centred", action="store_const", const=True,
                         default=None, help="sample the random effects b directly")
    centred.add_argument("--non-centred", dest="centred", action="store_const", const=False,
                         help="sample z with b = mu + L z (default: chosen by the data)")
    centred.add_argument("--laplace", dest="centred", action="store_const", const="laplace",
                         help="sample z with b = m + L^-T z, m and L L' the conditional mode "
                              "and curvature of b given the parameters (GLMMs)")
    fit.add_argument("--na-action", choices=NA_ACTIONS, default="raise", metavar="ACTION",
                     help="rows with missing values: raise (default: an error naming the "
                          "row) or drop (leave them out)")
    fit.add_argument("--out", default=None, metavar="PATH",
                     help="write the fit to this file (read it back with 'jaxglmm summary')")
    fit.add_argument("--include-b", action="store_true",
                     help="also summarise every random effect b")
    fit.set_defaults(run=run_fit)

    summary = commands.add_parser(
        "summary", help="print the summary of a saved fit",
        description="Load a fit written by 'jaxglmm fit --out' and print its summary.")
    summary.add_argument("fit", help="file written by 'jaxglmm fit --out'")
    summary.add_argument("--include-b", action="store_true",
                         help="also summarise every random effect b")
    summary.set_defaults(run=run_summary)

    demo = commands.add_parser(
        "demo", help="fit the bundled sleepstudy example (no data needed)",
        description="Fit Reaction ~ Days + (1 + Days | Subject) to lme4's sleepstudy, "
                    "bundled with jaxglmm, and print the priors and the summary.")
    _add_sampler_size(demo, chains=4, warmup=1000, draws=1000)
    demo.set_defaults(run=run_demo)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments. Raises UsageError naming the bad argument."""
    args, extra = build_parser().parse_known_args(argv)
    if extra:  # point to the subcommand's help, not the top level's
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}",
                         f"{PROG} {args.command}")
    if args.command == "fit":
        check_family(args.family, args.link)
    return args


def check_family(family: str, link: str | None) -> None:
    """Raise UsageError naming --family or --link when the pair is not available."""
    try:
        make_family(family, link)
    except ValueError as exc:
        option = "--link" if link is not None else "--family"
        raise UsageError(f"argument {option}: {exc}", f"{PROG} fit") from None


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


def read_csv(path: str):
    """The CSV file at `path` as a pandas DataFrame.

    Raises:
        UsageError: the file does not exist.
        CLIError: pandas cannot read it, or it has no rows.
    """
    p = input_file(path, "data file")
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise CLIError(f"data file {path!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise CLIError(f"data file {path!r} is not a readable CSV file: "
                       f"{one_line(str(exc), 300)}") from None
    if df.empty:
        raise CLIError(f"data file {path!r} has a header but no rows")
    return df


def _list_some(names: list[str], most: int = 20) -> str:
    """The first `most` names, comma-separated, and how many there are when cut."""
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])}, ... ({len(names)} in all)"


def formula_variables(formula: str) -> set[str] | None:
    """The data columns `formula` refers to, parsed by formulae; None when formulae is not
    installed (the model then reports problems itself).

    Raises:
        UsageError: the formula has no '~' or does not parse.
    """
    if "~" not in formula:
        raise UsageError(f"argument --formula: {formula!r} has no '~'; write it as "
                         "'response ~ terms', e.g. 'y ~ x + (1 | group)'", f"{PROG} fit")
    try:
        import formulae
    except ImportError:
        return None
    try:
        description = formulae.model_description(formula)
    except Exception as exc:  # formulae raises its own ParseError / ScanError classes
        reason = one_line(str(exc)) or type(exc).__name__
        raise UsageError(f"argument --formula: cannot parse {formula!r}: {reason}",
                         f"{PROG} fit") from None
    return {name for name in description.var_names if name}


def check_columns(formula: str, columns, source: str) -> None:
    """CLIError naming every variable of `formula` that is not a column of the data."""
    names = formula_variables(formula)
    if names is None:
        return
    columns = [str(c) for c in columns]
    missing = sorted(names - set(columns))
    if missing:
        listed = ", ".join(map(repr, missing))
        noun = "column" if len(missing) == 1 else "columns"
        raise CLIError(f"--formula uses {noun} {listed} not found in {source}; its columns "
                       f"are: {_list_some(columns)}")


def build_model(formula: str, data, options: dict):
    """`jaxglmm.GLMM(formula, data, **options)`; CLIError when this version of jaxglmm has
    no formula entry point (its GLMM does not take these arguments)."""
    glmm = jaxglmm.GLMM
    try:
        inspect.signature(glmm).bind(formula, data, **options)
    except TypeError:
        raise CLIError("this version of jaxglmm has no formula interface "
                       "(jaxglmm.GLMM(formula, data, family=...)); use the Python arrays "
                       "interface, GLMM.from_arrays") from None
    except ValueError:  # no signature to check: let the call itself tell
        pass
    return glmm(formula, data, **options)


# ----------------------------------------------------------------------------- output

def format_summary(table) -> str:
    """The summary DataFrame as text: every row and column, 4 significant digits."""
    return table.to_string(float_format="{:.4g}".format)


def _indent(text: str) -> str:
    return "  " + text.replace("\n", "\n  ")


# --------------------------------------------------------------------------- commands

def model_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of `jaxglmm.GLMM(formula, data, ...)` from the parsed options."""
    return {"family": args.family, "link": args.link, "centred": args.centred,
            "na_action": args.na_action}


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
    check_columns(args.formula, df.columns, f"data file {args.data!r}")
    model = build_model(args.formula, df, model_options(args))
    print(f"{args.formula}: {model!r}")
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
    path = input_file(args.fit, "fit file")
    load = getattr(jaxglmm, "load", None)
    if load is None:
        raise CLIError("this version of jaxglmm cannot read saved fits (jaxglmm.load is "
                       "missing)")
    try:
        fit = load(str(path))
    except Exception as exc:
        raise CLIError(f"cannot read a jaxglmm fit from {args.fit!r}: "
                       f"{describe_exception(exc)}") from None
    print(f"{args.fit}: {fit!r}")
    sys.stdout.flush()
    print(format_summary(fit.summary(include_b=args.include_b)))
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    """`jaxglmm demo`: the bundled sleepstudy example of `jaxglmm.demo`."""
    demo.main(chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed,
              progress=args.progress)
    return EXIT_OK


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
            return args.run(args)
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
