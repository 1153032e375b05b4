"""The syntax of lme4-style formulas, before any data: splitting "response ~ fixed part +
(expr | g) + offset(expr)" into its pieces, the response forms, random terms, offsets, and the
columns a formula uses (`formula_columns`, which the command line checks a CSV file with).

`jaxglmm.formula` evaluates the pieces on a DataFrame.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import NamedTuple

from .family_base import Family


@dataclass(frozen=True)
class TermFormula:
    """One random-effect term of a formula: its expression, grouping columns and label."""

    expr: str        # the left of "|", e.g. "1 + Days"
    factors: tuple   # grouping columns, e.g. ("herd",) or ("site", "plot")
    name: str        # the term's label, e.g. "Subject", "site:plot" ("g.2" if repeated)


def fail(message: str):
    raise ValueError(message)


def mask(text: str) -> str:
    """`text` with every backtick-quoted name (formulae's way to write any column name, as in
    `my x`) blanked out, same length: structure (~, |, parentheses, +, /, :) is searched in
    the mask and cut from the text."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        fail(f"formula: unbalanced backtick in {text!r}; a column name that is not a Python "
              "identifier is written between two backticks, as in `my x`, and a name that "
              "holds a backtick cannot be written in a formula: rename that column.")
    return "".join(p if k % 2 == 0 else "_" * (len(p) + 2) for k, p in enumerate(parts))


def split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside parentheses and backticks."""
    masked = mask(text)
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = masked[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and masked.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(text[start:])
    return parts


def random_chunks(rhs: str) -> tuple[str, list[str]]:
    """The fixed part of a right-hand side and its "(... | ...)" chunks."""
    masked = mask(rhs)
    chunks, depth, start, i, out = [], 0, None, 0, ""
    while i < len(rhs):
        c = masked[i]
        if c == "(":
            if depth == 0:
                start = i
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                fail(f"formula: unbalanced ')' at position {i} of the right-hand side "
                      f"{rhs!r}.")
            if depth == 0:
                inner = rhs[start + 1:i]
                if len(split_top(inner, "|")) > 1:
                    chunks.append(inner)
                    start = None
                    i += 1
                    continue
                out += rhs[start:i + 1]
                start = None
                i += 1
                continue
        if depth == 0:
            out += rhs[i]
        i += 1
    if depth != 0:
        fail(f"formula: unbalanced '(' in the right-hand side {rhs!r}.")
    # tidy the "+" left behind by removed chunks
    parts = [p.strip() for p in split_top(out, "+")]
    fixed = " + ".join(p for p in parts if p)
    return fixed, chunks


NAME_PATTERN = r"(?:`[^`]*`|[\w.]+)"   # a column name: plain, or any name in backticks


def unquote(name: str) -> str:
    """The column name that a formula writes as `name` (backticks removed)."""
    name = name.strip()
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == "`" else name


def parse_terms(chunks: list[str]) -> list[TermFormula]:
    terms: list[TermFormula] = []
    for chunk in chunks:
        uncorrelated = len(split_top(chunk, "||")) == 2
        lhs, rhs = split_top(chunk, "||") if uncorrelated else split_top(chunk, "|")[:2]
        if len(split_top(chunk, "|")) > (3 if uncorrelated else 2):
            fail(f"formula: random term ({chunk}) has more than one '|'.")
        expr, factor = lhs.strip(), rhs.strip()
        if not expr or not factor:
            fail(f"formula: random term ({chunk}) needs an expression and a grouping "
                  "factor, as in (1 + t | id).")
        nest = [[c.strip() for c in split_top(f, ":")] for f in split_top(factor, "/")]
        if any(not re.fullmatch(NAME_PATTERN, c) for part in nest for c in part):
            fail(f"formula: grouping factor {factor!r} of ({chunk}) must be column names "
                  "joined by ':' (interaction) or '/' (nesting); a name that is not a Python "
                  "identifier is written in backticks, as in `my group`.")
        groupings = []
        for k in range(len(nest)):
            cols = tuple(unquote(c) for part in nest[:k + 1] for c in part)
            groupings.append(cols)
        exprs = [expr]
        if uncorrelated:
            parts = [p.strip() for p in split_top(expr, "+")]
            has_zero = "0" in parts or "-1" in parts
            cols = [p for p in parts if p not in ("0", "1", "-1", "")]
            exprs = ([] if has_zero else ["1"]) + [f"0 + {c}" for c in cols]
        for cols in groupings:
            for e in exprs:
                terms.append(TermFormula(e, cols, ":".join(cols)))
    names = [t.name for t in terms]
    out = []
    for k, t in enumerate(terms):
        n = names[:k + 1].count(t.name)
        out.append(replace(t, name=t.name if n == 1 else f"{t.name}.{n}"))
    return out


_N = NAME_PATTERN
_CBIND = re.compile(rf"^cbind\(\s*({_N})\s*,\s*({_N})\s*\)$")
_RATIO = re.compile(rf"^({_N})\s*/\s*({_N})$")
_PROP = re.compile(rf"^p\(\s*({_N})\s*,\s*({_N})\s*\)$")
_NAME = re.compile(rf"^{_N}$")


def response_spec(lhs: str, family: Family) -> tuple:
    """What the left of "~" says: ("column", y), ("expr", expression) for one response;
    for the binomial family ("cbind", s, f) / ("trials", s, n) of column names, or
    ("cbind_expr", s_expr, f_expr) when cbind() holds expressions, as in lme4's
    cbind(incidence, size - incidence)."""
    lhs = lhs.strip()
    if not lhs:
        fail("formula: has no response on the left of '~' (e.g. 'y ~ x + (1 | g)').")
    spec = None
    for pattern, kind in ((_CBIND, "cbind"), (_RATIO, "trials"), (_PROP, "trials")):
        m = pattern.match(lhs)
        if m:
            spec = (kind, unquote(m.group(1)), unquote(m.group(2)))
            break
    m = re.fullmatch(r"cbind\s*\((.*)\)", mask(lhs), flags=re.S)
    if spec is None and m:
        parts = split_top(lhs[m.start(1):m.end(1)], ",")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            fail(f"formula: cbind() on the left takes two expressions, successes and "
                 f"failures, as in cbind(s, n - s); got {lhs!r}.")
        spec = ("cbind_expr", parts[0].strip(), parts[1].strip())
    if spec is not None:
        if not family.has_trials:
            fail(f"formula: response {lhs!r} gives successes and trials, which only the "
                 f"binomial family takes, not {family.name!r}.")
        return spec
    if family.has_trials:
        fail(f"formula: the binomial family needs successes and trials on the left, as "
             f"cbind(successes, failures), cbind(s, n - s), successes/trials or "
             f"p(successes, trials); got {lhs!r}.")
    if _NAME.match(lhs):
        return ("column", unquote(lhs))
    return ("expr", lhs)


def split_offsets(fixed: str) -> tuple[str, tuple]:
    """The fixed part without its offset(expr) summands, and those expressions (several
    are summed, as in lme4): "x + offset(log(n))" -> ("x", ("log(n)",)). The fixed part left
    empty by them is "1" (an intercept, as in lme4).

    Raises:
        ValueError: an offset() that is not a summand of its own (e.g. "x:offset(z)").
    """
    keep, offsets = [], []
    for part in split_top(fixed, "+"):
        m = re.fullmatch(r"\s*offset\s*\((.*)\)\s*", mask(part), flags=re.S)
        if m:
            expr = part[m.start(1):m.end(1)].strip()
            if not expr:
                fail("formula: offset() needs an expression, as in offset(log(exposure)).")
            offsets.append(expr)
        else:
            keep.append(part)
    rest = "+".join(keep).strip()
    if re.search(r"\boffset\s*\(", mask(rest)):
        fail(f"formula: offset(...) must be a term of its own, added with '+' (as in "
             f"'y ~ x + offset(log(n)) + (1 | g)'); got the fixed part {fixed.strip()!r}.")
    return rest or "1", tuple(offsets)


class FormulaParts(NamedTuple):
    """A formula split into its pieces (no data needed)."""

    lhs: str         # the left of "~"
    fixed: str       # the fixed part given to formulae ("1" when only offsets or nothing)
    terms: tuple     # (TermFormula, ...)
    offsets: tuple   # offset expressions, summed


def split_formula(formula: str) -> FormulaParts:
    """The pieces of `formula`: response side, fixed part, random terms, offsets.

    Raises:
        ValueError: no "~", several, unbalanced parentheses or backticks, no random term.
    """
    if not isinstance(formula, str) or "~" not in formula:
        fail(f"formula: must be a string like 'y ~ x + (1 | g)', got {formula!r}.")
    if "``" in formula:  # formulae lists it among the string arguments it ignores
        fail(f"formula: `` (a column with an empty name) cannot be used in {formula!r}; "
             "rename that column.")
    tilde = mask(formula).find("~")
    if tilde < 0:
        fail(f"formula: must be a string like 'y ~ x + (1 | g)', got {formula!r}.")
    lhs, rhs = formula[:tilde], formula[tilde + 1:]
    if "~" in mask(rhs):
        fail(f"formula: has more than one '~': {formula!r}.")
    fixed, chunks = random_chunks(rhs.strip())
    terms = parse_terms(chunks)
    if not terms:
        fail(f"formula: {formula!r} has no random-effect term such as (1 | g); a mixed "
             "model needs at least one.")
    for t in terms:
        if re.search(r"\boffset\s*\(", mask(t.expr)):
            fail(f"formula: offset() belongs in the fixed part, not in the random term "
                 f"({t.expr} | {t.name}).")
    fixed, offsets = split_offsets(fixed or "1")
    return FormulaParts(lhs=lhs, fixed=fixed, terms=tuple(terms), offsets=offsets)


def response_columns(response: tuple, hint: str = "") -> list:
    """The columns the response spec (`response_spec`) uses."""
    if response[0] == "expr":
        return sorted(variables(response[1], "response", hint))
    if response[0] == "cbind_expr":
        return sorted(variables(response[1], "response", hint)
                      | variables(response[2], "response", hint))
    return list(response[1:])


def formula_columns(formula: str, family: Family, hint: str = "") -> list:
    """Every column `formula` uses, in the order of first use: the response's, the fixed
    part's, the offsets', the random terms' expressions and their grouping factors.

    Raises:
        ValueError: the formula does not parse (naming the piece), or its response does not
            suit `family`.
    """
    parts = split_formula(formula)
    response = response_spec(parts.lhs, family)
    used = response_columns(response, hint) + sorted(variables(parts.fixed, "fixed part", hint))
    for expr in parts.offsets:
        used += sorted(variables(expr, f"offset({expr})", hint))
    for t in parts.terms:
        used += sorted(variables(t.expr, f"term ({t.expr} | {t.name})", hint))
    used += [c for t in parts.terms for c in t.factors]
    return list(dict.fromkeys(used))


def one_line(err: BaseException) -> str:
    """An exception of formulae or pandas as one line of text."""
    if isinstance(err, KeyError) and err.args:  # str(KeyError('x')) is just "'x'"
        return f"unknown name {err.args[0]!r}"
    return " ".join(str(err).split()) or type(err).__name__


def variables(expression: str, what: str, hint: str = "") -> set:
    """Column names an expression of formulae uses; a formula error names `what`."""
    import formulae
    try:
        names = formulae.model_description(expression).var_names
    except Exception as err:  # formulae raises its own parse errors
        names, problem = None, one_line(err)
    if names is None:  # raised here, not in the handler: no chained formulae traceback
        fail(f"formula: cannot parse the {what} {expression!r}: {problem}{hint}")
    # formulae lists a string argument such as C(dose, "LOW") as the name "", and the
    # constant None as None
    return {v for v in names if isinstance(v, str) and v}
