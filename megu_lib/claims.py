"""The paper's claims, our figure for each, and a verdict.

:func:`check_claims` takes the runner's records (as :mod:`megu_lib.tables` does) and
returns one row per claim and (data set, model) group: what the paper says (its figures in
:data:`PAPER`, from arXiv 2602.17088; the book's page *The method, and our reading of
it* lists them), what we measure, the verdict (:data:`VERDICTS`) and why. The plot is
:func:`megu_lib.plotting.plot_claims`.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .errors import check
from .stats import discriminates, mean_ci, paired_bootstrap, ranking
from .tables import (
    MEGU_LABELS,
    MEGU_VARIANTS,
    REFERENCES,
    SCENARIO_ORDER,
    did_nothing,
    gap_ranking,
    main_methods,
    original_chance_note,
    paired_values,
    scenarios_of,
)

# the paper's figures (arXiv 2602.17088: class-wise retain-accuracy gap, MIA reductions, time saved)
#: The paper's figures, as it reports them (retain gap in points, the rest in percent).
PAPER = {"retain_gap": 0.35, "mia_vs_ssd": 49.0, "mia_vs_unsir": 9.8, "time_saving": 59.0}

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
UNTESTABLE, MEANINGLESS = "not testable here", "not meaningful here"
#: The verdicts a claim can get. *inconclusive*: the 95 % interval over seeds spans the
#: paper's threshold; *not meaningful here*: the comparison cannot say anything on these
#: records (the original model sits at chance, the compared method did nothing, the attack
#: has no power, doing nothing is as good as the best method).
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE, MEANINGLESS)
#: An attack whose AUC on members vs non-members (percent, 50 = chance) is at most this tells nothing.
POWERLESS_AUC = 55.0

CIFAR = ("cifar10", "cifar20", "cifar100")

PAPER_ARCHS = ("resnet18", "vit", "vit_b16")


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
    low: float = float("nan")
    high: float = float("nan")

def base_dataset(dataset: str) -> str:
    """The data set's name without its subset mark: ``fashion_mnist[2000/500]`` -> ``fashion_mnist``."""
    return str(dataset).split("[")[0]

def record_groups(df: pd.DataFrame) -> list[str]:
    """The (data set / model) groups of the records, e.g. ``["fashion_mnist / small_cnn"]``."""
    return sorted({f"{base_dataset(d)} / {a}" for d, a in zip(df.dataset, df.arch)})

def _class_records(df):
    sub = df[df.scenario == "class"]
    return sub if len(sub) else None

def _label(focus: str) -> str:
    return MEGU_LABELS.get(focus, focus)

def _ci_text(m: float, lo: float, hi: float, fmt: str, unit: str, seeds: int) -> str:
    """``m [lo, hi] unit (n seeds)``, or ``m unit (1 seed: no interval)``."""
    if not np.isfinite(lo):
        return f"{m:{fmt}}{unit} (1 seed: no interval)"
    return f"{m:{fmt}}{unit} [{lo:{fmt}}, {hi:{fmt}}] (95 % interval, {seeds} seeds)"

def threshold_verdict(mean: float, low: float, high: float, target: float, want: str) -> str:
    """The verdict of "value ``want`` target" (``want``: ``"<="``, ``">="`` or ``">"``) from a
    mean and its interval: *holds* when the whole interval is on the claimed side,
    *does not hold* when it is wholly on the other, *inconclusive* when it spans the
    threshold. Without an interval (one seed) the mean decides."""
    check(want in ("<=", ">=", ">"), f"want must be '<=', '>=' or '>', got {want!r}")
    if not np.isfinite(low):
        low = high = mean
    if want == "<=":
        return HOLDS if high <= target else FAILS if low > target else INCONCLUSIVE
    ok = (lambda v: v >= target) if want == ">=" else (lambda v: v > target)
    return HOLDS if ok(low) else FAILS if not ok(high) else INCONCLUSIVE

def _per_seed(values: pd.Series) -> pd.Series:
    """Mean over each seed's requests (the index is (request, seed))."""
    return values.groupby(level="seed").mean()

def _claim_retain(df, where, focus="megu") -> Claim:
    name = "keeps retain accuracy within 0.35 % of retrain's in class-wise forgetting"
    paper = "≤ 0.35 points"
    sub = _class_records(df)
    if sub is None or focus not in set(sub.method):
        return Claim(name, paper, "—", UNTESTABLE, "no class-forgetting runs of MeGU on this profile", where,
                     method=focus)
    m, r = paired_values(sub, focus, "retrain", "retain_acc")
    if not len(m):
        return Claim(name, paper, "—", UNTESTABLE, "no retrain runs to compare with", where, method=focus)
    per_seed = _per_seed((m - r).abs())
    mean, lo, hi = mean_ci(per_seed)
    verdict = threshold_verdict(mean, lo, hi, PAPER["retain_gap"], "<=")
    return Claim(name, paper, _ci_text(mean, lo, hi, ".2f", " points", len(per_seed)), verdict,
                 f"mean |retain acc. MeGU − retrain| over the class requests, per seed (MeGU {m.mean():.2f} %, "
                 f"retrain {r.mean():.2f} %); {_interval_reading(verdict, '0.35 points')}",
                 where, mean, PAPER["retain_gap"], "points", "retain acc. gap to retrain", focus, lo, hi)

def _interval_reading(verdict: str, threshold: str) -> str:
    return {HOLDS: f"the whole interval is on the claimed side of {threshold}",
            FAILS: f"the whole interval is on the other side of {threshold}",
            INCONCLUSIVE: f"the interval spans {threshold}: the records cannot say"}[verdict]

def _claim_mia(df, other: str, key: str, where, focus="megu") -> Claim:
    target = PAPER[key]
    name = f"lowers the membership-inference risk by up to {target:g} % relative to {other.upper()}"
    paper = f"up to −{target:g} %"
    sub = _class_records(df)
    sub = sub if sub is not None else df
    have = set(sub.method)
    if focus not in have or other not in have:
        missing = [m for m in (focus, other) if m not in have]
        return Claim(name, paper, "—", UNTESTABLE, f"{', '.join(missing)} not run on this profile", where,
                     method=focus)
    m, o = paired_values(sub, focus, other, "mia")
    per_m, per_o = _per_seed(m), _per_seed(o)
    if not len(m) or (per_o <= 0).any():
        return Claim(name, paper, "—", UNTESTABLE,
                     f"{other.upper()}'s MIA is 0 on these runs: no relative reduction is defined", where,
                     method=focus)
    reduction = 100 * (1 - per_m / per_o)
    mean, lo, hi = mean_ci(reduction)
    ref = sub[sub.method == "retrain"].mia.mean() if "retrain" in have else float("nan")
    ours = _ci_text(mean, lo, hi, ".1f", " % lower", len(reduction))
    why = (f"MeGU {m.mean():.1f} % vs {other.upper()} {o.mean():.1f} % of forget samples called members "
           f"(retrain: {ref:.1f} %; lower is not always better: the target is retrain's figure); ")
    if did_nothing(sub, other):
        return Claim(name, paper, ours, MEANINGLESS,
                     why + f"{other.upper()} left the model as it was on every run: the comparison is with "
                     "an untouched model", where, mean, target, "% lower", f"MIA reduction vs {other.upper()}",
                     focus, lo, hi)
    if "mia_auc" in sub:
        auc = float(sub[sub.method.isin([focus, other])].mia_auc.mean())
        if np.isfinite(auc) and auc <= POWERLESS_AUC:
            return Claim(name, paper, ours, MEANINGLESS,
                         why + f"the attack tells members from non-members no better than chance on these models "
                         f"(AUC {auc:.1f} ≤ {POWERLESS_AUC:g}, 50 is chance): its figures say nothing", where,
                         mean, target, "% lower", f"MIA reduction vs {other.upper()}", focus, lo, hi)
    verdict = threshold_verdict(mean, lo, hi, target, ">=")
    return Claim(name, paper, ours, verdict, why + _interval_reading(verdict, f"{target:g} %"), where,
                 mean, target, "% lower", f"MIA reduction vs {other.upper()}", focus, lo, hi)

def _claim_time(df, where, focus="megu") -> Claim:
    target = PAPER["time_saving"]
    name, paper = "takes more than 59 % less time than retraining", f"> {target:g} % saved"
    m, r = paired_values(df, focus, "retrain", "seconds") if {focus, "retrain"} <= set(df.method) else ([], [])
    if not len(m):
        return Claim(name, paper, "—", UNTESTABLE, "MeGU or retrain not run on this profile", where, method=focus)
    saving = 100 * (1 - m.groupby(level="seed").sum() / r.groupby(level="seed").sum())
    mean, lo, hi = mean_ci(saving)
    verdict = threshold_verdict(mean, lo, hi, target, ">")
    return Claim(name, paper, _ci_text(mean, lo, hi, ".1f", " % saved", len(saving)), verdict,
                 f"MeGU {m.mean():.1f} s vs retrain {r.mean():.1f} s per request, same device and run, all scenarios "
                 f"(the one-off, cached judge run is not counted, as in the paper); "
                 f"{_interval_reading(verdict, f'{target:g} %')}",
                 where, mean, target, "% saved", "time saved vs retrain", focus, lo, hi)

def baselines_of(df: pd.DataFrame) -> list[str]:
    """The baselines in the records: every method but the references and MeGU's variants."""
    return [m for m in main_methods(df) if m not in REFERENCES and not m.startswith("megu")]

def _rank_among_baselines(df, scenario: str, focus: str):
    methods = [*baselines_of(df), focus]
    return gap_ranking(df, scenario, methods)

def scenario_claim(df, scenario: str, where, focus="megu") -> Claim:
    """The claim "MeGU beats the baselines in ``scenario`` forgetting" on the records ``df``:
    MeGU's rank among the baselines by mean gap over seeds, and a paired bootstrap interval of
    its difference to the closest baseline (the rival); *not meaningful* where doing nothing is
    as close to retrain as the best method. ``where``: the records' group label."""
    name, paper = f"beats the baselines in {scenario} forgetting", "MeGU best"
    sub = df[df.scenario == scenario]
    if not len(sub):
        return Claim(name, paper, "—", UNTESTABLE, f"the profile has no {scenario} requests", where, method=focus)
    if focus not in set(sub.method) or not baselines_of(sub):
        return Claim(name, paper, "—", UNTESTABLE, "MeGU or the baselines not run on this profile", where,
                     method=focus)
    baselines = baselines_of(sub)
    r = ranking(sub, None, [*baselines, focus, *(["original"] if "original" in set(sub.method) else [])])
    contenders = r.drop(index=[m for m in ("original",) if m in r.index])
    rank, n = list(contenders.index).index(focus) + 1, len(contenders)
    rival = next(m for m in contenders.index if m != focus)  # the best baseline (next best when MeGU leads)
    d = paired_bootstrap(sub, focus, rival)
    diff = (f"MeGU − {rival}: {d['diff']:+.2f} points"
            + (f" [{d['low']:+.2f}, {d['high']:+.2f}]" if np.isfinite(d["low"]) else " (1 seed: no interval)"))
    ours = f"rank {rank} of {n}; {diff}"
    gaps = f"mean gap to retrain over seeds: MeGU {r.loc[focus, 'gap']:.2f}, {rival} {r.loc[rival, 'gap']:.2f}"
    if discriminates(r) is False:
        return Claim(name, paper, ours, MEANINGLESS,
                     f"doing nothing (the original, gap {r.loc['original', 'gap']:.2f}) is as close to retrain as "
                     f"the best method: this scenario cannot discriminate here; {gaps}", where, float(rank), 1.0,
                     "rank", "", focus, d["low"], d["high"])
    lo, hi = (d["low"], d["high"]) if np.isfinite(d["low"]) else (d["diff"], d["diff"])
    if rank == 1:
        verdict = HOLDS if hi < 0 else INCONCLUSIVE
        why = f"MeGU is closest; {'its lead over' if verdict == HOLDS else 'the interval cannot tell it from'} {rival}"
    else:
        verdict = FAILS if lo > 0 else INCONCLUSIVE
        why = (f"{rival} is closer to retrain" + ("" if verdict == FAILS else
                                                     ", but the interval of the difference includes 0"))
    return Claim(name, paper, ours, verdict, f"{why} ({gaps})", where, float(rank), 1.0, "rank", "", focus,
                 d["low"], d["high"])

def _claim_cifar(df, focus="megu") -> Claim:
    name, paper = "… on CIFAR-10/20/100 with ResNet18 and ViT", "MeGU best on each"
    groups = sorted({(base_dataset(d), a) for d, a in zip(df.dataset, df.arch)})
    paper_groups = [(d, a) for d, a in groups if d in CIFAR and a in PAPER_ARCHS]
    ours = ", ".join(f"{d} / {a}" for d, a in groups)
    if not paper_groups:
        return Claim(name, paper, "—", UNTESTABLE,
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
    return Claim(name, paper, tested, HOLDS if ok else FAILS,
                 "MeGU's rank among the baselines by mean gap to retrain"
                 + (f"; not run here: {', '.join(missing)}" if missing else ""),
                 ", ".join(f"{d} / {a}" for d, a in paper_groups), method=focus)

def check_claims(df: pd.DataFrame) -> pd.DataFrame:
    """Each claim of the paper (see :data:`PAPER`), our figure and a verdict, for every (data set,
    model) group of the records and every MeGU variant run (ours, ``megu``, and the paper's
    literal settings, ``megu_paper``, where present); verdicts are ``holds``, ``does not
    hold``, ``not testable here``, or ``not meaningful here`` for every claim of a group whose
    original model sits at chance. "Baselines" never include MeGU's own variants."""
    claims = []
    focuses = [m for m in MEGU_VARIANTS if m in set(df.method)] or ["megu"]
    for focus in focuses:
        for (dataset, arch), g in df.groupby([df.dataset.map(base_dataset), "arch"], sort=True):
            where = f"{dataset} / {arch}"
            group = [_claim_retain(g, where, focus), _claim_mia(g, "ssd", "mia_vs_ssd", where, focus),
                     _claim_mia(g, "unsir", "mia_vs_unsir", where, focus), _claim_time(g, where, focus)]
            group += [scenario_claim(g, s, where, focus) for s in SCENARIO_ORDER]
            warning = original_chance_note(g)
            if warning:  # an original at chance: no verdict means anything
                group = [dataclasses.replace(c, verdict=MEANINGLESS, why=warning) for c in group]
            claims += group
        claims.append(_claim_cifar(df, focus))
    out = pd.DataFrame([dataclasses.asdict(c) for c in claims])
    out["method"] = out.method.map(_label)
    return out

def claims_sentence(claims: pd.DataFrame) -> str:
    """How many claims hold, do not hold, cannot be tested, are not meaningful (Markdown)."""
    counts = claims.verdict.value_counts()
    def n(verdict, one, many):
        k = int(counts.get(verdict, 0))
        return f"**{k} {one if k == 1 else many}**"

    parts = [n(HOLDS, "holds", "hold"), n(FAILS, "does not hold", "do not hold")]
    if counts.get(INCONCLUSIVE, 0):
        parts.append(n(INCONCLUSIVE, "is inconclusive", "are inconclusive") + " (the interval spans the threshold)")
    if counts.get(MEANINGLESS, 0):
        parts.append(n(MEANINGLESS, "is not meaningful here", "are not meaningful here") + " (see *why*)")
    parts.append(n(UNTESTABLE, "cannot be tested here", "cannot be tested here"))
    text = f"Of {len(claims)} checks, " + ", ".join(parts[:-1]) + f" and {parts[-1]}."
    return text

def style_claims(claims: pd.DataFrame):
    """The claims table for the book: claim, paper, ours, verdict (coloured), why."""
    cols = ["method", "data", "claim", "paper", "ours", "verdict", "why"]
    if claims.data.replace("", np.nan).nunique() <= 1:
        cols.remove("data")  # one data set and model: the page says which
    if claims.method.nunique() <= 1:
        cols.remove("method")
    show = claims[cols].rename(columns={"data": "data / model", "paper": "paper says", "ours": "we measure"})
    colours = {HOLDS: "background-color: #dff0df", FAILS: "background-color: #f8dcdc",
               INCONCLUSIVE: "background-color: #e3ecf7", MEANINGLESS: "background-color: #fff3cd",
               UNTESTABLE: "background-color: #eeeeee"}
    return (show.style.apply(lambda c: [colours.get(v, "") for v in c], subset=["verdict"])
            .set_properties(**{"white-space": "normal"})  # cells wrap: the table fits the page's column
            .set_properties(subset=["verdict"], **{"white-space": "nowrap"})
            .set_properties(subset=["why"], **{"font-size": "85%"}).hide(axis="index").set_uuid("claims"))
