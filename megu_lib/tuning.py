"""Hyperparameter sweeps on a validation split (never on the test set).

:func:`sweep` runs one method over a grid of hyperparameters for one request and
returns a tidy DataFrame (one row per setting: the hyperparameters, the metrics, the
gap to the retrained reference, seconds). Use it on ``data.validation_split()`` to
choose defaults, and on the real split only to *show* sensitivity.
"""
from __future__ import annotations

import itertools

import pandas as pd

from .errors import check
from .metrics import GAP_KEYS, evaluate, gap_to_reference
from .methods import get_method, unlearn


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
    rows = []
    for i, setting in enumerate(settings):
        hp = {**base, **setting}
        unknown = set(hp) - set(spec.defaults)
        check(not unknown, f"sweep: method {method!r} has no hyperparameter(s) {sorted(unknown)}")
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
