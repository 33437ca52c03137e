"""Statistics over seeds for the records: intervals, equal-weight pooling, paired comparisons.

The unit of replication is the seed: each seed trains its own original, draws its own
random requests and runs every method, so two methods' runs on the same (request, seed)
are paired. :func:`seed_gaps` reduces the records to one number per (method, seed) — the
mean gap over the requests of a scenario, or over scenarios each weighted equally —;
:func:`mean_ci` gives a mean and its 95 % Student-t interval over seeds;
:func:`paired_bootstrap` the interval of the difference between two methods on the same
(request, seed) runs; :func:`ranking` puts them together, the do-nothing original included;
:func:`typical_seconds` is the time a method takes, robust to runs that shared the machine.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import check


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its two-sided Student-t interval at
    ``level``; the interval is NaN with fewer than two values."""
    from scipy import stats
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    check(len(v) > 0, "an interval needs at least one finite value")
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - half, m + half


def typical_seconds(df: pd.DataFrame) -> pd.Series:
    """The time a method takes (seconds), per method: for each request the median over seeds,
    then the mean over the requests. A run's time errs only upwards (another job shared the
    cores while it ran), and the median over seeds ignores a minority of such runs where a
    mean would take them in; the records keep every run's own time."""
    check(len(df) > 0 and "seconds" in df, "typical_seconds needs records with a seconds column")
    return df.groupby(["method", "request"]).seconds.median().groupby("method").mean()


def seed_gaps(df: pd.DataFrame, scenario: str | None = None, col: str = "gap") -> pd.DataFrame:
    """One value per (method, seed): the mean of ``col`` over the requests of ``scenario``;
    with ``scenario=None`` the mean over scenarios of those means, each scenario weighted
    equally (a scenario with two requests does not count twice). Rows: methods; columns: seeds."""
    sub = df if scenario is None else df[df.scenario == scenario]
    check(len(sub), f"no records{'' if scenario is None else f' for scenario {scenario!r}'}")
    per_scenario = sub.groupby(["method", "seed", "scenario"])[col].mean()
    return per_scenario.groupby(["method", "seed"]).mean().unstack("seed")


def paired_bootstrap(df: pd.DataFrame, a: str, b: str, col: str = "gap", *, n_boot: int = 10000,
                     level: float = 0.95, seed: int = 0) -> dict:
    """The difference ``a - b`` in ``col`` on the same (request, seed) runs, its mean and a
    percentile bootstrap interval. Runs are resampled by seed (a seed's requests move together,
    as they share an original model), and scenarios weighted equally within a resample.
    Returns ``{"diff", "low", "high", "pairs", "seeds"}``; the interval is NaN with one seed."""
    cols = ["request", "seed", "scenario", col]
    x = df[df.method == a][cols].set_index(["request", "seed"])
    y = df[df.method == b][cols].set_index(["request", "seed"])
    both = x.index.intersection(y.index)
    check(len(both), f"{a} and {b} share no (request, seed) run to compare")
    d = pd.DataFrame({"scenario": x.loc[both, "scenario"], "d": x.loc[both, col] - y.loc[both, col]}).reset_index()
    # per seed: the equal-weight mean over scenarios of the mean difference
    per_seed = d.groupby(["seed", "scenario"]).d.mean().groupby("seed").mean()
    diff = float(per_seed.mean())
    out = {"diff": diff, "low": math.nan, "high": math.nan, "pairs": len(both), "seeds": len(per_seed)}
    if len(per_seed) >= 2:
        rng = np.random.default_rng(seed)
        vals = per_seed.to_numpy()
        means = vals[rng.integers(0, len(vals), (int(n_boot), len(vals)))].mean(1)
        out["low"], out["high"] = (float(q) for q in np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))
    return out


def ranking(df: pd.DataFrame, scenario: str | None = None, methods=None, *, col: str = "gap",
            level: float = 0.95) -> pd.DataFrame:
    """Methods (the do-nothing ``original`` included when present; ``retrain`` left out, its
    gap is 0 by definition) by their mean ``col`` over seeds (:func:`seed_gaps`), with the
    interval, the seeds, the typical seconds (:func:`typical_seconds`) and the rank.
    ``cannot_tell``: True for every method whose interval overlaps the best method's — the
    records cannot tell them apart."""
    methods = list(methods) if methods is not None else sorted(set(df.method))
    sub = df[df.method.isin(methods) & (df.method != "retrain")]
    per_seed = seed_gaps(sub, scenario, col)
    rows = {}
    for method, values in per_seed.iterrows():
        m, lo, hi = mean_ci(values.dropna(), level)
        secs = float(typical_seconds(sub[(sub.method == method) & ((sub.scenario == scenario) if scenario
                                                                     else True)]).get(method, math.nan))
        rows[method] = {col: m, "ci_low": lo, "ci_high": hi, "seeds": int(values.notna().sum()), "seconds": secs}
    out = pd.DataFrame(rows).T.sort_values([col, "seconds"])
    out["rank"] = np.arange(1, len(out) + 1)
    best = out.iloc[0]
    best_hi = best["ci_high"] if np.isfinite(best["ci_high"]) else best[col]
    out["cannot_tell"] = [bool(np.isfinite(r["ci_low"]) and r["ci_low"] <= best_hi) or name == out.index[0]
                          for name, r in out.iterrows()]
    return out.astype({"seeds": int, "rank": int})


def discriminates(table: pd.DataFrame) -> bool | None:
    """False when the do-nothing ``original`` cannot be told apart from the best method in a
    :func:`ranking`: the scenario cannot discriminate between methods on these records. None
    when there is no interval to tell (one seed)."""
    if "original" not in table.index:
        return True
    if not np.isfinite(table.loc["original", "ci_low"]):
        return None
    return not bool(table.loc["original", "cannot_tell"])


def standing_sentence(table: pd.DataFrame, focus_label: str = "MeGU") -> str:
    """:func:`standing` in plain words (Markdown)."""
    overall = table.loc["all"]
    text = (f"Over all scenarios, each weighted equally, the method closest to retrain is **{overall.closest}** "
            f"(mean gap {overall.closest_gap:.2f} points)")
    if "focus_rank" in table and np.isfinite(overall.get("focus_rank", np.nan)):
        text += f"; {focus_label} ranks {int(overall.focus_rank)} of {int(overall.n_methods)}"
        if "diff" in table and isinstance(overall.get("best_baseline"), str):
            d, lo, hi = overall["diff"], overall.diff_low, overall.diff_high
            if np.isfinite(lo):
                verdict = ("closer to retrain than" if hi < 0 else "further from retrain than" if lo > 0
                           else "not distinguishable from")
                text += (f", {verdict} the best baseline, {overall.best_baseline} (difference {d:+.2f} points, "
                         f"95 % interval [{lo:+.2f}, {hi:+.2f}])")
            else:
                text += f" (one seed: no interval for its difference to {overall.best_baseline}, {d:+.2f} points)"
    text += "."
    blind = [s for s, v in table.discriminates.items() if s != "all" and v is False]
    if blind:
        text += (f" Doing nothing is as close to retrain as the best method in **{', '.join(blind)}** forgetting: "
                 "there this benchmark **cannot discriminate** between methods.")
    elif any(v is None for v in table.discriminates):
        text += " With one seed there are no intervals: whether a scenario discriminates cannot be said."
    return text


def standing(df: pd.DataFrame, methods=None, focus: str = "megu", level: float = 0.95) -> pd.DataFrame:
    """Per scenario, and over all scenarios weighted equally (``"all"``): the method closest to
    retrain and its gap with its interval, the do-nothing original's, whether the scenario
    discriminates (:func:`discriminates`), ``focus``'s (MeGU's) gap, rank and the paired
    difference to the best baseline (:func:`paired_bootstrap`; negative: MeGU closer).
    Baselines are the methods other than the references and MeGU's own variants."""
    methods = list(methods) if methods is not None else sorted(set(df.method))
    baselines = [m for m in methods if m not in ("original", "retrain") and not m.startswith("megu")]
    rows = []
    order = [s for s in ("class", "subclass", "random") if s in set(df.scenario)]
    for scenario in [*order, None]:
        sub = df if scenario is None else df[df.scenario == scenario]
        r = ranking(sub, None, methods, level=level)
        contenders = r.drop(index=[m for m in ("original",) if m in r.index])
        best = contenders.index[0]
        row = {"scenario": scenario or "all", "closest": best, "closest_gap": r.loc[best, "gap"],
               "closest_low": r.loc[best, "ci_low"], "closest_high": r.loc[best, "ci_high"],
               "discriminates": discriminates(r)}
        if "original" in r.index:
            row.update(original_gap=r.loc["original", "gap"], original_low=r.loc["original", "ci_low"],
                       original_high=r.loc["original", "ci_high"])
        if focus in contenders.index:
            others = [m for m in contenders.index if m in baselines]
            row.update(focus_gap=contenders.loc[focus, "gap"], focus_low=contenders.loc[focus, "ci_low"],
                       focus_high=contenders.loc[focus, "ci_high"],
                       focus_rank=int(list(contenders.index).index(focus)) + 1, n_methods=len(contenders))
            if others:
                d = paired_bootstrap(sub, focus, others[0], level=level)
                row.update(best_baseline=others[0], diff=d["diff"], diff_low=d["low"], diff_high=d["high"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("scenario")


def format_standing(table: pd.DataFrame, focus_label: str = "MeGU") -> pd.DataFrame:
    """:func:`standing` for reading: ``mean [low, high]`` cells, short headers."""
    def ci(m, lo, hi):
        if not np.isfinite(m):
            return "–"
        return f"{m:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else "")

    out = pd.DataFrame(index=table.index)
    out["closest to retrain"] = [f"{c} {ci(g, lo, hi)}" for c, g, lo, hi in
                                 zip(table.closest, table.closest_gap, table.closest_low, table.closest_high)]
    if "original_gap" in table:
        out["doing nothing"] = [ci(g, lo, hi) for g, lo, hi in
                                zip(table.original_gap, table.original_low, table.original_high)]
    out["discriminates"] = ["one seed: unknown" if d is None else "yes" if d else "cannot discriminate here"
                            for d in table.discriminates]
    if "focus_gap" in table:
        out[f"{focus_label} (rank)"] = [f"{ci(g, lo, hi)} ({int(r)} of {int(n)})" if np.isfinite(g) else "–"
                                        for g, lo, hi, r, n in zip(table.focus_gap, table.focus_low, table.focus_high,
                                                                   table.focus_rank.fillna(0),
                                                                   table.n_methods.fillna(0))]
    if "diff" in table:
        out[f"{focus_label} − best baseline"] = [f"{ci(d, lo, hi)} vs {b}" if isinstance(b, str) else "–"
                                                 for d, lo, hi, b in zip(table["diff"], table.diff_low,
                                                                         table.diff_high, table.best_baseline)]
    return out
