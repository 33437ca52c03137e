"""Tables, figures and verdicts for the book's chapters on experiments, ablations and claims.

Everything here works from the runner's records (:mod:`megu_lib.experiments`): one flat
DataFrame with a row per (method, request, seed), the metrics in percent, the seconds a
method took and its gaps to the retrained reference (points). The chapters only call
these functions, so every number a page quotes is computed here, and tested.

* :func:`fit_config_to_data` keeps a profile usable on another data set (its named forget
  classes may not exist there);
* :func:`experiment_records` runs what is missing (resumable) and loads exactly the
  records of the config — stale records of an older config in the same folder are ignored;
* :func:`results_table`, :func:`style_table`, :func:`gap_ranking`, :func:`gap_summary`:
  the paper's table layout and the plain statement of which method is closest to retrain;
* :func:`collateral_frame`, :func:`collateral_summary`: damage to each retained class
  against its feature overlap with the forgotten class;
* :func:`ablation_effects`, :func:`sensitivity`: MeGU's components and hyperparameters;
* :func:`check_claims`: the paper's claims, our figure for each, and a verdict.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import matplotlib
import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .errors import MeguError, check
from .experiments import (ExperimentConfig, add_gaps, best_per_column, build_requests, collateral_table,
                          results_dir, run_key, summary_table)
from .metrics import GAP_KEYS, spearman
from .requests import config_hash, make_request

REFERENCES = ("original", "retrain")
ABLATIONS = ("megu_no_T", "megu_no_pos", "megu_no_neg", "megu_no_noise", "megu_random_label")
ABLATION_LABELS = {
    "megu": "MeGU (all components)",
    "megu_paper": "the paper's literal settings",
    "megu_no_T": "no transition matrix T",
    "megu_no_pos": "no positive noise",
    "megu_no_neg": "no negative noise",
    "megu_no_noise": "no noise at all",
    "megu_random_label": "random perturbing labels",
}
SCENARIO_ORDER = ("class", "subclass", "random")
# MeGU as we run it, and as the paper states it (hard labels, every forget sample noised)
MEGU_VARIANTS = ("megu", "megu_paper")
MEGU_LABELS = {"megu": "MeGU (ours)", "megu_paper": "MeGU (paper's settings)"}
COLUMN_LABELS = {
    "retain_acc": "retain acc. (%)", "forget_acc": "forget acc. (%)", "test_acc": "test acc. (%)",
    "test_retain_acc": "test acc., retained (%)", "test_forget_acc": "test acc., forgotten (%)",
    "mia": "MIA (%)", "mia_loss": "MIA, loss (%)", "seconds": "time (s)", "gap": "gap to retrain (pts)",
}
RANKING_LABELS = {"gap": "mean gap (pts)", "std": "std (pts)", "runs": "runs", "seconds": "mean time (s)",
                  "rank": "rank"}
GAP_LABELS = {"gap": "mean gap", "gap_retain_acc": "retain acc.", "gap_forget_acc": "forget acc.",
              "gap_test_acc": "test acc.", "gap_mia": "MIA"}
# the paper's figures (MEGU_SPEC §6)
PAPER = {"retain_gap": 0.35, "mia_vs_ssd": 49.0, "mia_vs_unsir": 9.8, "time_saving": 59.0}
VERDICTS = ("holds", "does not hold", "not testable here")
CIFAR = ("cifar10", "cifar20", "cifar100")
PAPER_ARCHS = ("resnet18", "vit", "vit_b16")


# --------------------------------------------------------------------------- records
def fit_config_to_data(cfg: ExperimentConfig, data) -> tuple[ExperimentConfig, list[str]]:
    """The config with forget targets the data set has, and notes on what was changed.

    A profile names classes of its own data set (e.g. "Shirt"); re-run on another data set
    (``make book DATASET=...``), a target the data lacks is replaced by the data set's first
    class (first fine class with siblings, for the subclass scenario), and the subclass
    scenario is dropped when the data has no coarse labels. Nothing changes when every
    target exists.
    """
    notes, scenarios = [], {}
    for scenario, spec in cfg.scenarios.items():
        if scenario == "random":
            scenarios[scenario] = spec
            continue
        if scenario == "subclass" and not data.has_coarse:
            notes.append(f"subclass scenario left out: {data.name} has no coarse labels")
            continue
        keep = []
        for target in spec["forget"]:
            try:
                make_request(data, scenario, forget=target)
                keep.append(target)
            except MeguError:
                notes.append(f"{scenario} scenario: {target!r} is not a class of {data.name}")
        if not keep:
            fallback = _fallback_target(data, scenario)
            if fallback is None:
                notes.append(f"{scenario} scenario left out: no class of {data.name} can be forgotten that way")
                continue
            keep = [fallback]
            notes.append(f"{scenario} scenario: forgetting {fallback!r} instead (the data set's first such class)")
        scenarios[scenario] = {**spec, "forget": keep}
    check(scenarios, f"no scenario of profile {cfg.name!r} applies to data set {data.name}")
    return dataclasses.replace(cfg, scenarios=scenarios), notes


def _fallback_target(data, scenario: str):
    if scenario == "class":
        return data.class_names()[0]
    coarse = data.coarse_of_fine()
    for i, name in enumerate(data.classes):
        if int((coarse == coarse[i]).sum()) > 1:
            return name
    return None


def expected_record_files(cfg: ExperimentConfig, data) -> list[str]:
    """File names of every record the runner writes for ``cfg`` (methods and originals)."""
    names = []
    for seed in cfg.seeds:
        for request in build_requests(cfg, data, seed):
            for method in cfg.methods:
                names.append(f"{config_hash(run_key(cfg, data, request, method, seed))}.json")
            key = dict(run_key(cfg, data, request, "retrain", seed), method="original")
            names.append(f"original-{config_hash(key)}.json")
    return names


def records_folder(cfg: ExperimentConfig, out_dir=None) -> Path:
    """Where the runner keeps ``cfg``'s records: ``<out_dir or results/<name>>/records``."""
    return (Path(out_dir) if out_dir is not None else results_dir() / cfg.name) / "records"


def experiment_records(cfg: ExperimentConfig, data, *, run: bool = True, out_dir=None, log=print) -> pd.DataFrame:
    """The records of ``cfg`` as one DataFrame (with gaps to retrain), running what is missing.

    ``run=False`` only loads, and stops with a one-line error naming the command to run
    when records are missing. Records in the folder that do not belong to ``cfg`` (an
    older config, another data set) are ignored.
    """
    from .experiments import _read_record, record_row, run_experiments
    folder = records_folder(cfg, out_dir)
    if run:
        run_experiments(cfg, out_dir=folder.parent, log=lambda m: log(m.split(" -> ")[0]))
    rows, missing = [], 0
    for name in expected_record_files(cfg, data):
        rec = _read_record(folder / name)
        if rec is None:
            missing += 1
            continue
        rows.append(record_row(rec))
    from .experiments import PARAMS_DIR
    name = cfg.name if not cfg.path or Path(cfg.path).parent == PARAMS_DIR else cfg.path
    check(missing == 0, f"{missing} record(s) of profile {cfg.name!r} are missing under {folder}; "
          f"run the experiments first (python -m megu_lib run {name})")
    return add_gaps(pd.DataFrame(rows))


def original_model(cfg: ExperimentConfig, data, seed: int, level: str | None = None):
    """The profile's original model for ``seed`` (at label ``level``), from the cache the
    runner filled: the model every method of the records started from."""
    from .trained import fit_model
    from .training import train_config
    options = {k: v for k, v in cfg.model.items() if k != "arch"}
    return fit_model(data, arch=cfg.model["arch"], train=train_config(dict(cfg.train)), seed=seed,
                     level=level or data.label_level, device=cfg.device, **options)


def profile_records(profile: str = "default", *, dataset=None, device=None, run: bool = True, log=print):
    """The common start of the result chapters (05–07): the profile's config fitted to its data
    (:func:`fit_config_to_data`), the data, and its records (:func:`experiment_records`, running
    what is missing when ``run``); logs what the records are (:func:`describe`). Returns
    ``(cfg, data, records)``."""
    from .experiments import load_config, load_data
    cfg = load_config(profile, dataset=dataset, device=device)
    data = load_data(cfg)
    cfg, notes = fit_config_to_data(cfg, data)
    df = experiment_records(cfg, data, run=run, log=log)
    log(describe(cfg, data, df, notes))
    return cfg, data, df


def chapter_setup(profile: str = "default", *, dataset=None, device=None, seed=None, forget_class=None):
    """The common start of the analysis chapters (01–04): the profile's config, its data, the
    seed (the profile's first when None), a class request for ``forget_class`` (None: the
    profile's ``notebook.forget_class`` where the data set has it, else the data's first
    class) and the profile's original model for that seed. Returns a namespace with
    ``cfg, seed, data, request, forget_name, forget_index, original``."""
    from types import SimpleNamespace

    from .experiments import load_config, load_data
    from .requests import make_request
    from .training import seed_everything
    cfg = load_config(profile, dataset=dataset, device=device)
    seed = cfg.seeds[0] if seed is None else seed
    seed_everything(seed)
    data = load_data(cfg)
    if forget_class is None:
        forget_class = cfg.notebook.get("forget_class")
        forget_class = forget_class if forget_class in data.class_names() else data.class_names()[0]
    request = make_request(data, "class", forget=forget_class)
    return SimpleNamespace(cfg=cfg, seed=seed, data=data, request=request, forget_name=request.forget[0],
                           forget_index=int(request.forget_classes[0]), original=original_model(cfg, data, seed))


def describe(cfg: ExperimentConfig, data, df: pd.DataFrame, notes=()) -> str:
    """Two lines on what the records are, plus the notes of :func:`fit_config_to_data`."""
    lines = [f"profile {cfg.name!r}: {data.name}, {cfg.model['arch']}, seeds {cfg.seeds}",
             f"{len(df)} records: {df.request.nunique()} request(s) x {len(cfg.seeds)} seed(s) x "
             f"({len(cfg.methods)} methods + the original model)"]
    return "\n".join(lines + [f"note: {n}" for n in notes])


def reference_metrics(df: pd.DataFrame, request: str, seed: int) -> dict:
    """The retrain record's metrics for ``request`` (a label such as ``class:Shirt``) and ``seed``."""
    ref = df[(df.method == "retrain") & (df.request == request) & (df.seed == seed)]
    check(len(ref), f"no retrain record for {request} with seed {seed}")
    return ref.iloc[0].to_dict()


def other_records(names, *, exclude=()) -> pd.DataFrame | None:
    """Records of other profiles (names or results folders) that exist, loaded as they are;
    None when there are none. Used by the claims chapter to add e.g. GPU runs on CIFAR."""
    from .experiments import load_records
    frames = []
    for name in names or []:
        path = Path(name) if os.sep in str(name) else results_dir() / str(name)
        if str(name) in exclude or not (path / "records").is_dir():
            continue
        try:
            frames.append(load_records(path))
        except MeguError:
            continue
    return pd.concat(frames, ignore_index=True) if frames else None


# --------------------------------------------------------------------------- tables
def _registry_rank(method: str) -> int:
    from .methods import list_methods
    order = list(REFERENCES) + [m for m in list_methods() if m not in REFERENCES]
    return order.index(method) if method in order else len(order)


def main_methods(df: pd.DataFrame) -> list[str]:
    """Methods of the records for the main tables: references, baselines, MeGU (no ablations)."""
    return sorted((m for m in set(df.method) if m not in ABLATIONS), key=_registry_rank)


def scenarios_of(df: pd.DataFrame) -> list[str]:
    """The scenarios present in the records, in the paper's order."""
    return [s for s in SCENARIO_ORDER if s in set(df.scenario)]


def results_table(df: pd.DataFrame, scenario: str, methods=None) -> pd.DataFrame:
    """The paper's layout for one scenario (methods as rows; mean and std over seeds and
    forget targets per column), restricted to ``methods`` (default :func:`main_methods`)."""
    methods = list(methods) if methods is not None else main_methods(df)
    sub = df[df.method.isin(methods)]
    return summary_table(sub, scenario, order=methods)


def style_table(table: pd.DataFrame, *, digits: int = 2, uuid: str = "t"):
    """``mean ± std`` cells (plain means when every std is 0: one run per method), readable
    headers, the best entry of each column in bold on green (closest to retrain for the
    metrics, smallest for time and gap; references excluded) and the reference rows in grey."""
    best = best_rows(table, digits)
    cols = list(table.columns.get_level_values(0).unique())
    with_std = bool(np.nan_to_num(table.xs("std", axis=1, level=1).to_numpy(dtype=float)).any())
    out = pd.DataFrame(index=table.index)
    for col in cols:
        mean, std = table[(col, "mean")], table[(col, "std")]
        out[COLUMN_LABELS.get(col, col)] = [f"{m:.{digits}f} ± {s:.{digits}f}" if with_std else f"{m:.{digits}f}"
                                            for m, s in zip(mean, std.fillna(0))]
    out.index.name = "method"
    label_to_col = {COLUMN_LABELS.get(c, c): c for c in cols}

    def mark(column):
        col = label_to_col[column.name]
        return ["font-weight: bold; background-color: #dff0df" if idx in best.get(col, ())
                else "color: #777777" if idx in REFERENCES else "" for idx in column.index]
    return out.style.apply(mark, axis=0).set_uuid(uuid)


def best_rows(table: pd.DataFrame, digits: int = 2) -> dict:
    """Per column, every method tied (at ``digits`` decimals) with the best one of
    :func:`megu_lib.experiments.best_per_column`: {column: set of methods}."""
    best = best_per_column(table)
    cand = table.drop(index=[m for m in REFERENCES if m in table.index])
    out = {}
    for col, winner in best.items():
        means = cand[(col, "mean")]
        if col in ("seconds", "gap") or "retrain" not in table.index:
            score = means
        else:
            score = (means - table.loc["retrain", (col, "mean")]).abs()
        out[col] = set(score.index[np.round(score, digits) == np.round(score[winner], digits)])
    return out


def gap_ranking(df: pd.DataFrame, scenario: str | None = None, methods=None) -> pd.DataFrame:
    """Methods sorted by their mean gap to retrain (points), with std and number of runs;
    the references are left out. ``scenario=None`` pools every scenario."""
    sub = df if scenario is None else df[df.scenario == scenario]
    methods = list(methods) if methods is not None else main_methods(df)
    sub = sub[sub.method.isin(methods) & ~sub.method.isin(REFERENCES)]
    check(len(sub), f"no records to rank{'' if scenario is None else f' for scenario {scenario!r}'}")
    g = sub.groupby("method")["gap"]
    out = pd.DataFrame({"gap": g.mean(), "std": g.std(ddof=0), "runs": g.size(),
                        "seconds": sub.groupby("method")["seconds"].mean()})
    out = out.sort_values(["gap", "seconds"])
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def gap_summary(df: pd.DataFrame, methods=None, focus: str = "megu") -> dict:
    """Which method is closest to retrain, over all scenarios and per scenario, and where
    ``focus`` (MeGU) stands; ``sentence`` says it in plain words (Markdown)."""
    overall = gap_ranking(df, None, methods)
    best = overall.index[0]
    out = dict(best=best, best_gap=float(overall.loc[best, "gap"]), n_methods=len(overall),
               focus_gap=float(overall.loc[focus, "gap"]) if focus in overall.index else float("nan"),
               focus_rank=int(overall.loc[focus, "rank"]) if focus in overall.index else None,
               per_scenario={})
    for s in scenarios_of(df):
        r = gap_ranking(df, s, methods)
        out["per_scenario"][s] = dict(best=r.index[0], best_gap=float(r.iloc[0]["gap"]),
                                      focus_rank=int(r.loc[focus, "rank"]) if focus in r.index else None)
    n_runs = int(overall["runs"].max())
    text = (f"Over all scenarios ({n_runs} runs per method: requests × seeds), the method with the smallest mean gap to "
            f"retrain is **{best}** ({out['best_gap']:.2f} points). ")
    if out["focus_rank"] is None:
        text += f"{focus} was not run on this profile."
    elif best == focus:
        runner_up = overall.index[1] if len(overall) > 1 else None
        text += (f"That is MeGU" + (f"; the next closest is {runner_up} "
                                     f"({overall.loc[runner_up, 'gap']:.2f} points)." if runner_up else "."))
    else:
        text += (f"**It is not MeGU**: MeGU's mean gap is {out['focus_gap']:.2f} points, rank "
                 f"{out['focus_rank']} of {out['n_methods']} methods on this profile.")
    if focus == "megu" and "megu_paper" in overall.index:
        text += (f" MeGU with the paper's literal settings (`megu_paper`) is rank "
                 f"{int(overall.loc['megu_paper', 'rank'])} ({overall.loc['megu_paper', 'gap']:.2f} points).")
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
    """The mean gap to retrain (points) and mean time (seconds) of each method under each
    profile: ``frames`` maps a label to that profile's records (with gaps, as from
    :func:`experiment_records` or :func:`other_records`). Rows are methods, sorted by the first
    profile's gap; columns ``(label, "mean gap (pts)" | "rank" | "mean time (s)")``; a method a
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


def plot_profile_comparison(table: pd.DataFrame):
    """Grouped bars: each method's mean gap to retrain under each profile of
    :func:`profile_comparison` (shorter is closer to retrain)."""
    gap = RANKING_LABELS["gap"]
    long = pd.DataFrame([dict(method=m, profile=label, gap=table.loc[m, (label, gap)])
                         for label in dict.fromkeys(table.columns.get_level_values(0)) for m in table.index
                         if np.isfinite(table.loc[m, (label, gap)])])
    from .plotting import grouped_bars
    fig = grouped_bars(long, "method", "gap", "profile", ylabel="mean gap to retrain (pts)")
    fig.set_size_inches(max(6.0, 1.5 + 0.55 * long.method.nunique()), 3.8)
    for ax in fig.axes:
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- figures
def _method_palette(methods) -> dict:
    colors = (sns.color_palette("tab10") + sns.color_palette("Dark2"))[:max(len(methods), 3)]
    pal = {m: colors[i] for i, m in enumerate(methods)}
    if "megu" in pal:
        pal["megu"] = (0.85, 0.1, 0.1)
    if "megu_paper" in pal:
        pal["megu_paper"] = (0.95, 0.5, 0.45)
    if "retrain" in pal:
        pal["retrain"] = (0.1, 0.1, 0.1)
    return pal


def plot_time_vs_gap(df: pd.DataFrame, methods=None):
    """Mean time (s, log scale) against mean gap to retrain (points), one panel per scenario;
    retrain sits at gap 0 as the reference time to beat."""
    methods = list(methods) if methods is not None else main_methods(df)
    methods = [m for m in methods if m != "original"]
    scen = scenarios_of(df)
    pal = _method_palette(methods)
    fig, axes = plt.subplots(len(scen), 1, figsize=(7.5, 2.9 * len(scen)), squeeze=False)
    for ax, s in zip(axes[:, 0], scen):
        sub = df[(df.scenario == s) & df.method.isin(methods)]
        agg = sub.groupby("method").agg(seconds=("seconds", "mean"), gap=("gap", "mean"),
                                        sec_std=("seconds", "std"), gap_std=("gap", "std")).fillna(0)
        for m, row in agg.iterrows():
            ax.errorbar(row.seconds, row.gap, yerr=row.gap_std, fmt="*" if m in ("megu", "retrain") else "o",
                        ms=11 if m in ("megu", "retrain") else 6, color=pal[m], capsize=2, lw=0.8)
            ax.annotate(m, (row.seconds, row.gap), xytext=(4, 3), textcoords="offset points", fontsize=8,
                        color=pal[m], fontweight="bold" if m == "megu" else "normal")
        if "retrain" in agg.index:
            ax.axvline(agg.loc["retrain", "seconds"], color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylabel("gap to retrain (pts)")
        ax.set_title(f"{s} forgetting", fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time per request (s, log scale)")
    fig.tight_layout()
    return fig


def overlap_with_forgotten(model, data, forget: str, *, q: float = 0.1, max_samples: int | None = 10000,
                           seed: int = 0, device=None) -> pd.Series:
    """Each class's Jaccard feature overlap with class ``forget`` in ``model`` (our
    operationalisation, :mod:`megu_lib.entanglement`)."""
    from .entanglement import model_patterns
    patterns, _, _ = model_patterns(model, data, q=q, max_samples=max_samples, seed=seed, device=device)
    check(forget in patterns.classes, f"class {forget!r} is not a class of {data.name}")
    return patterns.overlap().loc[forget]


def collateral_frame(df: pd.DataFrame, request: str, overlap: pd.Series, methods=None) -> pd.DataFrame:
    """Tidy per (method, retained class): its overlap with the forgotten class and its test
    accuracy change against the original model (points; negative = damage)."""
    change = collateral_table(df, request)
    methods = [m for m in (methods if methods is not None else main_methods(df)) if m in change.index and m != "original"]
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


def plot_collateral(frame: pd.DataFrame, forget: str, *, ncols: int = 4):
    """One panel per method: each retained class's accuracy change (points) against its
    feature overlap with the forgotten class; retrain's in grey in every panel."""
    methods = list(dict.fromkeys(frame.method))
    shown = [m for m in methods if m != "retrain"] or methods
    ncols = min(ncols, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.0 * ncols, 1.8 * nrows + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    ref = frame[frame.method == "retrain"]
    for ax, m in zip(axes.flat, shown):
        g = frame[frame.method == m]
        if len(ref) and m != "retrain":
            ax.scatter(ref.overlap, ref.change, s=12, color="0.65", label="retrain")
        color = "crimson" if m == "megu" else "tab:blue"
        ax.scatter(g.overlap, g.change, s=16, color=color, label=m, zorder=3)
        if g.overlap.nunique() >= 3:  # least-squares trend: damage growing with overlap slopes down
            slope, icpt = np.polyfit(g.overlap, g.change, 1)
            xs = np.array([g.overlap.min(), g.overlap.max()])
            ax.plot(xs, icpt + slope * xs, color=color, lw=1)
        ax.axhline(0, color="0.3", lw=0.6)
        ax.tick_params(labelsize=7)
        ax.set_title(m, fontsize=9, fontweight="bold" if m == "megu" else "normal")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(f"overlap with {forget!r}", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("Δ test acc. (pts)", fontsize=8)
    fig.suptitle(f"Collateral damage after forgetting {forget!r} (grey: retrain)", fontsize=10)
    fig.tight_layout()
    return fig


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


def ablation_sentence(effects: pd.DataFrame) -> str:
    """Plain words on which component matters most (Markdown)."""
    mean = effects.groupby("component").delta_gap.mean().sort_values()
    worst, best = mean.index[-1], mean.index[0]
    helping = [c for c, v in mean.items() if v > 0]
    text = ""
    if mean[worst] > 0:
        text += (f"Averaged over the scenarios, the ablation that moves MeGU furthest from retrain is "
                 f"**{worst}** ({mean[worst]:+.2f} points of gap). ")
    if mean[best] < 0:
        text += (f"**{best}** brings it *closer* ({mean[best]:+.2f} points): on this profile the part it removes "
                 "does not earn its keep. ")
    text += (f"{len(helping)} of {len(mean)} ablations increase the gap, i.e. the removed part helps."
             if helping else "No ablation increases the gap: on this profile no single component helps.")
    return text


def plot_ablations(effects: pd.DataFrame):
    """Change in gap to retrain when each component is removed (points), per scenario."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    order = [ABLATION_LABELS[a] for a in ("megu_paper", *ABLATIONS) if ABLATION_LABELS[a] in set(effects.component)]
    sns.barplot(data=effects, y="component", x="delta_gap", hue="scenario", order=order, ax=ax, palette="deep",
                hue_order=[s for s in SCENARIO_ORDER if s in set(effects.scenario)])
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_xlabel("gap to retrain minus full MeGU's (points; > 0: the part helps)")
    ax.set_ylabel("")
    ax.legend(title="scenario", fontsize=8, title_fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- sensitivity
DEFAULT_SENSITIVITY = {"epochs": [0.5, 1.0, 2.0], "lr": [0.003, 0.01, 0.03], "retain_ratio": [0.5, 1.0, 2.0],
                       "noise_lambda": [0.01, 0.1, 1.0]}


def sensitivity_plan(cfg: ExperimentConfig, method: str = "megu") -> dict:
    """The values to sweep: ``cfg.notebook["sensitivity"]`` (a mapping hyperparameter ->
    list of values) or ``DEFAULT_SENSITIVITY``; hyperparameters ``method`` lacks are an error."""
    from .methods import get_method
    axes = cfg.notebook.get("sensitivity", DEFAULT_SENSITIVITY)
    check(isinstance(axes, dict) and axes, f"{cfg.name}: notebook.sensitivity must map hyperparameters to lists")
    known = get_method(method).defaults
    for k, v in axes.items():
        check(k in known, f"{cfg.name}: notebook.sensitivity: {method} has no hyperparameter {k!r}; "
              f"known: {', '.join(known)}")
        check(isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v),
              f"{cfg.name}: notebook.sensitivity.{k} must be a non-empty list of numbers, got {v!r}")
    return {k: list(v) for k, v in axes.items()}


def sensitivity(cfg: ExperimentConfig, data, request, model, reference: dict, axes: dict, *, method: str = "megu",
                seed: int = 0, out_dir=None, device=None, log=print) -> pd.DataFrame:
    """One-factor-at-a-time sweep of ``method`` around the profile's hyperparameters on one
    request: for each axis, each value with the others at their defaults. Each setting's
    result is kept as JSON under ``<results>/<profile>/sensitivity`` (re-runs load it).
    Returns one row per (axis, value): metrics, gaps to ``reference``, seconds, ``default``."""
    from .methods import get_method
    from .tuning import sweep
    hp = {**get_method(method).defaults, **cfg.hp.get(method, {})}
    base = dict(cfg.hp.get(method, {}))
    if method.startswith("megu") and "judge" in hp:
        base.setdefault("judge", cfg.judge)
        hp["judge"] = base["judge"]
    folder = (Path(out_dir) if out_dir is not None else results_dir() / cfg.name) / "sensitivity"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for axis, values in axes.items():
        for value in values:
            setting = {**hp, axis: value}
            key = dict(run_key(cfg, data, request, method, seed), hp=setting)
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
                path.write_text(json.dumps(row, default=float))
                log(f"[sensitivity] {axis}={value}: gap {row['gap']:.2f} points, {row['seconds']:.1f} s")
            rows.append(dict(axis=axis, value=float(value), default=bool(np.isclose(float(value), float(hp[axis]))),
                             **{k: v for k, v in row.items() if k not in ("axis", "value", "default")}))
    return pd.DataFrame(rows)


def plot_sensitivity(table: pd.DataFrame):
    """One panel per hyperparameter: the mean gap to retrain and its parts (points) against
    the value (log scale); the profile's value marked by a dotted line."""
    axes_names = list(dict.fromkeys(table.axis))
    ncols = min(2, len(axes_names))
    nrows = math.ceil(len(axes_names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols + 0.4, 2.6 * nrows + 0.5), sharey=True,
                             squeeze=False)
    keys = [k for k in GAP_LABELS if k in table.columns]
    for ax in axes.flat[len(axes_names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, axes_names):
        sub = table[table.axis == name].sort_values("value")
        for k in keys:
            ax.plot(sub.value, sub[k], "o-" if k == "gap" else ".--", lw=2.2 if k == "gap" else 1,
                    color="black" if k == "gap" else None, label=GAP_LABELS[k])
        d = sub[sub.default]
        if len(d):
            ax.axvline(d.value.iloc[0], color="0.5", ls=":", lw=1)
        if sub.value.min() > 0 and sub.value.max() / sub.value.min() >= 4:
            ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xticks(sorted(sub.value.unique()))
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("|MeGU − retrain| (pts)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


# --------------------------------------------------------------------------- claims
@dataclasses.dataclass
class Claim:
    """One claim of the paper checked on one group of records (data set, model)."""

    claim: str
    paper: str
    ours: str
    verdict: str
    why: str
    data: str = ""
    value: float = float("nan")
    target: float = float("nan")
    unit: str = ""
    short: str = ""
    method: str = "megu"


def base_dataset(dataset: str) -> str:
    """The data set's name without its subset mark: ``fashion_mnist[2000/500]`` -> ``fashion_mnist``."""
    return str(dataset).split("[")[0]


def record_groups(df: pd.DataFrame) -> list[str]:
    """The (data set / model) groups of the records, e.g. ``["fashion_mnist / small_cnn"]``."""
    return sorted({f"{base_dataset(d)} / {a}" for d, a in zip(df.dataset, df.arch)})


def _class_records(df):
    sub = df[df.scenario == "class"]
    return sub if len(sub) else None


def _paired(df, a: str, b: str, col: str):
    """Values of ``col`` for methods ``a`` and ``b`` on the same (request, seed) runs."""
    x = df[df.method == a].set_index(["request", "seed"])[col]
    y = df[df.method == b].set_index(["request", "seed"])[col]
    both = x.index.intersection(y.index)
    return x.loc[both], y.loc[both]


def _mean_std(values, fmt: str, unit: str) -> str:
    """``m ± s unit (n runs)``, or ``m unit (1 run)``."""
    n = len(values)
    if n == 1:
        return f"{float(values.mean()):{fmt}}{unit} (1 run)"
    return f"{float(values.mean()):{fmt}} ± {float(values.std(ddof=0)):{fmt}}{unit} ({n} runs)"


def _label(focus: str) -> str:
    return MEGU_LABELS.get(focus, focus)


def _claim_retain(df, where, focus="megu") -> Claim:
    name, paper = "Class-wise: retain accuracy within 0.35 points of retrain", "≤ 0.35 points"
    sub = _class_records(df)
    if sub is None or focus not in set(sub.method):
        return Claim(name, paper, "—", VERDICTS[2], "no class-forgetting runs of MeGU on this profile", where,
                     method=focus)
    m, r = _paired(sub, focus, "retrain", "retain_acc")
    if not len(m):
        return Claim(name, paper, "—", VERDICTS[2], "no retrain runs to compare with", where, method=focus)
    gap = (m - r).abs()
    ok = gap.mean() <= PAPER["retain_gap"]
    return Claim(name, paper, _mean_std(gap, ".2f", " points"),
                 VERDICTS[0] if ok else VERDICTS[1],
                 f"mean |retain acc. MeGU − retrain| over the class requests and seeds is "
                 f"{'within' if ok else 'above'} 0.35 points (MeGU {m.mean():.2f} %, retrain {r.mean():.2f} %)",
                 where, float(gap.mean()), PAPER["retain_gap"], "points", "retain acc. gap to retrain", focus)


def _claim_mia(df, other: str, key: str, where, focus="megu") -> Claim:
    target = PAPER[key]
    name, paper = f"MIA lower than {other.upper()}'s by {target:g} % (relative)", f"−{target:g} %"
    sub = _class_records(df)
    sub = sub if sub is not None else df
    have = set(sub.method)
    if focus not in have or other not in have:
        missing = [m for m in (focus, other) if m not in have]
        return Claim(name, paper, "—", VERDICTS[2], f"{', '.join(missing)} not run on this profile", where,
                     method=focus)
    m, o = _paired(sub, focus, other, "mia")
    if not len(m) or o.mean() <= 0:
        return Claim(name, paper, "—", VERDICTS[2],
                     f"{other.upper()}'s MIA is 0 on these runs: no relative reduction is defined", where,
                     method=focus)
    reduction = 100 * (1 - m.mean() / o.mean())
    ok = reduction >= target
    ref = sub[sub.method == "retrain"].mia.mean() if "retrain" in have else float("nan")
    why = (f"MeGU {m.mean():.1f} % vs {other.upper()} {o.mean():.1f} % of forget samples called members "
           f"(retrain: {ref:.1f} %); ")
    if reduction > 0 and not ok:
        why += f"lower, but by less than the {target:g} % claimed"
    elif reduction <= 0:
        why += "MeGU's is not lower"
    else:
        why += "as claimed, or more (lower is not always better: the target is retrain's figure)"
    ours = f"−{reduction:.1f} %" if reduction >= 0 else f"+{-reduction:.1f} %"
    return Claim(name, paper, ours, VERDICTS[0] if ok else VERDICTS[1], why, where,
                 float(reduction), target, "% lower", f"MIA reduction vs {other.upper()}", focus)


def _claim_time(df, where, focus="megu") -> Claim:
    target = PAPER["time_saving"]
    name, paper = "More than 59 % less time than retraining", f"> {target:g} % saved"
    m, r = _paired(df, focus, "retrain", "seconds") if {focus, "retrain"} <= set(df.method) else ([], [])
    if not len(m):
        return Claim(name, paper, "—", VERDICTS[2], "MeGU or retrain not run on this profile", where, method=focus)
    saving = 100 * (1 - m / r)
    ok = saving.mean() > target
    return Claim(name, paper, _mean_std(saving, ".1f", " % saved"),
                 VERDICTS[0] if ok else VERDICTS[1],
                 f"MeGU {m.mean():.1f} s vs retrain {r.mean():.1f} s per request, same device, all scenarios "
                 "(the one-off, cached judge run is not counted, as in the paper)",
                 where, float(saving.mean()), target, "% saved", "time saved vs retrain", focus)


def baselines_of(df: pd.DataFrame) -> list[str]:
    """The baselines in the records: every method but the references and MeGU's variants."""
    return [m for m in main_methods(df) if m not in REFERENCES and not m.startswith("megu")]


def _rank_among_baselines(df, scenario: str, focus: str):
    methods = [*baselines_of(df), focus]
    return gap_ranking(df, scenario, methods)


def _claim_scenario(df, scenario: str, where, focus="megu") -> Claim:
    name, paper = f"Better than the baselines: {scenario} forgetting", "MeGU best"
    sub = df[df.scenario == scenario]
    if not len(sub):
        return Claim(name, paper, "—", VERDICTS[2], f"the profile has no {scenario} requests", where, method=focus)
    if focus not in set(sub.method) or not baselines_of(sub):
        return Claim(name, paper, "—", VERDICTS[2], "MeGU or the baselines not run on this profile", where,
                     method=focus)
    r = _rank_among_baselines(df, scenario, focus)
    rank, n = int(r.loc[focus, "rank"]), len(r)
    best_other = next(m for m in r.index if m != focus)
    ok = rank == 1
    why = (f"mean gap to retrain (points): MeGU {r.loc[focus, 'gap']:.2f}, "
           f"{'next' if ok else 'best'} baseline {best_other} {r.loc[best_other, 'gap']:.2f}")
    return Claim(name, paper, f"rank {rank} of {n}", VERDICTS[0] if ok else VERDICTS[1], why, where,
                 float(rank), 1.0, "rank", "", focus)


def _claim_cifar(df, focus="megu") -> Claim:
    name, paper = "… on CIFAR-10/20/100 with ResNet18 and ViT", "MeGU best on each"
    groups = sorted({(base_dataset(d), a) for d, a in zip(df.dataset, df.arch)})
    paper_groups = [(d, a) for d, a in groups if d in CIFAR and a in PAPER_ARCHS]
    ours = ", ".join(f"{d} / {a}" for d, a in groups)
    if not paper_groups:
        return Claim(name, paper, "—", VERDICTS[2],
                     f"these records are on {ours}: no CIFAR copy is on these machines (offline) and ResNet18 / ViT "
                     "training needs a GPU; the profiles full and full_vit run it where both exist", "", method=focus)
    results, missing = [], []
    for d, a in paper_groups:
        g = df[(df.dataset.map(base_dataset) == d) & (df.arch == a)]
        for s in scenarios_of(g):
            rank = int(_rank_among_baselines(g, s, focus).loc[focus, "rank"]) if focus in set(g.method) else None
            results.append((d, a, s, rank))
    for d in CIFAR:
        for a in ("resnet18", "vit"):
            if not any(gd == d and ga.startswith(a) for gd, ga in paper_groups):
                missing.append(f"{d} / {a}")
    ok = results and all(r == 1 for *_, r in results)
    tested = "; ".join(f"{d}/{a} {s}: rank {r}" for d, a, s, r in results)
    return Claim(name, paper, tested, VERDICTS[0] if ok else VERDICTS[1],
                 "MeGU's rank among the baselines by mean gap to retrain"
                 + (f"; not run here: {', '.join(missing)}" if missing else ""),
                 ", ".join(f"{d} / {a}" for d, a in paper_groups), method=focus)


def check_claims(df: pd.DataFrame) -> pd.DataFrame:
    """Each claim of the paper (MEGU_SPEC §6), our figure and a verdict, for every (data set,
    model) group of the records and every MeGU variant run (ours, ``megu``, and the paper's
    literal settings, ``megu_paper``, where present); verdicts are ``holds``, ``does not
    hold`` or ``not testable here``. "Baselines" never include MeGU's own variants."""
    claims = []
    focuses = [m for m in MEGU_VARIANTS if m in set(df.method)] or ["megu"]
    for focus in focuses:
        for (dataset, arch), g in df.groupby([df.dataset.map(base_dataset), "arch"], sort=True):
            where = f"{dataset} / {arch}"
            claims += [_claim_retain(g, where, focus), _claim_mia(g, "ssd", "mia_vs_ssd", where, focus),
                       _claim_mia(g, "unsir", "mia_vs_unsir", where, focus), _claim_time(g, where, focus)]
            claims += [_claim_scenario(g, s, where, focus) for s in SCENARIO_ORDER]
        claims.append(_claim_cifar(df, focus))
    out = pd.DataFrame([dataclasses.asdict(c) for c in claims])
    out["method"] = out.method.map(_label)
    return out


def claims_sentence(claims: pd.DataFrame) -> str:
    """How many claims hold, do not hold, cannot be tested (Markdown)."""
    counts = claims.verdict.value_counts()
    return (f"Of {len(claims)} checks, **{counts.get(VERDICTS[0], 0)} hold**, **{counts.get(VERDICTS[1], 0)} do not "
            f"hold** and **{counts.get(VERDICTS[2], 0)} cannot be tested here**.")


def style_claims(claims: pd.DataFrame):
    """The claims table for the book: claim, paper, ours, verdict (coloured), why."""
    cols = ["method", "data", "claim", "paper", "ours", "verdict", "why"]
    if claims.data.replace("", np.nan).nunique() <= 1:
        cols.remove("data")  # one data set and model: the page says which
    if claims.method.nunique() <= 1:
        cols.remove("method")
    show = claims[cols].rename(columns={"data": "data / model", "paper": "paper says", "ours": "we measure"})
    colours = {VERDICTS[0]: "background-color: #dff0df", VERDICTS[1]: "background-color: #f8dcdc",
               VERDICTS[2]: "background-color: #eeeeee"}
    return (show.style.apply(lambda c: [colours.get(v, "") for v in c], subset=["verdict"])
            .set_properties(subset=["verdict"], **{"white-space": "nowrap"})
            .set_properties(subset=["why"], **{"font-size": "85%"}).hide(axis="index").set_uuid("claims"))


def plot_claims(claims: pd.DataFrame):
    """The numeric claims: our figure (bar, green if the claim holds) against the paper's
    (dashed line), one panel per claim and a bar per data set / model."""
    num = claims[claims.unit.isin(["points", "% lower", "% saved"]) & claims.value.notna()]
    keys = list(dict.fromkeys(num.claim))
    if not keys:
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.text(0.5, 0.5, "no numeric claim could be tested on these records", ha="center", va="center")
        ax.axis("off")
        return fig
    ncols = min(2, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 2.9 * nrows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    many_data, many_methods = num.data.nunique() > 1, num.method.nunique() > 1
    for ax, k in zip(axes.flat, keys):
        sub = num[num.claim == k]
        colors = ["tab:green" if v == VERDICTS[0] else "tab:red" for v in sub.verdict]
        ax.bar(range(len(sub)), sub.value, color=colors, width=0.6)
        ax.axhline(sub.target.iloc[0], color="black", ls="--", lw=1.2, label="paper")
        labels = ["\n".join(([m] if many_methods else []) + ([d] if many_data or not many_methods else []))
                  for m, d in zip(sub.method, sub.data)]
        ax.set_xticks(range(len(sub)), labels, fontsize=8)
        ax.set_ylabel(sub.unit.iloc[0])
        ax.set_title(sub.short.iloc[0] or k, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_gap_ranking(df: pd.DataFrame, methods=None):
    """Mean gap to retrain per method (bars, ± std), one panel per scenario, MeGU in red."""
    scen = scenarios_of(df)
    fig, axes = plt.subplots(1, len(scen), figsize=(2.7 * len(scen) + 0.4, 3.4), squeeze=False)
    for ax, s in zip(axes[0], scen):
        r = gap_ranking(df, s, methods)
        colors = ["crimson" if m == "megu" else "salmon" if m == "megu_paper" else "tab:blue" for m in r.index]
        ax.barh(range(len(r)), r.gap, xerr=r["std"].fillna(0), color=colors, capsize=2)
        ax.set_yticks(range(len(r)), r.index, fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("gap to retrain (pts)", fontsize=9)
        ax.set_title(f"{s} forgetting", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def check_parameter(name: str, value, kinds, what: str) -> None:
    """Stop a notebook at its first cell with one line when a papermill parameter has the
    wrong type (``kinds``: a type or tuple of types; bools are never numbers)."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    check(ok, f"parameter {name} must be {what}, got {value!r}")
