"""Profiles: named sets of parameters (YAML files in ``params/``) for the notebooks and runs.

A profile is a flat mapping of plain values. The keys and their types are declared in
:data:`PROFILE_KEYS`; a profile may leave keys out (the notebook's own defaults stand).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import MeguError, check

PARAMS_DIR = Path(__file__).resolve().parents[1] / "params"

#: key -> (accepted types, description)
PROFILE_KEYS = {
    "profile": ((str,), "the profile's name"),
    "dataset": ((str,), "data set name or image folder"),
    "arch": ((str,), "model architecture"),
    "width": ((int,), "small_cnn channel width"),
    "train_preset": ((str,), "training preset name"),
    "epochs": ((int, float), "training epochs"),
    "n_train": ((int, type(None)), "stratified training subset size (null = all)"),
    "n_test": ((int, type(None)), "stratified test subset size (null = all)"),
    "seed": ((int,), "seed of training and requests"),
    "seeds": ((list,), "seeds of repeated runs"),
    "forget_class": ((str, int), "the class to forget"),
    "device": ((str,), "cpu, cuda or auto"),
    "max_retain_eval": ((int, type(None)), "retain samples evaluated (null = all)"),
}


def profile_path(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    return PARAMS_DIR / f"{name}.yaml"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def load_profile(name: str, **overrides) -> dict:
    """The parameters of profile ``name`` (a name in ``params/`` or a YAML path), with overrides."""
    path = profile_path(name)
    check(path.is_file(), f"unknown profile {name!r}: use one of {', '.join(available_profiles())} "
          f"or the path of a YAML file")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise MeguError(f"profile {path} is not valid YAML (line {getattr(getattr(e, 'problem_mark', None), 'line', '?')}); fix the file") from None
    check(isinstance(params, dict), f"profile {path} must be a mapping of parameter names to values")
    params = {"profile": path.stem, **params, **{k: v for k, v in overrides.items() if v is not None}}
    for key, value in params.items():
        check(key in PROFILE_KEYS, f"profile {path.name}: unknown parameter {key!r}; known: {', '.join(PROFILE_KEYS)}")
        types, what = PROFILE_KEYS[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        check(ok, f"profile {path.name}: {key} ({what}) must be {' or '.join(t.__name__ for t in types)}, "
              f"got {value!r}")
    return params
