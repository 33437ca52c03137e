"""The method registry and the one contract every unlearning method follows.

``unlearn(method, model, data, request, **hp)`` copies ``model``, runs the method on the
copy and returns an :class:`UnlearnResult` (``model``, ``seconds``, ``details``, ``timing``;
it unpacks as the 3-tuple ``model, seconds, details``). The given model is never modified.

Adding a method is one file in this package (CONTRIBUTING.md walks through it)::

    @register("mymethod", summary="one line", source="paper and reference code")
    def mymethod(model, data, request, *, device, progress, seed, cache,
                 epochs=hp.epochs(5), lr=hp.lr(0.01)):
        ...                               # train ``model`` (a copy) in place
        return {"n_retain": ...}          # details for the record

Each keyword argument after ``cache`` is a hyperparameter, declared once by its default, a
:class:`megu_lib.hparams.Param` (type, allowed range, search space). ``unlearn`` checks the
values against the declarations before any work and calls the function with plain values.

**Time.** A method's time is the wall-clock time of its call (CUDA synchronised), with two
kinds of parts accounted apart, which the method declares by returning a :class:`MethodOutput`
with :class:`TimedPart` entries:

* a *counted* part (``counted=True``) is work the method needs every time but that may come
  from the cache (MeGU's and UNSIR's noises, retrain's training): its wall time in this call
  (a cache load, fast) is replaced by its *recorded* time (the time the work took when it was
  done), so a cached run costs what a fresh one does;
* a part *apart* (``counted=False``) is one-off work shared by every request (MeGU's concept
  judge run for the transition matrix): its wall time is taken out of the method's time and
  its recorded time reported in ``timing.apart``.

``seconds = wall - sum(part.wall) + sum(part.recorded for counted parts)``; the result's
:class:`Timing` keeps every term.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import numbers
import pkgutil
import time
from collections.abc import Callable

from ..errors import MeguError, check
from ..hparams import Param, check_values

# arguments unlearn() passes to every method itself; not hyperparameters
_CONTEXT = ("device", "progress", "seed", "cache")


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    fn: Callable
    summary: str
    source: str
    deviations: str = ""

    @property
    def params(self) -> dict[str, Param]:
        """The method's hyperparameter declarations, in signature order."""
        return dict(self._declared)

    @functools.cached_property
    def _declared(self) -> dict[str, Param]:  # read off the signature once
        return {p.name: p.default for p in inspect.signature(self.fn).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in _CONTEXT}

    @property
    def defaults(self) -> dict:
        """The method's hyperparameters and their default values."""
        return {name: p.default for name, p in self.params.items()}

    def check_hp(self, values: dict, where: str | None = None) -> dict:
        """Check hyperparameter overrides against the declarations (one-line error naming
        ``where``, default ``"<method>: "``); returns the full set, defaults filled in."""
        check_values(self.params, values, f"{self.name}: " if where is None else where)
        return {**self.defaults, **values}


_REGISTRY: dict[str, Method] = {}


def register(name: str, *, summary: str, source: str, deviations: str = ""):
    """Register ``fn(model, data, request, *, device, progress, seed, cache, **hp)``.

    ``deviations``: what the implementation does differently from its source, in one
    sentence ("" when nothing is known to differ); the book's table of methods shows it.

    Every hyperparameter's default must be a :class:`~megu_lib.hparams.Param`. The function
    trains the model it is given in place (``unlearn`` hands it a copy) and returns a dict
    of details, or a :class:`MethodOutput` (a replacement model, details, timed parts).
    """
    def deco(fn):
        check(name not in _REGISTRY, f"method {name!r} is registered twice")
        sig = inspect.signature(fn)
        for p in sig.parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name not in _CONTEXT:
                check(isinstance(p.default, Param), f"method {name!r}: hyperparameter {p.name!r} must be declared "
                      "with a megu_lib.hparams.Param default (e.g. hp.lr(0.01))")
        _REGISTRY[name] = Method(name, fn, summary, source, deviations)
        return fn
    return deco


_LOADED = []  # set once every method module is imported


def _load_all():
    """Import every method module (each registers its methods), once: a scan of the package
    folder on every lookup made a grid's worth of lookups cost minutes."""
    if _LOADED:
        return
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _LOADED.append(True)


def list_methods() -> list[str]:
    """Names of the registered methods: retrain first (the reference every table compares
    with), then by module name, and in registration order within a module (MeGU before its
    ablations) — the same order whichever module was imported first."""
    _load_all()
    position = {name: i for i, name in enumerate(_REGISTRY)}
    return sorted(_REGISTRY, key=lambda n: (n != "retrain", _REGISTRY[n].fn.__module__, position[n]))


def get_method(name: str) -> Method:
    _load_all()
    if name not in _REGISTRY:
        raise MeguError(f"unknown method {name!r}: use one of {', '.join(list_methods())}")
    return _REGISTRY[name]


# --------------------------------------------------------------------------- time accounting
@dataclasses.dataclass(frozen=True)
class TimedPart:
    """A part of a method's work whose time is accounted apart from the wall clock.

    ``wall``: seconds it took in this call (a cache load is quick); ``recorded``: seconds
    the work took when it was done (equal to ``wall`` when done now); ``counted``: True
    when the part counts in the method's time (at its recorded seconds), False when it is
    one-off work reported apart (its wall time is taken out)."""

    name: str
    wall: float
    recorded: float
    counted: bool


@dataclasses.dataclass
class MethodOutput:
    """What a method may return instead of a plain details dict."""

    details: dict = dataclasses.field(default_factory=dict)
    model: object | None = None  # a replacement model (retrain builds a new one)
    parts: tuple[TimedPart, ...] = ()


@dataclasses.dataclass(frozen=True)
class Timing:
    """How a method's ``seconds`` were counted (see the module docstring)."""

    seconds: float  # what the tables show
    wall: float  # wall-clock seconds of the call
    parts: tuple[TimedPart, ...] = ()

    @property
    def apart(self) -> dict:
        """Recorded seconds of the one-off parts not in ``seconds``, by part name."""
        return {p.name: p.recorded for p in self.parts if not p.counted}

    @property
    def from_cache(self) -> dict:
        """Recorded seconds of the counted parts (their wall time was replaced), by part name."""
        return {p.name: p.recorded for p in self.parts if p.counted}

    def to_dict(self) -> dict:
        return dict(seconds=self.seconds, wall=self.wall,
                    parts=[dataclasses.asdict(p) for p in self.parts])

    @classmethod
    def count(cls, wall: float, parts=()) -> "Timing":
        parts = tuple(parts)
        seconds = wall - sum(p.wall for p in parts) + sum(p.recorded for p in parts if p.counted)
        return cls(max(0.0, seconds), wall, parts)


@dataclasses.dataclass(frozen=True)
class UnlearnResult:
    """The unlearned model, its time in seconds (:class:`Timing`), the method's details
    (the hyperparameters used included). Unpacks as ``model, seconds, details``."""

    model: object
    seconds: float
    details: dict
    timing: Timing

    def __iter__(self):
        return iter((self.model, self.seconds, self.details))


def unlearn(method: str, model, data, request, *, device=None, progress=None,
            seed: int = 0, cache=None, **hp) -> UnlearnResult:
    """Run unlearning method ``method`` on a copy of ``model`` for ``request``.

    ``hp`` overrides the method's defaults; an unknown name or a value outside its
    declaration is a one-line error before any work. The model, data set and request must
    agree (:func:`megu_lib.requests.check_compatible`).
    """
    import torch

    from ..data import Dataset
    from ..models import clone_model
    from ..requests import Request, check_compatible
    from ..training import resolve_device

    spec = get_method(method)
    values = spec.check_hp(hp)
    check(isinstance(model, torch.nn.Module), f"unlearn needs a model (a torch.nn.Module, e.g. from fit_model), "
          f"got {type(model).__name__}")
    check(isinstance(data, Dataset), f"unlearn needs a Dataset (from load_dataset), got {type(data).__name__}")
    check(isinstance(request, Request), f"unlearn needs a Request (from make_request), got {type(request).__name__}")
    check(isinstance(seed, numbers.Integral) and not isinstance(seed, bool), f"seed must be an int, got {seed!r}")
    check_compatible(model, data, request)
    device = resolve_device(device)
    work = clone_model(model).to(device)
    for p in work.parameters():
        p.requires_grad_(True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = spec.fn(work, data, request, device=device, progress=progress, seed=seed, cache=cache, **values)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    out = out if isinstance(out, MethodOutput) else MethodOutput(details=dict(out or {}))
    work = out.model if out.model is not None else work
    work.eval()
    timing = Timing.count(wall, out.parts)
    return UnlearnResult(work, timing.seconds, {"method": method, "hp": values, **out.details}, timing)
