"""The method registry and the one contract every unlearning method follows.

``unlearn(method, model, data, request, **hp)`` copies ``model``, runs the method on the
copy and returns ``UnlearnResult(model, seconds, details)`` (it unpacks as a 3-tuple).
The given model is never modified. Adding a method is one file in this package with a
function decorated by :func:`register`; its keyword-only arguments are its
hyperparameters, with the defaults of its paper or reference code.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import numbers
import pkgutil
import time
from typing import Callable, NamedTuple

import torch

from ..errors import MeguError, check


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    fn: Callable
    summary: str
    source: str

    @property
    def defaults(self) -> dict:
        """The method's hyperparameters and their defaults."""
        return {p.name: p.default for p in inspect.signature(self.fn).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in _CONTEXT}


# arguments unlearn() passes to every method itself; not hyperparameters
_CONTEXT = ("device", "progress", "seed", "cache")
_REGISTRY: dict[str, Method] = {}


def register(name: str, *, summary: str, source: str):
    """Register ``fn(model, data, request, *, device, progress, seed, cache, **hp) -> details``.

    The function trains the model it is given in place (``unlearn`` hands it a copy)
    and returns a dict of details, or ``(model, details)`` when it replaces the model.
    """
    def deco(fn):
        check(name not in _REGISTRY, f"method {name!r} is registered twice")
        _REGISTRY[name] = Method(name, fn, summary, source)
        return fn
    return deco


def _load_all():
    # retrain first: it is the reference every table compares with; then alphabetical
    importlib.import_module(f"{__name__}.retrain")
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def list_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    _load_all()
    return list(_REGISTRY)


def get_method(name: str) -> Method:
    _load_all()
    if name not in _REGISTRY:
        raise MeguError(f"unknown method {name!r}: use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


class UnlearnResult(NamedTuple):
    model: torch.nn.Module
    seconds: float
    details: dict


def unlearn(method: str, model: torch.nn.Module, data, request, *, device=None, progress=None,
            seed: int = 0, cache=None, **hp) -> UnlearnResult:
    """Run unlearning method ``method`` on a copy of ``model`` for ``request``.

    Returns ``(new_model, seconds, details)``: the wall-clock seconds of the method
    (CUDA synchronised), and a dict of method-specific details (including the
    hyperparameters used). ``hp`` overrides the method's defaults; unknown names are an error.
    """
    from ..models import clone_model
    from ..requests import Request
    from ..training import resolve_device

    spec = get_method(method)
    unknown = set(hp) - set(spec.defaults)
    check(not unknown, f"method {method!r} has no hyperparameter(s) {sorted(unknown)}; "
          f"its hyperparameters are: {', '.join(spec.defaults) or 'none'}")
    from ..data import Dataset
    check(isinstance(model, torch.nn.Module), f"unlearn needs a model (a torch.nn.Module, e.g. from fit_model), "
          f"got {type(model).__name__}")
    check(isinstance(data, Dataset), f"unlearn needs a Dataset (from load_dataset), got {type(data).__name__}")
    check(isinstance(request, Request), f"unlearn needs a Request (from make_request), got {type(request).__name__}")
    check(isinstance(seed, numbers.Integral) and not isinstance(seed, bool), f"seed must be an int, got {seed!r}")
    check(request.data_fingerprint == data.fingerprint(), "the request was made for another data set; "
          "build it with make_request on the same data")
    n_out = getattr(model, "config", {}).get("num_classes")
    check(n_out is None or n_out == request.num_classes(data),
          f"the model predicts {n_out} classes but the request's labels have {request.num_classes(data)}; "
          f"train the model at level {request.level!r}")
    device = resolve_device(device)
    work = clone_model(model).to(device)
    for p in work.parameters():
        p.requires_grad_(True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = spec.fn(work, data, request, device=device, progress=progress, seed=seed, cache=cache,
                  **{**spec.defaults, **hp})
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if isinstance(out, tuple):
        work, details = out
    else:
        details = out or {}
    work.eval()
    details = {"method": method, "hp": {**spec.defaults, **hp}, **details}
    if "seconds" in details:  # a method that loaded cached work reports the recorded time
        seconds = details.pop("seconds")
    # cached parts of a method (e.g. noises) count with their recorded time; one-off parts
    # reported apart (e.g. a judge run) are taken out
    seconds = max(0.0, seconds + details.pop("extra_seconds", 0.0))
    return UnlearnResult(work, seconds, details)
