"""The registry of laws by name: the built-in ones and those a user registers.
"""

from __future__ import annotations

from bayes_scaling.errors import InputError
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.laws.families import (
    BrokenPowerLaw,
    Chinchilla,
    ChinchillaInteraction,
    Compute,
    DataConstrained,
    KaplanND,
    KaplanSingle,
)

LAWS: dict[str, ScalingLaw] = {law.name: law for law in (
    Chinchilla(), ChinchillaInteraction(),
    KaplanSingle("N", irreducible=False), KaplanSingle("N", irreducible=True),
    KaplanSingle("D", irreducible=False), KaplanSingle("D", irreducible=True),
    KaplanND(), Compute(), DataConstrained(), BrokenPowerLaw(),
)}


def law_names() -> list[str]:
    """The names of the registered laws, built-in ones first.

    Returns
    -------
    list of str
    """
    return list(LAWS)


def register_law(law: ScalingLaw, *, replace: bool = False) -> ScalingLaw:
    """Make ``law`` known by its name, so fits of it can be saved, loaded and forecast.

    A law defined outside the package is registered when it is first fitted; register it
    yourself before loading a saved fit of it in a new process.

    Parameters
    ----------
    law
        An instance of a :class:`~bayes_scaling.laws.base.ScalingLaw` subclass with a ``name``.
    replace
        Replace a different law already registered under that name.

    Returns
    -------
    ScalingLaw
        The law registered under its name.

    Raises
    ------
    InputError
        For something that is not a law, a law without a name, or a name taken by another law.

    Examples
    --------
    >>> from bayes_scaling.laws import Chinchilla, register_law, get_law
    >>> class Mine(Chinchilla):
    ...     name = "mine"
    >>> register_law(Mine()) is get_law("mine")
    True
    """
    if not isinstance(law, ScalingLaw):
        raise InputError(f"register_law needs a ScalingLaw instance, got {law!r}")
    name = str(getattr(law, "name", "")).strip().lower()
    if not name:
        raise InputError(f"{type(law).__name__} has no name; set the class attribute name = '...'")
    known = LAWS.get(name)
    if known is not None and known is not law and not replace:
        if type(known) is type(law) and vars(known) == vars(law):
            return known
        raise InputError(f"the law name {name!r} is taken by {known!r}; give {type(law).__name__} another name "
                         f"(or register_law(..., replace=True))")
    LAWS[name] = law
    return law


def get_law(law: str | ScalingLaw) -> ScalingLaw:
    """A law by name (see :data:`LAWS`) or the law itself (registered by its name if new).

    Parameters
    ----------
    law
        A name (case-insensitive) or a :class:`~bayes_scaling.laws.base.ScalingLaw`.

    Returns
    -------
    ScalingLaw

    Raises
    ------
    InputError
        For an unknown name, listing the known ones.

    Examples
    --------
    >>> from bayes_scaling.laws import get_law
    >>> get_law("chinchilla").formula
    'L = E + A/N^alpha + B/D^beta'
    """
    if isinstance(law, ScalingLaw):
        return register_law(law)
    key = str(law).strip().lower()
    if key not in LAWS:
        raise InputError(f"unknown law {law!r}; choose one of {', '.join(LAWS)} (a law of your own: "
                         f"bayes_scaling.laws.registry.register_law(YourLaw()) first)")
    return LAWS[key]

