"""Tables and plain-words summaries built from the runner's records.

Everything here works from one flat DataFrame with a row per (method, request, seed)
(:func:`megu_lib.experiments.profile_records`): the metrics in percent, the seconds a
method took and its gaps to the retrained reference (points). The chapters only call these
functions (and their figures in :mod:`megu_lib.plotting`), so every number a page quotes is
computed here, and tested.

* :func:`results_table`, :func:`style_table`, :func:`gap_ranking`, :func:`gap_summary`: the
  paper's table layout and the plain statement of which method is closest to retrain;
* :func:`per_class_change`, :func:`collateral_frame`, :func:`collateral_summary`: damage to
  each retained class against its feature overlap with the forgotten class;
* :func:`ablation_effects`: MeGU's components, each removed in turn.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import check
from .metrics import spearman
from .requests import SCENARIOS

REFERENCES = ("original", "retrain")

ABLATIONS = ("megu_no_T", "megu_no_pos", "megu_no_neg", "megu_no_noise", "megu_random_label", "megu_any")

ABLATION_LABELS = {
    "megu": "MeGU (all components)",
    "megu_paper": "the paper's literal settings",
    "megu_no_T": "no transition matrix T",
    "megu_no_pos": "no positive noise",
    "megu_no_neg": "no negative noise",
    "megu_no_noise": "no noise at all",
    "megu_random_label": "random perturbing labels",
    "megu_any": "subclass rule: any coarse label",
}

SCENARIO_ORDER = ("class", "subclass", "random")
# MeGU as we run it, and as the paper states it (hard labels, every forget sample noised)

MEGU_VARIANTS = ("megu", "megu_paper")

MEGU_LABELS = {"megu": "MeGU (ours)", "megu_paper": "MeGU (paper's settings)"}

COLUMN_LABELS = {
    "retain_acc": "retain acc. (%)", "forget_acc": "forget acc. (%)", "test_acc": "test acc. (%)",
    "test_retain_acc": "test acc., retained (%)", "test_forget_acc": "test acc., forgotten (%)",
    "mia": "MIA (%)", "mia_loss": "MIA, loss (%)", "seconds": "time (s)", "gap": "gap to retrain (pts)",
    "gap_no_mia": "gap without MIA (pts)", "mia_auc": "MIA attack AUC",
}

RANKING_LABELS = {"gap": "mean gap (pts)", "ci_low": "95 % low", "ci_high": "95 % high", "seeds": "seeds",
                  "runs": "runs", "seconds": "typical time (s)",
                  "rank": "rank"}

GAP_LABELS = {"gap": "mean gap", "gap_retain_acc": "retain acc.", "gap_forget_acc": "forget acc.",
              "gap_test_acc": "test acc.", "gap_mia": "MIA"}
TABLE_COLUMNS = ("gap", "retain_acc", "forget_acc", "test_acc", "mia", "seconds")  # the decisive column first


# --------------------------------------------------------------------------- selections
def _registry_rank(method: str) -> int:
    from .methods import list_methods
    order = list(REFERENCES) + [m for m in list_methods() if m not in REFERENCES]
    return order.index(method) if method in order else len(order)

def main_methods(df: pd.DataFrame) -> list[str]:
    """Methods of the records for the main tables: references, baselines, MeGU (no ablations)."""
    return sorted((m for m in set(df.method) if m not in ABLATIONS), key=_registry_rank)


def all_methods(df: pd.DataFrame) -> list[str]:
    """Every method of the records, ablations included, references first, then registry order."""
    return sorted(set(df.method), key=_registry_rank)


def original_chance_note(df: pd.DataFrame) -> str | None:
    """The chance-level note (:func:`megu_lib.metrics.chance_note`) of the records' original
    models (their mean test accuracy outside the subclass scenario, whose labels are coarser),
    or None when they are clearly above chance or absent."""
    from .metrics import chance_note
    orig = df[(df.method == "original") & (df.scenario != "subclass")]
    if not len(orig) or "per_class" not in orig:
        return None
    return chance_note(float(orig.test_acc.mean()), len(orig.iloc[0]["per_class"]))


def scenarios_of(df: pd.DataFrame) -> list[str]:
    """The scenarios present in the records, in the paper's order."""
    return [s for s in SCENARIO_ORDER if s in set(df.scenario)]

def paired_values(df, a: str, b: str, col: str):
    """Values of ``col`` for methods ``a`` and ``b`` on the same (request, seed) runs."""
    x = df[df.method == a].set_index(["request", "seed"])[col]
    y = df[df.method == b].set_index(["request", "seed"])[col]
    both = x.index.intersection(y.index)
    return x.loc[both], y.loc[both]

def did_nothing(df: pd.DataFrame, method: str, tol: float = 0.01) -> bool:
    """True when ``method``'s accuracies equal the original model's on every run (within
    ``tol`` points): it left the model as it was (e.g. SSD selecting no parameter)."""
    if "original" not in set(df.method) or method not in set(df.method):
        return False
    for col in ("retain_acc", "forget_acc", "test_acc"):
        a, b = paired_values(df, method, "original", col)
        if not len(a) or float((a - b).abs().max()) > tol:
            return False
    return True

def idle_note(df: pd.DataFrame, methods=None) -> str:
    """A Markdown sentence naming, per scenario, the methods that left the model as it was on
    every run (:func:`did_nothing`: their rows are the original's, and a comparison with them
    is a comparison with an untouched model); empty when there is none."""
    methods = [m for m in (methods or main_methods(df)) if m not in REFERENCES]
    parts = []
    for scenario in scenarios_of(df):
        sub = df[df.scenario == scenario]
        idle = [m for m in methods if did_nothing(sub, m)]
        if idle:
            parts.append(f"{', '.join(f'`{m}`' for m in idle)} in {scenario} forgetting")
    if not parts:
        return ""
    return ("**Left the model as it was** (its accuracies equal the original's on every run, so its row is the "
            f"original's): {'; '.join(parts)}.")

def reference_metrics(df: pd.DataFrame, request: str, seed: int) -> dict:
    """The retrain record's metrics for ``request`` (a label such as ``class:Shirt``) and ``seed``."""
    ref = df[(df.method == "retrain") & (df.request == request) & (df.seed == seed)]
    check(len(ref), f"no retrain record for {request} with seed {seed}")
    return ref.iloc[0].to_dict()

def other_records(names, data, *, exclude=()) -> tuple[pd.DataFrame | None, dict]:
    """Records of other profiles on ``data``, for a chapter that puts them beside its own (the GPU
    profiles ``full`` and ``full_vit``, say): ``(records, left_out)``. A profile counts only when
    every one of its records is committed (:func:`megu_lib.experiments.committed_records`): a
    partial grid — one seed of a GPU run that ran out of time — would rank the methods it happened
    to reach. ``records`` is None when no profile is complete; ``left_out`` maps each profile
    left out (apart from ``exclude``) to a sentence saying why."""
    from .experiments import committed_records
    frames, left_out = [], {}
    for name in names or []:
        if str(name) in exclude:
            continue
        df, why = committed_records(str(name), data)
        if df is None:
            left_out[str(name)] = why
        else:
            frames.append(df)
    return (pd.concat(frames, ignore_index=True) if frames else None), left_out


def left_out_note(left_out: dict) -> str:
    """A Markdown line saying which profiles :func:`other_records` left out and why ("" for none)."""
    if not left_out:
        return ""
    return "*Not shown: " + "; ".join(f"`{n}` ({why})" for n, why in left_out.items()) + ".*"


# --------------------------------------------------------------------------- the paper's tables
def mia_power(df: pd.DataFrame, scenario: str | None = None) -> dict:
    """The entropy attack's own power on the records' models: its mean AUC on members
    (retain) vs non-members (test) for the original, retrain and all models of ``scenario``,
    whether that is near chance (at most :data:`megu_lib.claims.POWERLESS_AUC`), and a
    sentence saying so. Empty when the records carry no ``mia_auc``."""
    from .claims import POWERLESS_AUC
    sub = df if scenario is None else df[df.scenario == scenario]
    if "mia_auc" not in sub or not sub.mia_auc.notna().any():
        return {}
    by = sub.groupby("method").mia_auc.mean()
    overall = float(sub.mia_auc.mean())
    powerless = overall <= POWERLESS_AUC
    refs = ", ".join(f"{m} {by[m]:.1f}" for m in REFERENCES if m in by.index)
    text = (f"The MIA's own power here: its AUC on members vs non-members is {overall:.1f} % on average "
            f"({refs}; 50 is chance). ")
    text += (f"That is at most {POWERLESS_AUC:g}: **the MIA column tells nothing on these models**, and the gap "
             "without the MIA term is given beside the gap." if powerless else
             "The attack separates members from non-members, so its figures carry some information.")
    return {"auc": overall, "by_method": by.to_dict(), "powerless": powerless, "sentence": text}


def results_table(df: pd.DataFrame, scenario: str, methods=None, *, columns=TABLE_COLUMNS) -> pd.DataFrame:
    """The paper's layout for one scenario: methods as rows (``methods``, default
    :func:`main_methods`, in that order); mean and std over seeds and forget targets of each
    column, except time: :func:`megu_lib.stats.typical_seconds` (per request the median over
    seeds, then the mean over requests) and no std. Returns a DataFrame with (column,
    'mean'/'std') columns."""
    methods = list(methods) if methods is not None else main_methods(df)
    sub = df[(df.scenario == scenario) & df.method.isin(methods)]
    check(len(sub), f"no records for scenario {scenario!r}")
    cols = [c for c in columns if c in sub and sub[c].notna().any()]
    g = sub.groupby("method")[cols]
    table = pd.concat({"mean": g.mean(), "std": g.std(ddof=0)}, axis=1).swaplevel(axis=1)[cols]
    if "seconds" in cols:  # time: robust to runs that shared the machine, no spread (it would mix in the sharing)
        from .stats import typical_seconds
        table[("seconds", "mean")] = typical_seconds(sub).reindex(table.index)
        table[("seconds", "std")] = np.nan
    return table.loc[[m for m in methods if m in table.index]]


def best_per_column(table: pd.DataFrame) -> dict:
    """The method to mark in each column: closest to retrain for the metrics, smallest
    for seconds and gap (retrain and the original excluded)."""
    cand = table.drop(index=[m for m in ("retrain", "original") if m in table.index])
    best = {}
    for col in table.columns.get_level_values(0).unique():
        vals = cand[(col, "mean")]
        if col in ("seconds", "gap", "gap_no_mia"):
            best[col] = vals.idxmin()
        elif "retrain" in table.index:
            best[col] = (vals - table.loc["retrain", (col, "mean")]).abs().idxmin()
    return best


def style_table(table: pd.DataFrame, *, digits: int = 1, uuid: str = "t"):
    """``mean ± std`` cells to ``digits`` decimals (one: the table stays within the book's column;
    plain means when every std is 0: one run per method), readable
    headers, the best entry of each column in bold on green (closest to retrain for the
    metrics, smallest for time and gap; references excluded) and the reference rows in grey."""
    best = best_rows(table, digits)
    cols = list(table.columns.get_level_values(0).unique())
    with_std = bool(np.nan_to_num(table.xs("std", axis=1, level=1).to_numpy(dtype=float)).any())
    out = pd.DataFrame(index=table.index)
    for col in cols:
        mean, std = table[(col, "mean")], table[(col, "std")]
        # "87.3 ± 2.9": where the column is too narrow the cell breaks after the mean, never inside "± 2.9"
        out[COLUMN_LABELS.get(col, col)] = [f"{m:.{digits}f} ±\u00a0{s:.{digits}f}" if with_std and pd.notna(s)
                                            else f"{m:.{digits}f}" for m, s in zip(mean, std)]
    out.index.name = "method"
    label_to_col = {COLUMN_LABELS.get(c, c): c for c in cols}

    def mark(column):
        col = label_to_col[column.name]
        return ["font-weight: bold; background-color: #dff0df" if idx in best.get(col, ())
                else "color: #777777" if idx in REFERENCES else "" for idx in column.index]
    return out.style.apply(mark, axis=0).set_properties(**{"white-space": "normal"}).set_uuid(uuid)

def best_rows(table: pd.DataFrame, digits: int = 2) -> dict:
    """Per column, every method tied (at ``digits`` decimals) with the best one of
    :func:`best_per_column`: {column: set of methods}."""
    best = best_per_column(table)
    cand = table.drop(index=[m for m in REFERENCES if m in table.index])
    out = {}
    for col, winner in best.items():
        means = cand[(col, "mean")]
        if col in ("seconds", "gap", "gap_no_mia") or "retrain" not in table.index:
            score = means
        else:
            score = (means - table.loc["retrain", (col, "mean")]).abs()
        out[col] = set(score.index[np.round(score, digits) == np.round(score[winner], digits)])
    return out

def gap_ranking(df: pd.DataFrame, scenario: str | None = None, methods=None) -> pd.DataFrame:
    """Methods sorted by their mean gap to retrain (points), as :func:`megu_lib.stats.ranking`
    computes it — per seed the mean over the scenario's requests (``scenario=None``: over the
    scenarios, each weighted equally), then the mean and 95 % interval over seeds — with the
    number of runs. The do-nothing ``original`` is a row too (when among ``methods``: the bar
    every method must beat); retrain is left out (its gap is 0)."""
    from .stats import ranking
    sub = df if scenario is None else df[df.scenario == scenario]
    methods = list(methods) if methods is not None else main_methods(df)
    sub = sub[sub.method.isin(methods) & (sub.method != "retrain")]
    check(len(sub), f"no records to rank{'' if scenario is None else f' for scenario {scenario!r}'}")
    out = ranking(sub, None, methods)
    out["runs"] = sub.groupby("method").size().reindex(out.index)
    return out[["gap", "ci_low", "ci_high", "seeds", "runs", "seconds", "rank"]]

def gap_summary(df: pd.DataFrame, methods=None, focus: str = "megu") -> dict:
    """Which method is closest to retrain, over all scenarios and per scenario, and where
    ``focus`` (MeGU) stands; ``sentence`` says it in plain words (Markdown)."""
    def contenders(r):  # the methods, without the do-nothing row, ranked among themselves
        r = r.drop(index=[m for m in ("original",) if m in r.index])
        return r.assign(rank=np.arange(1, len(r) + 1))

    full = gap_ranking(df, None, methods)
    overall = contenders(full)
    best = overall.index[0]
    out = dict(best=best, best_gap=float(overall.loc[best, "gap"]), n_methods=len(overall),
               focus_gap=float(overall.loc[focus, "gap"]) if focus in overall.index else float("nan"),
               focus_rank=int(overall.loc[focus, "rank"]) if focus in overall.index else None,
               original_gap=float(full.loc["original", "gap"]) if "original" in full.index else float("nan"),
               per_scenario={})
    for s in scenarios_of(df):
        r = contenders(gap_ranking(df, s, methods))
        out["per_scenario"][s] = dict(best=r.index[0], best_gap=float(r.iloc[0]["gap"]),
                                      focus_rank=int(r.loc[focus, "rank"]) if focus in r.index else None)
    n_runs, n_seeds = int(overall["runs"].max()), int(overall["seeds"].max())
    text = (f"Over all scenarios, each weighted equally ({n_runs} runs per method: requests × {n_seeds} seeds), "
            f"the method with the smallest mean gap to retrain is **{best}** ({out['best_gap']:.2f} points). ")
    if out["focus_rank"] is None:
        text += f"{focus} was not run on this profile."
    elif best == focus:
        runner_up = overall.index[1] if len(overall) > 1 else None
        text += ("That is MeGU" + (f"; the next closest is {runner_up} "
                                     f"({overall.loc[runner_up, 'gap']:.2f} points)." if runner_up else "."))
    else:
        text += (f"**It is not MeGU**: MeGU's mean gap is {out['focus_gap']:.2f} points, rank "
                 f"{out['focus_rank']} of {out['n_methods']} methods on this profile.")
    if focus == "megu" and "megu_paper" in overall.index:
        text += (f" MeGU with the paper's literal settings (`megu_paper`) is rank "
                 f"{int(overall.loc['megu_paper', 'rank'])} ({overall.loc['megu_paper', 'gap']:.2f} points).")
    if np.isfinite(out["original_gap"]):
        beaten = int((overall.gap < out["original_gap"]).sum())
        text += (f" Doing nothing (the original model) is {out['original_gap']:.2f} points from retrain; "
                 f"{beaten} of {len(overall)} methods get closer.")
    parts = [f"{s}: {v['best']} ({v['best_gap']:.2f}; MeGU rank {v['focus_rank']})"
             for s, v in out["per_scenario"].items() if v["focus_rank"] is not None]
    if parts:
        text += " Closest per scenario — " + "; ".join(parts) + "."
    out["sentence"] = text
    return out

def profile_label(name: str, df: pd.DataFrame) -> str:
    """``name (arch, device)`` from a profile's records, for tables that put profiles side by side."""
    arch = ", ".join(sorted(map(str, df["arch"].unique()))) if "arch" in df else "?"
    device = ", ".join(sorted({str(d).split(":")[0] for d in df["device"].unique()})) if "device" in df else "?"
    return f"{name} ({arch}, {device})"

def profile_comparison(frames: dict, methods=None) -> pd.DataFrame:
    """The mean gap to retrain (points) and typical time (seconds) of each method under each
    profile: ``frames`` maps a label to that profile's records (with gaps, as from
    :func:`megu_lib.experiments.profile_records` or :func:`other_records`). Rows are methods, sorted by the first
    profile's gap; columns ``(label, "mean gap (pts)" | "rank" | "typical time (s)")``; a method a
    profile did not run is NaN there."""
    check(isinstance(frames, dict) and frames, "profile_comparison needs a mapping label -> records")
    parts = {}
    for label, df in frames.items():
        r = gap_ranking(df, None, methods if methods is not None else main_methods(df))
        parts[(label, RANKING_LABELS["gap"])] = r["gap"]
        parts[(label, RANKING_LABELS["rank"])] = r["rank"].astype("Int64")
        parts[(label, RANKING_LABELS["seconds"])] = r["seconds"]
    out = pd.DataFrame(parts)
    first = next(iter(frames))
    out = out.sort_values((first, RANKING_LABELS["gap"]), na_position="last")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def replication_table(frames: dict, methods=None, focus: str = "megu",
                      focus_label: str = "MeGU") -> tuple[pd.DataFrame, str]:
    """One profile's grid run more than once (``frames``: label -> records with gaps, the first
    the reference): each method's mean gap to retrain over all scenarios weighted equally and
    its rank in every run (:func:`profile_comparison`, times left out), and a Markdown sentence
    — per run, the closest method, ``focus``'s rank and its paired difference to the best
    baseline (:func:`megu_lib.stats.standing`), and the rank correlation of each run's order
    with the first's (Spearman over the methods both ranked)."""
    from .stats import standing
    check(isinstance(frames, dict) and len(frames) >= 2, "replication_table needs two or more runs (label -> records)")
    table = profile_comparison(frames, methods)
    table = table.drop(columns=[c for c in table.columns if c[1] == RANKING_LABELS["seconds"]])
    first = next(iter(frames))
    rank = RANKING_LABELS["rank"]
    parts, signs = [], []
    for label, df in frames.items():
        row = standing(df, methods if methods is not None else main_methods(df), focus).loc["all"]
        text = f"in *{label}*, **{row.closest}** is closest to retrain ({row.closest_gap:.2f} points)"
        if np.isfinite(row.get("focus_rank", np.nan)):
            text += f" and {focus_label} ranks {int(row.focus_rank)} of {int(row.n_methods)} ({row.focus_gap:.2f}"
            if isinstance(row.get("best_baseline"), str) and np.isfinite(row.get("diff_low", np.nan)):
                text += (f"; {row['diff']:+.2f} [{row.diff_low:+.2f}, {row.diff_high:+.2f}] against the best "
                         f"baseline, {row.best_baseline}")
                signs.append(1 if row.diff_low > 0 else -1 if row.diff_high < 0 else 0)
            text += ")"
        if label != first:
            rho = spearman(table[(first, rank)].astype(float), table[(label, rank)].astype(float))
            text += f"; its order against the first run's: Spearman ρ = {rho:.2f}"
        parts.append(text)
    text = "; ".join(parts)
    text = text[0].upper() + text[1:] + "."
    if len(signs) == len(frames):
        text += (f" In every run {focus_label} is **further from retrain than the best baseline** (the interval of "
                 "the difference lies above 0)." if set(signs) == {1} else
                 f" In every run {focus_label} is **closer to retrain than the best baseline**." if set(signs) == {-1}
                 else f" Whether {focus_label} is closer to retrain than the best baseline **depends on the run**.")
    return table, text


def replication_by_scenario(frames: dict, methods=None, focus: str = "megu",
                            focus_label: str = "MeGU") -> tuple[pd.DataFrame, str]:
    """:func:`replication_table` scenario by scenario: for every record set in ``frames`` (label
    -> records with gaps: a run of the grid, or records read together) and every scenario, the
    method closest to retrain, whether the scenario discriminates, ``focus``'s gap and rank, and
    its paired difference to the best baseline (:func:`megu_lib.stats.standing`, formatted by
    :func:`megu_lib.stats.format_standing`; rows ``(scenario, run)``). The Markdown text says per
    scenario which verdicts every record set shares: the closest method, whether doing nothing is
    within its interval, and on which side of the best baseline ``focus`` lies."""
    from .stats import format_standing, standing
    check(isinstance(frames, dict) and len(frames) >= 2,
          "replication_by_scenario needs two or more runs (label -> records)")
    tables = {label: standing(df, methods if methods is not None else main_methods(df), focus)
              for label, df in frames.items()}
    order = [s for s in (*SCENARIOS, "all") if any(s in t.index for t in tables.values())]
    parts = []
    for scenario in order:
        for label, t in tables.items():
            if scenario in t.index:
                row = format_standing(t.loc[[scenario]], focus_label).drop(columns=["doing nothing"], errors="ignore")
                parts.append(row.set_axis(pd.MultiIndex.from_tuples([(scenario, label)], names=["scenario", "run"])))
    table = pd.concat(parts)
    lines = []
    for scenario in order:
        rows = [t.loc[scenario] for t in tables.values() if scenario in t.index]
        closest = sorted({r.closest for r in rows})
        blind = [r.discriminates is not None and not pd.isna(r.discriminates) and not r.discriminates for r in rows]
        signs = [1 if r.diff_low > 0 else -1 if r.diff_high < 0 else 0 for r in rows
                 if isinstance(r.get("best_baseline"), str) and np.isfinite(r.get("diff_low", np.nan))]
        name = "over all scenarios" if scenario == "all" else f"{scenario} forgetting"
        text = (f"**{name}**: the closest method is **{closest[0]}** in all {len(rows)} record sets"
                if len(closest) == 1 else f"**{name}**: the closest method changes between them ({', '.join(closest)})")
        if all(blind):
            text += "; doing nothing is within its interval in every one (**cannot discriminate here**)"
        elif any(blind):
            text += f"; doing nothing is within its interval in {sum(blind)} of {len(rows)}"
        if len(signs) == len(rows):
            text += ("; " + focus_label + (" is further from retrain than the best baseline in every one"
                                           if set(signs) == {1} else
                                           " is closer to retrain than the best baseline in every one"
                                           if set(signs) == {-1} else
                                           "'s side of the best baseline **depends on the record set** ("
                                           + f"further in {signs.count(1)}, closer in {signs.count(-1)}, "
                                           + f"not distinguishable in {signs.count(0)})"))
        lines.append(f"- {text}.")
    return table, "\n".join(lines)


def tuning_effect(tuned: pd.DataFrame, defaults: pd.DataFrame, methods=None) -> tuple[pd.DataFrame, str]:
    """Each method's mean gap to retrain (points) tuned and at its reference defaults, on the
    (request, seed) runs both record sets hold, per scenario (columns ``(scenario, "tuned" |
    "defaults")``, rows sorted by the first scenario's tuned gap), and a Markdown sentence
    counting, per scenario, the methods that tuning brought closer to retrain. Both sets come
    with gaps (:func:`megu_lib.experiments.add_gaps`), each against its own retrain runs."""
    shared = set(zip(tuned.request, tuned.seed)) & set(zip(defaults.request, defaults.seed))
    check(shared, "tuning_effect: the two record sets share no (request, seed) run")
    methods = [m for m in (methods if methods is not None else main_methods(defaults)) if m != "retrain"]
    frames = {}
    for label, df in (("tuned", tuned), ("defaults", defaults)):
        keep = [(r, s) in shared for r, s in zip(df.request, df.seed)]
        frames[label] = df[keep]
    parts, counts = {}, []
    for scenario in scenarios_of(frames["tuned"]):
        if scenario not in set(frames["defaults"].scenario):
            continue
        gaps = {label: gap_ranking(df, scenario, methods)["gap"] for label, df in frames.items()}
        for label, g in gaps.items():
            parts[(scenario, label)] = g
        both = [m for m in methods if m not in REFERENCES and m in gaps["tuned"] and m in gaps["defaults"]]
        closer = [m for m in both if gaps["tuned"][m] < gaps["defaults"][m]]
        counts.append(f"{scenario} forgetting {len(closer)} of {len(both)}")
    out = pd.DataFrame(parts)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out = out.sort_values(out.columns[0], na_position="last")
    requests = sorted({r for r, _ in shared})
    seeds = sorted({int(s) for _, s in shared})
    text = (f"On the runs both tables hold ({', '.join(requests)}; seeds {', '.join(map(str, seeds))}), tuning "
            f"brought these methods closer to retrain than their reference defaults: {'; '.join(counts)}.")
    from .stats import typical_seconds
    secs = typical_seconds(frames["defaults"])
    if "retrain" in secs:  # the tuning's cap, which the defaults do not obey (times from one run)
        slow = [m for m in methods if m not in REFERENCES and secs.get(m, 0.0) > secs["retrain"]]
        if slow:
            text += (f" At their defaults {', '.join(f'`{m}`' for m in slow)} took longer than retraining, which no "
                     "tuned setting may.")
    return out, text

def _runs_in(df: pd.DataFrame, runs: set) -> pd.DataFrame:
    """The rows of ``df`` whose (request, seed) is in ``runs``."""
    # a boolean array, not a list: an empty list would select no columns of an empty frame
    return df[np.array([(r, s) in runs for r, s in zip(df.request, df.seed)], dtype=bool)]


def _with_ci(value: float, low: float, high: float, sign: bool = False) -> str:
    """A value with its interval, "x.xx [lo, hi]"; the value alone where there is no interval."""
    f = "+.2f" if sign else ".2f"
    return f"{value:{f}} [{low:{f}}, {high:{f}}]" if np.isfinite(low) and np.isfinite(high) else f"{value:{f}}"


def repeated_methods(repeat: pd.DataFrame, scenario: str) -> list[str]:
    """The methods ``repeat`` runs in ``scenario`` besides the references (a ``where_better``
    profile runs each method only where its repeated study was the better)."""
    return [m for m in main_methods(repeat[repeat.scenario == scenario]) if m not in REFERENCES]


def same_setting(a: dict, b: dict) -> bool:
    """Whether two hyperparameter settings (records' ``hp``) are the same: the same names, equal
    values, floats equal to a relative 1e-9 (a setting read back from a study's JSON may differ
    in its last digit)."""
    def same(x, y):
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-9)
        return x == y
    return set(a) == set(b) and all(same(a[k], b[k]) for k in a)


def _replaced(base: pd.DataFrame, rep: pd.DataFrame, methods) -> pd.DataFrame:
    """``base`` with the rows of ``methods`` taken from ``rep`` instead."""
    return pd.concat([base[~base.method.isin(methods)], rep[rep.method.isin(methods)]], ignore_index=True)


def at_better_search(committed: pd.DataFrame, repeat: pd.DataFrame) -> pd.DataFrame:
    """``committed``'s records with, per scenario, every method that ``repeat`` runs there in
    place of its committed rows: each method at the better of its two searches when
    ``repeat`` is a ``where_better`` profile on the same requests and seeds (e.g.
    ``main_repeat`` beside ``main``). The gaps are computed again against ``committed``'s
    retrain runs, the one reference of every row. The repeat's times are put on ``committed``'s
    machine: each row's seconds times the ratio of the two runs' retraining times on its
    (request, seed), kept in ``time_scale`` (1 for ``committed``'s own rows), so that a time is
    read against retraining's within its own run (the two may have run on different machines).
    A method whose repeat lacks one of its committed (request, seed) runs is an error naming
    them."""
    from .experiments import add_gaps
    parts = []
    for scenario in scenarios_of(committed):
        base = committed[committed.scenario == scenario]
        rep = repeat[repeat.scenario == scenario]
        methods = repeated_methods(repeat, scenario)
        for m in methods:
            want = set(zip(base.request[base.method == m], base.seed[base.method == m]))
            missing = want - set(zip(rep.request[rep.method == m], rep.seed[rep.method == m]))
            check(not missing, f"at_better_search: the repeat lacks {len(missing)} of the {len(want)} runs of {m} in "
                  f"{scenario} (e.g. {min(missing, default=None)}); finish the repeat's run first")
        rep = _runs_in(rep, set(zip(base.request, base.seed)))
        scale = _retrain_seconds(base, rep) / _retrain_seconds(rep, rep)
        parts.append(_replaced(base.assign(time_scale=1.0),
                               rep.assign(seconds=rep.seconds * scale, time_scale=scale), methods))
    return add_gaps(pd.concat(parts, ignore_index=True))


def _retrain_seconds(runs: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """The seconds of the retrain run in ``runs`` of each row's (request, seed) of ``rows``."""
    ref = runs[runs.method == "retrain"].set_index(["request", "seed"])["seconds"]
    return ref.reindex(pd.MultiIndex.from_arrays([rows.request, rows.seed])).to_numpy()


def repeat_effect(committed: pd.DataFrame, repeat: pd.DataFrame, focus: str = "megu") -> tuple[pd.DataFrame, str]:
    """What the methods of ``repeat`` (a profile run at a repeated study's choices, e.g.
    ``main_repeat``) change in ``committed``'s standings, on the (request, seed) runs where
    ``repeat`` holds every one of its methods.

    Per scenario of ``repeat``: each repeated method's mean gap and 95 % interval at the
    committed choice and at the repeat's; ``focus``'s rank among the methods (the do-nothing
    row left out) with the committed rows and with the repeat's in their place; and the
    paired difference ``focus`` − method with the repeat's rows. Every gap is against
    ``committed``'s retrain runs (as in :func:`at_better_search`), the reference of the rows
    the repeat's are set beside. Returns the table and a Markdown text."""
    from .experiments import add_gaps
    from .stats import paired_bootstrap
    check(any(repeated_methods(repeat, s) for s in scenarios_of(repeat)),
          "repeat_effect: the repeat holds no method besides the references")
    rows, lines = [], []
    for scenario in scenarios_of(repeat):
        rep = repeat[repeat.scenario == scenario]
        methods = repeated_methods(repeat, scenario)
        if not methods:
            continue
        # a repeat still running: the methods furthest along only (one just begun would cut the
        # runs shared by all to its first seed); the others are named as not shown yet
        done = rep[rep.method.isin(methods)].groupby("method").size()
        lagging = [m for m in methods if done.get(m, 0) < done.max()]
        methods = [m for m in methods if m not in lagging]
        counts = rep[rep.method.isin(methods)].groupby(["request", "seed"]).method.nunique()
        shared = set(counts[counts == len(methods)].index)
        # whole seeds only (every request of the scenario), when there are any: a seed's mean
        # over some of its requests is not comparable with another's over all of them
        requests = set(rep.request)
        whole = {s for _, s in shared if {r for r, s2 in shared if s2 == s} == requests}
        if whole:
            shared = {(r, s) for r, s in shared if s in whole}
        base = _runs_in(committed[committed.scenario == scenario], shared)
        if not shared or focus not in set(base.method):
            continue
        # one reference for every row: the committed retrain runs (two retrainings of the same
        # key differ by float rounding, and a difference of references is not the methods')
        swapped = add_gaps(_replaced(base, _runs_in(rep, shared), methods))
        before, after = (gap_ranking(d, scenario).drop(index=list(REFERENCES), errors="ignore")
                         for d in (base, swapped))
        rank = {label: int(list(t.index).index(focus)) + 1 for label, t in (("before", before), ("after", after))}
        diffs, unchanged, repeated = [], [], _runs_in(rep, shared)
        for m in methods:
            # the focus method itself repeated: no difference to itself, its rank says it
            d = paired_bootstrap(swapped, focus, m) if m != focus else None
            diff = _with_ci(d["diff"], d["low"], d["high"], sign=True) if d else "—"
            b, a = before.loc[m], after.loc[m]
            # the repeat's study may have chosen the committed study's very setting (TPE, seeded
            # alike, walks the same path when the trials' gaps differ only by float rounding)
            pairs = base[base.method == m].merge(repeated[repeated.method == m], on=["request", "seed"])
            same = len(pairs) > 0 and all(same_setting(x, y) for x, y in zip(pairs.hp_x, pairs.hp_y))
            if same:
                unchanged.append(m)
            rows.append({"scenario": scenario, "method": m, "repeat's setting": "the same" if same else "another",
                         "gap, committed choice": _with_ci(b["gap"], b["ci_low"], b["ci_high"]),
                         "gap, repeat's choice": _with_ci(a["gap"], a["ci_low"], a["ci_high"]),
                         f"{focus} − method": diff})
            diffs.append(f"`{m}` {b['gap']:.2f} → {a['gap']:.2f}" + (f" ({focus} − {m}: {diff})" if d else ""))
        seeds = sorted({int(s) for _, s in shared})
        lines.append(f"- **{scenario}** ({len({r for r, _ in shared})} requests, seeds {', '.join(map(str, seeds))}): "
                     f"at the repeat's choice {'; '.join(diffs)}. `{focus}` ranks {rank['before']} of {len(before)} "
                     f"with the committed choices and {rank['after']} of {len(after)} with the repeat's."
                     + (f" Not shown yet (fewer runs so far): {', '.join(f'`{m}`' for m in lagging)}." if lagging
                        else "")
                     + (f" The repeat chose the committed setting itself for {', '.join(f'`{m}`' for m in unchanged)}: "
                        f"{'its two rows differ' if len(unchanged) == 1 else 'their two rows differ'} only by the runs "
                        f"(originals trained again, another machine), the run-to-run spread at one setting."
                        if unchanged else ""))
    return pd.DataFrame(rows), "\n".join(lines)


# --------------------------------------------------------------------------- collateral damage
def per_class_change(df: pd.DataFrame, request: str) -> pd.DataFrame:
    """Per retained class, each method's test-accuracy change against the original
    (points, mean over seeds) for one request (e.g. ``class:Shirt``)."""
    sub = df[df.request == request]
    check(len(sub), f"no records for request {request!r}")
    check("original" in set(sub.method), f"no original-model record for {request!r}; re-run the experiments")
    forget = set(sub.iloc[0]["forget"])
    rows = {}
    for method, g in sub.groupby("method"):
        per = pd.DataFrame(list(g["per_class"])).mean()
        rows[method] = per
    table = pd.DataFrame(rows).T
    change = table - table.loc["original"]
    return change.drop(columns=[c for c in change.columns if c in forget])


def collateral_frame(df: pd.DataFrame, request: str, overlap: pd.Series, methods=None) -> pd.DataFrame:
    """Tidy per (method, retained class): its overlap with the forgotten class and its test
    accuracy change against the original model (points; negative = damage)."""
    change = per_class_change(df, request)
    methods = [m for m in (methods if methods is not None else main_methods(df))
               if m in change.index and m != "original"]
    rows = [dict(method=m, **{"class": c}, overlap=float(overlap[c]), change=float(change.loc[m, c]))
            for m in methods for c in change.columns if c in overlap.index]
    return pd.DataFrame(rows)

def collateral_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean change over all retained classes, over the most entangled half
    (overlap at or above the median) and the rest, and the Spearman correlation of overlap
    with damage (positive: the more a class shares with the forgotten one, the more it loses)."""
    rows = {}
    for m, g in frame.groupby("method", sort=False):
        # the half with the largest overlap (ties broken by class order), the rest
        order = g.sort_values("overlap", ascending=False, kind="stable")
        top = order.iloc[:max(1, len(order) // 2)]
        rest = order.iloc[len(top):]
        rows[m] = {"mean change": g.change.mean(), "entangled half": top.change.mean(),
                   "other half": rest.change.mean() if len(rest) else float("nan"),
                   "spearman(overlap, damage)": spearman(g.overlap, -g.change)}
    out = pd.DataFrame(rows).T
    out.index.name = "method"
    return out


# --------------------------------------------------------------------------- ablations
def ablation_effects(df: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and ablation: its mean gap to retrain and the change against full MeGU
    on the same (request, seed) runs (points; positive = the removed part was helping)."""
    check("megu" in set(df.method), "no MeGU records: the ablations compare with full MeGU")
    full = df[df.method == "megu"].set_index(["request", "seed"])
    rows = []
    for m in [a for a in ("megu_paper", *ABLATIONS) if a in set(df.method)]:
        for s in scenarios_of(df):
            sub = df[(df.method == m) & (df.scenario == s)].set_index(["request", "seed"])
            both = sub.index.intersection(full.index)
            if not len(both):
                continue
            d = sub.loc[both]
            rows.append(dict(ablation=m, component=ABLATION_LABELS[m], scenario=s, gap=d.gap.mean(),
                             delta_gap=(d.gap - full.loc[both].gap).mean(),
                             delta_forget_acc=(d.forget_acc - full.loc[both].forget_acc).mean(),
                             delta_retain_acc=(d.retain_acc - full.loc[both].retain_acc).mean(),
                             delta_seconds=(d.seconds - full.loc[both].seconds).mean()))
    check(rows, "no ablation records share a request and seed with MeGU")
    return pd.DataFrame(rows)

def ablation_table(effects: pd.DataFrame) -> pd.DataFrame:
    """:func:`ablation_effects` for reading: rows (component, scenario), rounded columns with units."""
    out = effects.set_index(["component", "scenario"]).drop(columns=["ablation"])
    out = out.rename(columns={"gap": "gap (pts)", "delta_gap": "Δ gap (pts)", "delta_forget_acc": "Δ forget acc. (pts)",
                              "delta_retain_acc": "Δ retain acc. (pts)", "delta_seconds": "Δ time (s)"})
    return out.round(2)

def baselines_table(cfg, methods=None) -> pd.DataFrame:
    """The methods as the profile runs them: what each does, its source, what we do
    differently (the method's registered ``deviations``), and its hyperparameters — the
    setting its tuning study chose per scenario (``cfg.tuned``), or the values the profile
    sets over the reference defaults."""
    from .methods import get_method
    methods = [m for m in (methods if methods is not None else cfg.methods) if m != "original"]
    rows = []
    for m in methods:
        spec = get_method(m)
        if cfg.tuned(m):
            how = "tuned per scenario (table below)"
        else:
            fixed = {k: v for k, v in cfg.method_hp(m).items() if spec.defaults.get(k) != v}
            how = ("its defaults (see its docstring)" if not fixed else
                   "its defaults, except " + ", ".join(f"{k}={v}" for k, v in sorted(fixed.items())))
        rows.append({"method": m, "what it does": spec.summary, "hyperparameters": how,
                     "differs from its source": spec.deviations or "—", "source": spec.source})
    return pd.DataFrame(rows).set_index("method")


def subclass_readings(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The two readings of MeGU's subclass rule side by side on the subclass requests:
    ``megu`` (a coarse label other than the sample's own) and ``megu_any`` (any coarse label,
    the own included), with retrain: forget-set accuracy, test accuracy on the forgotten fine
    class (the share still put in its coarse class), retain accuracy and the gap, means over
    requests and seeds. Returns the table and a sentence (Markdown) saying which is closer."""
    sub = df[(df.scenario == "subclass") & df.method.isin(["retrain", "megu", "megu_any"])]
    cols = [c for c in ("forget_acc", "test_forget_acc", "retain_acc", "gap") if c in sub]
    if not len(sub) or not {"megu", "megu_any"} <= set(sub.method):
        return pd.DataFrame(columns=cols), "*Both readings were not run on the subclass requests of these records.*"
    table = sub.groupby("method")[cols].mean().loc[[m for m in ("retrain", "megu", "megu_any") if m in set(sub.method)]]
    table.index = table.index.map({"retrain": "retrain", "megu": "megu (other coarse label)",
                                   "megu_any": "megu_any (any coarse label)"})
    g = table["gap"]
    other, anyr = g.iloc[-2], g.iloc[-1]
    closer = "the *any* reading" if anyr < other else "the *other* reading"
    text = (f"On the subclass requests, {closer} ends closer to retrain (mean gap "
            f"{min(anyr, other):.2f} against {max(anyr, other):.2f} points). Retraining keeps "
            f"{table['forget_acc'].iloc[0]:.1f} % of the forgotten fine class in its coarse class on the "
            f"forget set; the other reading keeps {table['forget_acc'].iloc[-2]:.1f} %, the any reading "
            f"{table['forget_acc'].iloc[-1]:.1f} %.")
    return table.rename(columns=COLUMN_LABELS), text


def baselines_markdown(cfg, methods=None) -> str:
    """:func:`baselines_table` as a list a reader can take in at page width: per method what
    it does, its hyperparameters as run, what differs from its source, and the source."""
    table = baselines_table(cfg, methods)
    items = []
    for m, row in table.iterrows():
        items.append(f"- **`{m}`** — {row['what it does']}. *Hyperparameters:* {row['hyperparameters']}. "
                     f"*Differs from its source:* {row['differs from its source']}. *Source:* {row['source']}.")
    return "\n".join(items)


def _hp_cell(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def megu_hp_table(cfg, method: str = "megu", better=None) -> pd.DataFrame:
    """MeGU's hyperparameters (or an ablation's) and where each value comes from, one row
    per hyperparameter (index): its declared ``default``; its ``origin`` (``paper``: the
    paper states it; ``ours``: the paper is silent, or we depart from what it states — the
    declaration's :class:`~megu_lib.hparams.Param` ``origin``); what it means (the
    declaration's ``help``); ``set by the profile``, the profile's value where it differs
    from the default (its ``hp`` section, or its judge; the column only when there is one);
    and, when the profile tunes the method (or takes its setting from another profile's
    study, ``tuned_from``), one column ``tuned, <scenario>`` per tuned scenario with the
    value the study chose, blank where it is what the method runs at untuned (the default,
    or the profile's value): where tuning kept it, or did not search it. With ``better`` (a
    ``tuned_from.where_better`` profile of ``cfg``, as
    :func:`megu_lib.experiments.verdict_records` returns it), a scenario where the repeat's
    search won shows the repeat's choice, its column named ``tuned, <scenario> (repeat)``.
    Every cell is text."""
    from .methods import get_method
    params = get_method(method).params
    base = cfg.method_hp(method)
    tuned_from = bool(cfg.tuned_from) and method in cfg.tuned_from["methods"]
    if cfg.tuned(method):
        scenarios = [s for s in SCENARIO_ORDER if s in cfg.tuning_section()["requests"]]
    elif tuned_from:  # where it runs (tuned_from.where_better: only where the repeat's study won)
        scenarios = [s for s in SCENARIO_ORDER if s in cfg.scenarios and cfg.runs(method, s)]
    else:
        scenarios = []
    repeated = {s for s in scenarios if better is not None and better.at_repeat(method, s)}
    tuned = {s: (better if s in repeated else cfg).method_hp(method, s) for s in scenarios}
    rows = []
    for name, p in params.items():
        row = {"hyperparameter": name, "default": _hp_cell(p.default), "origin": p.origin or "—",
               "what it means": p.help or "—",
               "set by the profile": _hp_cell(base[name]) if name in base and base[name] != p.default else ""}
        untuned = base.get(name, p.default)
        for s in scenarios:
            value = tuned[s].get(name, untuned)
            row[f"tuned, {s}" + (" (repeat)" if s in repeated else "")] = _hp_cell(value) if value != untuned else ""
        rows.append(row)
    table = pd.DataFrame(rows).set_index("hyperparameter")
    return table if (table["set by the profile"] != "").any() else table.drop(columns="set by the profile")
