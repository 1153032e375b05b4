"""Every family by name (`FAMILIES`) and `make_family`, which the model, the formula, the
command line and saved fits build families through."""
from __future__ import annotations

from dataclasses import fields

from .extended_families import Student, ZeroInflatedNegBinomial, ZeroInflatedPoisson
from .families import (Bernoulli, BetaFamily, Binomial, GammaFamily, Gaussian, NegBinomial,
                       Poisson)
from .family_base import Family

FAMILIES: dict[str, type[Family]] = {
    cls.name: cls for cls in (Gaussian, Bernoulli, Binomial, Poisson, NegBinomial, GammaFamily,
                              BetaFamily, Student, ZeroInflatedPoisson, ZeroInflatedNegBinomial)
}


def make_family(family: str | Family, link: str | None = None, **options) -> Family:
    """A Family from its name (and optional link and options such as nu=4 for "student"), or
    the Family itself.

    Raises:
        ValueError: unknown family, a link the family does not allow, or an option it does not
            take.
    """
    if isinstance(family, Family):
        if link is not None and link != family.link:
            raise ValueError(
                f"link={link!r} disagrees with the family object's link {family.link!r}."
            )
        if options:
            raise ValueError(f"{', '.join(options)}: set options on the family object itself.")
        return family
    if not isinstance(family, str) or family.lower() not in FAMILIES:
        raise ValueError(f"family={family!r} is unknown; choose one of {', '.join(FAMILIES)}.")
    cls = FAMILIES[family.lower()]
    allowed = {f.name for f in fields(cls)} - {"link"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"{unknown[0]}: family {cls.name!r} takes no such option"
                         f"{'; it takes ' + ', '.join(sorted(allowed)) if allowed else ''}.")
    return cls(link or "", **options)
