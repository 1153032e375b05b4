"""The command line's arguments: the parser of every subcommand, the argument types, and the
one-line errors the command line reports (`CLIError`, `UsageError`). `jaxglmm.cli` runs the
commands; this module only reads what was asked.
"""
from __future__ import annotations

import argparse

from .family_registry import FAMILIES, make_family
from .fitting import METHODS
from .inference_data import PLOT_KINDS
from .predict import GROUPS as PREDICT_GROUPS, KINDS as PREDICT_KINDS
from .version import __version__


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
                        help="no progress bar and no summary line on stderr (bars are drawn "
                             "only on a terminal; JAXGLMM_PROGRESS=0/1 overrides)")


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
                        version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)

    fit = commands.add_parser(
        "fit", help="fit a model to a CSV file and print its summary",
        description="Fit a GLMM to a CSV file, print the priors used and the posterior "
                    "summary, and optionally write the fit to a file.")
    fit.add_argument("data", help="CSV file with a header row ('-': standard input)")
    fit.add_argument("--formula", required=True, metavar="FORMULA",
                     help='lme4-style formula, e.g. "y ~ x + (1 + t | id)"')
    fit.add_argument("--family", default="gaussian", type=str.lower, choices=list(FAMILIES),
                     metavar="FAMILY",
                     help=f"response family: {', '.join(FAMILIES)} (default gaussian, as "
                          "GLMM(formula, data))")
    fit.add_argument("--offset", action="append", default=[], metavar="EXPR",
                     help="a known term of the linear predictor, e.g. 'log(exposure)': the "
                          "same as '+ offset(EXPR)' in the formula (may be repeated: summed)")
    fit.add_argument("--weights", default=None, metavar="COLUMN",
                     help="a column of observation weights: each row's log likelihood is "
                          "multiplied by its weight (brms' weights(), lme4's weights)")
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

    summary = commands.add_parser(
        "summary", help="print the summary of a saved fit",
        description="Load a fit written by 'jaxglmm fit --out' and print its summary.")
    summary.add_argument("fit", help="file written by 'jaxglmm fit --out'")
    summary.add_argument("--include-b", action="store_true",
                         help="also summarise every random effect b")

    predict = commands.add_parser(
        "predict", help="predict new rows from a saved fit, as CSV",
        description="Posterior predictions for the rows of a CSV file (the formula's "
                    "predictor and grouping columns) from a fit written by 'jaxglmm fit "
                    "--out': one row per new row with mean, sd, 5%%, 50%%, 95%%.")
    predict.add_argument("fit", help="file written by 'jaxglmm fit --out'")
    predict.add_argument("newdata", help="CSV file of new rows ('-': standard input)")
    predict.add_argument("--kind", choices=PREDICT_KINDS, default="mean", metavar="KIND",
                         help="mean (default: h(eta), expected successes for binomial), link "
                              "(eta) or response (posterior predictive draws of y)")
    predict.add_argument("--groups", choices=PREDICT_GROUPS, default="existing",
                         metavar="GROUPS",
                         help="existing (default: every level must be in the fit) or new "
                              "(unseen levels get fresh random effects)")
    predict.add_argument("--seed", type=_integer, default=0, metavar="INT",
                         help="seed for new levels and response draws (default 0)")
    predict.add_argument("--out", default=None, metavar="PATH",
                         help="write the CSV here (default: standard output)")

    plot = commands.add_parser(
        "plot", help="plot a saved fit to an image file",
        description="Draw an ArviZ plot of a fit written by 'jaxglmm fit --out' into an "
                    "image file (PNG, PDF, SVG: by the file name's extension).")
    plot.add_argument("fit", help="file written by 'jaxglmm fit --out'")
    plot.add_argument("--kind", choices=PLOT_KINDS, default="trace", metavar="KIND",
                      help=f"{', '.join(PLOT_KINDS)} (default trace)")
    plot.add_argument("--var", action="append", default=None, metavar="NAME",
                      help="a variable to plot, e.g. sd or b (may be repeated; default: "
                           "everything but b)")
    plot.add_argument("--out", required=True, metavar="PATH", help="the image file to write")

    demo = commands.add_parser(
        "demo", help="fit the bundled sleepstudy example (no data needed)",
        description="Fit Reaction ~ Days + (1 + Days | Subject) to lme4's sleepstudy, "
                    "bundled with jaxglmm, and print the priors and the summary.")
    _add_sampler_size(demo, chains=4, warmup=1000, draws=1000)
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
