"""Hyperparameter declarations: what a method's knob is, what it may be, where a tuner looks.

Every unlearning method declares each hyperparameter once, as the keyword default of its
function (see :mod:`megu_lib.methods`)::

    def finetune(model, data, request, *, device, progress, seed, cache,
                 epochs=hp.epochs(5), lr=hp.lr(0.02), batch_size=hp.batch_size(64), augment=hp.flag(False)):

A declaration (:class:`Param`) carries the default, the type, the allowed range and a
search space for tuning (:class:`Search`: a log or linear interval, or a list of choices).
``load_config`` (a profile's ``hp:`` section), :func:`~megu_lib.methods.unlearn`, the sweeps
of :mod:`megu_lib.tuning` and the tuner all read this one declaration, so a bad value is
one line naming the method and the key before any work — the same line wherever it is met.

This module imports nothing heavy (no torch): a profile's hyperparameters can be checked
before the deep-learning stack loads.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

from .errors import MeguError, check


# --------------------------------------------------------------------------- search spaces
@dataclasses.dataclass(frozen=True)
class Search:
    """Where a tuner looks for a hyperparameter: ``scale`` ``"log"`` or ``"linear"`` over
    [``lo``, ``hi``] (``integer``: round to ints), or ``"choice"`` among ``values``."""

    scale: str
    lo: float | None = None
    hi: float | None = None
    values: tuple = ()
    integer: bool = False

    def grid(self, n: int = 3) -> list:
        """``n`` points spread over the space (the choices themselves for ``"choice"``)."""
        if self.scale == "choice":
            return list(self.values)
        check(isinstance(n, int) and n >= 1, f"a grid needs n >= 1 points, got {n!r}")
        if n == 1:
            pts = [math.sqrt(self.lo * self.hi) if self.scale == "log" else (self.lo + self.hi) / 2]
        elif self.scale == "log":
            a, b = math.log(self.lo), math.log(self.hi)
            pts = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
        else:
            pts = [self.lo + (self.hi - self.lo) * i / (n - 1) for i in range(n)]
        return list(dict.fromkeys(int(round(p)) for p in pts)) if self.integer else [float(f"{p:.4g}") for p in pts]

    def sample(self, rng) -> Any:
        """One value drawn from the space with ``rng`` (a ``random.Random`` or numpy Generator)."""
        u = float(rng.random())
        if self.scale == "choice":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.scale == "log":
            v = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        else:
            v = self.lo + u * (self.hi - self.lo)
        return int(round(v)) if self.integer else v


def log_range(lo: float, hi: float, *, integer: bool = False) -> Search:
    """A log-uniform search interval (learning rates, weights spanning decades)."""
    check(0 < lo < hi, f"a log search range needs 0 < lo < hi, got [{lo}, {hi}]")
    return Search("log", lo, hi, integer=integer)


def linear_range(lo: float, hi: float, *, integer: bool = False) -> Search:
    """A uniform search interval."""
    check(lo < hi, f"a linear search range needs lo < hi, got [{lo}, {hi}]")
    return Search("linear", lo, hi, integer=integer)


def one_of(*values) -> Search:
    """A search among listed values."""
    check(len(values) > 0, "one_of needs at least one value")
    return Search("choice", values=tuple(values))


# --------------------------------------------------------------------------- declarations
KINDS = ("float", "int", "bool", "choice", "value")
#: Where a declared default comes from, when the declaration says (``Param.origin``).
ORIGINS = ("paper", "ours")


@dataclasses.dataclass(frozen=True, repr=False)
class Param:
    """One hyperparameter: its default, type (``kind``), allowed values and search space.

    ``kind``: ``"float"`` (a finite number; ints are accepted), ``"int"``, ``"bool"``,
    ``"choice"`` (one of ``choices``; a callable gives them lazily, e.g. the registered
    judges) or ``"value"`` (anything ``validate`` accepts; not settable from YAML when it
    needs an object). ``lo``/``hi`` bound numbers (open with ``lo_open``/``hi_open``);
    ``none``: None is allowed too (it means what ``help`` says: off, unbounded, inherited).
    ``help``: what the knob means, in one line. ``origin``: where the default comes from,
    one of :data:`ORIGINS` — ``"paper"`` when the method's paper states it, ``"ours"`` when the
    paper is silent and the value is our choice or we depart from what it states — or
    ``""`` when the declaration does not say (the baselines: their docstrings name the
    reference code each default follows).
    """

    default: Any
    kind: str = "float"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | Callable[[], Any] | None = None
    none: bool = False
    search: Search | None = None
    validate: Callable[[Any], str | None] | None = None
    help: str = ""
    origin: str = ""

    def __post_init__(self):
        check(self.kind in KINDS, f"unknown hyperparameter kind {self.kind!r}: use one of {', '.join(KINDS)}")
        check(self.origin in ("", *ORIGINS), f"unknown hyperparameter origin {self.origin!r}: use one of "
              f"{', '.join(ORIGINS)} (or leave it empty)")

    def __repr__(self) -> str:
        # a signature (help(), the API page) shows the default value, as for a plain keyword
        return repr(self.default)

    def describe(self) -> str:
        """The declaration in words: default, allowed values, search space."""
        space = ""
        if self.search is not None:
            s = self.search
            space = (f"; tuned among {', '.join(map(repr, s.values))}" if s.scale == "choice"
                     else f"; tuned on a {s.scale} scale over [{s.lo:g}, {s.hi:g}]")
        return f"default {self.default!r}; {self.wants()}{space}"

    def replace(self, **changes) -> "Param":
        return dataclasses.replace(self, **changes)

    def options(self) -> tuple:
        return tuple(self.choices() if callable(self.choices) else self.choices or ())

    def wants(self) -> str:
        """What a value must be, in words (the end of an error message)."""
        if self.kind == "bool":
            want = "true or false"
        elif self.kind == "choice":
            want = f"one of {', '.join(map(repr, self.options()))}"
        elif self.kind == "value":
            want = self.help or "a valid value"
        else:
            noun = "an int" if self.kind == "int" else "a number"
            if self.lo is not None and self.hi is not None:
                want = (f"{noun} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}"
                        f"{')' if self.hi_open else ']'}")
            elif self.lo == 0 and self.lo_open and self.kind == "float":
                want = "a positive number"
            elif self.lo is not None:
                want = f"{noun} {'>' if self.lo_open else '>='} {self.lo:g}"
            elif self.hi is not None:
                want = f"{noun} {'<' if self.hi_open else '<='} {self.hi:g}"
            else:
                want = f"a finite {'int' if self.kind == 'int' else 'number'}"
        return want + (" or null (None)" if self.none else "")

    def ok(self, value) -> bool:
        if value is None:
            return self.none
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value in self.options()
        if self.kind == "value":
            return self.validate is None or self.validate(value) is None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind == "int" and not isinstance(value, numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        if self.lo is not None and not (value > self.lo if self.lo_open else value >= self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def check(self, value, where: str) -> None:
        """A one-line :class:`MeguError` ``"<where> must be <what>, got <value>"`` unless ``value`` is allowed."""
        if not self.ok(value):
            if self.kind == "value" and self.validate is not None and value is not None:
                raise MeguError(f"{where}: {self.validate(value)}")
            raise MeguError(f"{where} must be {self.wants()}, got {value!r}")


def check_values(params: dict[str, Param], values: dict, where: str) -> None:
    """Check ``values`` against declarations ``params``: an unknown name, or a value out of
    its declaration, is a one-line :class:`MeguError`. ``where`` prefixes the key, e.g.
    ``"megu: "`` or ``"default.yaml: hp.megu."``."""
    check(isinstance(values, dict), f"{where.rstrip(': .')} must be a mapping of hyperparameters, got {values!r}")
    unknown = sorted(set(values) - set(params))
    check(not unknown, f"{where.rstrip(': .')} has no hyperparameter(s) {unknown}; "
          f"its hyperparameters are: {', '.join(params) or 'none'}")
    for name, value in values.items():
        params[name].check(value, f"{where}{name}")


def defaults(params: dict[str, Param]) -> dict:
    """{name: default} of declarations."""
    return {name: p.default for name, p in params.items()}


def search_space(params: dict[str, Param]) -> dict[str, Search]:
    """{name: search space} of the declarations that have one (what a tuner varies)."""
    return {name: p.search for name, p in params.items() if p.search is not None}


# --------------------------------------------------------------------------- common knobs
# Shared by the fine-tuning methods; each call gives the method's own default.
def Float(default, lo=None, hi=None, *, lo_open=False, hi_open=False, none=False, search=None, help="",
          origin="") -> Param:
    return Param(default, "float", lo, hi, lo_open, hi_open, none=none, search=search, help=help, origin=origin)


def Int(default, lo=1, hi=None, *, none=False, search=None, help="", origin="") -> Param:
    return Param(default, "int", lo, hi, none=none, search=search, help=help, origin=origin)


def Choice(default, choices, *, search=None, help="", origin="") -> Param:
    return Param(default, "choice", choices=choices, search=search, help=help, origin=origin)


def flag(default: bool, help: str = "", *, origin="") -> Param:
    return Param(default, "bool", search=None, help=help, origin=origin)


def positive(default, *, search=None, none=False, help="", origin="") -> Param:
    """A number > 0."""
    return Float(default, 0, lo_open=True, none=none, search=search, help=help, origin=origin)


def fraction(default, *, lo_open=False, hi_open=False, search=None, help="", origin="") -> Param:
    """A number in [0, 1] (ends open as asked)."""
    return Float(default, 0, 1, lo_open=lo_open, hi_open=hi_open, search=search, help=help, origin=origin)


def lr(default, lo: float = 1e-5, hi: float = 0.1, *, help: str = "learning rate", origin="") -> Param:
    """A learning rate (> 0), tuned on a log scale."""
    return positive(default, search=log_range(lo, hi), help=help, origin=origin)


def epochs(default, lo: float = 0.5, hi: float = 10, *, help: str = "passes over the data", origin="") -> Param:
    """Passes over the method's training data (> 0; fractional: a random part of one pass)."""
    return positive(default, search=log_range(lo, hi), help=help, origin=origin)


def batch_size(default, *, help: str = "samples per step", origin="") -> Param:
    return Int(default, 1, search=None, help=help, origin=origin)
