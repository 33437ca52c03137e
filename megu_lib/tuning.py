"""Hyperparameter sweeps on a validation split (never on the test set), and the
one-factor sensitivity sweep the ablations chapter shows after the fact.

:func:`sweep` runs one method over a grid of hyperparameters for one request and
returns a tidy DataFrame (one row per setting: the hyperparameters, the metrics, the
gap to the retrained reference, seconds). Use it on ``data.validation_split()`` to
choose defaults, and on the real split only to *show* sensitivity.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from .errors import check
from .methods import get_method, unlearn
from .metrics import GAP_KEYS, evaluate, gap_to_reference


def grid(**axes) -> list[dict]:
    """The Cartesian product of the given lists: grid(lr=[0.1, 0.01], epochs=[1, 2]) -> 4 dicts."""
    for k, v in axes.items():
        check(isinstance(v, (list, tuple)) and len(v) > 0, f"grid axis {k!r} must be a non-empty list, got {v!r}")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def sweep(method: str, settings, model, data, request, *, reference: dict, base: dict | None = None,
          seed: int = 0, device=None, cache=None, max_retain: int | None = 10000, keys=GAP_KEYS,
          progress=None, log=None) -> pd.DataFrame:
    """Run ``method`` with each setting in ``settings`` (a list of dicts, e.g. from :func:`grid`).

    ``reference``: the retrained model's metrics on the same request; ``base``:
    hyperparameters shared by all settings. Returns one row per setting.
    """
    spec = get_method(method)
    base = dict(base or {})
    for setting in settings:  # every setting checked before the first runs
        spec.check_hp({**base, **setting}, where=f"sweep: {method}: ")
    rows = []
    for i, setting in enumerate(settings):
        hp = {**base, **setting}
        new, seconds, _ = unlearn(method, model, data, request, seed=seed, device=device, cache=cache,
                                  progress=progress, **hp)
        metrics = evaluate(new, data, request, max_retain=max_retain, seed=seed, device=device)
        row = {"method": method, **setting, **metrics, **gap_to_reference(metrics, reference, keys), "seconds": seconds}
        rows.append(row)
        if log:
            log(f"[sweep {i + 1}/{len(settings)}] {setting} gap={row['gap']:.2f} s={seconds:.1f}")
    return pd.DataFrame(rows)


def best_setting(table: pd.DataFrame, axes, *, by: str = "gap", max_seconds: float | None = None) -> dict:
    """The setting (values of ``axes``) with the smallest mean ``by`` over the table's requests,
    among those whose mean seconds stay within ``max_seconds``."""
    means = table.groupby(list(axes), dropna=False)[[by, "seconds"]].mean().reset_index()
    if max_seconds is not None:
        within = means[means["seconds"] <= max_seconds]
        means = within if len(within) else means
    best = means.sort_values(by).iloc[0]
    return {a: (best[a].item() if hasattr(best[a], "item") else best[a]) for a in axes}


#: The sweep's axes when a profile names none (``notebook.sensitivity``).
DEFAULT_SENSITIVITY = {"epochs": [0.5, 1.0, 2.0], "lr": [0.003, 0.01, 0.03], "retain_ratio": [0.5, 1.0, 2.0],
                       "noise_lambda": [0.01, 0.1, 1.0]}

def check_sensitivity_axes(axes, where: str, method: str = "megu") -> dict:
    """A sweep's axes {hyperparameter: [values]}: each a hyperparameter ``method`` declares,
    each value allowed by its declaration (one-line error naming ``where``)."""
    params = get_method(method).params
    check(isinstance(axes, dict) and axes, f"{where} must map hyperparameters to lists of values, got {axes!r}")
    for k, values in axes.items():
        check(k in params, f"{where}: {method} has no hyperparameter {k!r}; known: {', '.join(params)}")
        check(isinstance(values, list) and values, f"{where}.{k} must be a non-empty list of values, got {values!r}")
        for v in values:
            params[k].check(v, f"{where}.{k}: each value")
    return {k: list(v) for k, v in axes.items()}


def sensitivity_plan(cfg, method: str = "megu") -> dict:
    """The values to sweep: ``cfg.notebook["sensitivity"]`` (a mapping hyperparameter ->
    list of values) or :data:`DEFAULT_SENSITIVITY`, checked against ``method``'s declarations."""
    return check_sensitivity_axes(cfg.notebook.get("sensitivity", DEFAULT_SENSITIVITY),
                                  f"{cfg.where}: notebook.sensitivity", method)


def sensitivity(cfg, data, request, model, reference: dict, axes: dict, *, method: str = "megu",
                seed: int = 0, out_dir=None, device=None, log=print) -> pd.DataFrame:
    """One-factor-at-a-time sweep of ``method`` around the profile's hyperparameters on one
    request: for each axis, each value with the others at the profile's. Each setting's row
    is kept as JSON under ``<results folder>/sensitivity`` (named by the hash of the run's key,
    written atomically; re-runs load it). Returns one row per (axis, value): metrics, gaps to
    ``reference``, seconds, and ``default`` (the profile's value)."""
    import json

    import numpy as np

    from .cache import atomic_write_bytes
    from .requests import config_hash
    base = cfg.method_hp(method)
    hp = cfg.full_hp(method)
    folder = (Path(out_dir) if out_dir is not None else cfg.results_folder()) / "sensitivity"
    rows = []
    for axis, values in axes.items():
        for value in values:
            key = dict(cfg.run_key(data, request, method, seed), hp={**hp, axis: value})
            path = folder / f"{config_hash(key)}.json"
            row = None
            if path.exists():
                try:
                    row = json.loads(path.read_text())
                except ValueError:
                    row = None
            if row is None:
                t = sweep(method, [{axis: value}], model, data, request, reference=reference, base=base, seed=seed,
                          device=device, max_retain=cfg.eval.get("max_retain"))
                row = {k: (v.item() if hasattr(v, "item") else v) for k, v in t.iloc[0].items() if k != axis}
                atomic_write_bytes(path, json.dumps(row, default=float).encode())
                log(f"[sensitivity] {axis}={value}: gap {row['gap']:.2f} points, {row['seconds']:.1f} s")
            rows.append(dict(axis=axis, value=float(value), default=bool(np.isclose(float(value), float(hp[axis]))),
                             **{k: v for k, v in row.items() if k not in ("axis", "value", "default")}))
    return pd.DataFrame(rows)
