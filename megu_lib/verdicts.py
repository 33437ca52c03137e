"""The verdict that closes each analysis chapter, computed from the page's own numbers.

Every chapter of the book that measures something ends in a :class:`Verdict`: a short label
and a sentence whose numbers are the ones the page shows above it. The rules are written
here, once, and tested; the chapters only pass in what they measured. A verdict is about our
setting (data, model, profile), not about the paper's.

- :func:`entanglement_verdict` (chapter *Entanglement*): do overlapping feature patterns go
  with confusion, at every pattern size tried, and do entangled classes vanish faster?
- :func:`judges_verdict` (chapter *Transition matrix*): whose nearest concepts agree with the
  classes the trained model itself confuses?
- :func:`perturbation_verdict` (chapter *Label perturbation*): does the perturbing label
  follow the judge's T or the model's own runner-up?
- :func:`fragment_align_verdict` (chapter *Fragment-Align*): what the noises do, and whether
  MeGU moves the shared channels of the retained classes less than UNSIR.
- :func:`experiments_verdict` (chapter *Experiments*): MeGU against the baselines, per
  scenario, with the claims chapter's rule.
- :func:`ablations_verdict` (chapter *Ablations*): which part of MeGU matters most.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import check

#: A rank correlation above this reads as "goes with" (ours; the paper gives no number).
RHO_THRESHOLD = 0.2
#: Two shares (percent) within this many points read as "about as often".
SHARE_MARGIN = 10.0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A chapter's verdict: ``label`` (a few words) and ``sentence`` (Markdown, with the page's numbers)."""

    label: str
    sentence: str

    def markdown(self) -> str:
        """The verdict as the book prints it, in one paragraph."""
        return f"**Verdict: {self.label}.** {self.sentence}"


def _finite(x) -> bool:
    return (x is not None and isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and math.isfinite(float(x)))


def _ci(low, high, fmt: str = ".2f") -> str:
    """`` [low, high]`` for a finite interval, else nothing (one seed has no interval)."""
    return f" [{low:{fmt}}, {high:{fmt}}]" if _finite(low) and _finite(high) else ""


def _list(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- chapter 01
def entanglement_verdict(rho: float, rho_by_q: Mapping, unique_by_q: Mapping, rho_left: float, *, q: float,
                         forget: str, threshold: float = RHO_THRESHOLD) -> Verdict:
    """The premise that shared features entangle concepts, as chapter *Entanglement* tests it.

    ``rho``: Spearman's ρ of pattern overlap and confusion at the page's ``q``; ``rho_by_q``:
    {q: ρ} for every pattern size tried; ``unique_by_q``: {q: number of unique channels of
    the class to forget}; ``rho_left``: ρ of entanglement and the accuracy left after plain
    fine-tuning (NaN when not measured). Supported when ρ exceeds ``threshold`` at every q and
    entangled classes lose more (``rho_left`` below ``-threshold``)."""
    check(len(rho_by_q) > 0, "entanglement_verdict needs rho_by_q for at least one pattern size q")
    qs = sorted(rho_by_q)
    rhos = [float(rho_by_q[k]) for k in qs]
    above = [k for k, r in zip(qs, rhos) if _finite(r) and r > threshold]
    span = f"ρ from {min(rhos):.2f} to {max(rhos):.2f} over q = {_list(f'{k:g}' for k in qs)}"
    if len(above) == len(qs):
        confusion = f"overlap goes with confusion at every pattern size tried ({span})"
    elif above:
        confusion = (f"overlap goes with confusion only for q = {_list(f'{k:g}' for k in above)} ({span}): "
                     f"the reading depends on the pattern size, which is our choice")
    else:
        confusion = f"overlap does not go with confusion at any pattern size tried ({span})"
    none_unique = [k for k in qs if int(unique_by_q.get(k, 1)) == 0]
    unique = (f" At q = {_list(f'{k:g}' for k in none_unique)}, {forget} has no unique channel at all, so "
              "its split into shared and unique features is itself a product of q." if none_unique else "")
    if _finite(rho_left):
        asym = rho_left < -threshold
        difficulty = (f" Under plain fine-tuning, the more entangled a class, the less of it survives "
                      f"(ρ = {rho_left:.2f}), as the paper's argument predicts." if asym else
                      f" Entanglement does not predict which classes plain fine-tuning erases (ρ = {rho_left:.2f}).")
    else:
        asym, difficulty = None, ""
    if len(above) == len(qs) and asym is not False:
        label = "consistent with the paper's premise"
    elif above or asym:
        label = "partly consistent with the paper's premise"
    else:
        label = "no support for the paper's premise"
    at_q = f"At q = {q:g}, ρ = {rho:.2f}; " if _finite(rho) else ""
    return Verdict(label, f"{at_q}{confusion}.{unique}{difficulty}")


# --------------------------------------------------------------------------- chapter 02
def _nearest_label(frame: pd.DataFrame, concept: str) -> str | None:
    """The label nearest to ``concept`` in a judge's T (a DataFrame, concepts as rows), its own
    label left out, first on ties as :meth:`megu_lib.concepts.TransitionMatrix.nearest`
    orders them; None when the row is tied throughout (the judge names no nearest concept)."""
    row = frame.loc[concept].drop(concept).astype(float)
    return None if row.max() - row.min() <= 1e-12 else str(row.idxmax())


def judge_plausibility(matrices: Mapping, confusion: pd.DataFrame, top: int = 2) -> pd.DataFrame:
    """Per judge: the share of classes (percent) whose nearest concept under the judge's T is
    among the ``top`` classes the trained model confuses it with most (``confusion``: a K x K
    DataFrame of rates, as :func:`megu_lib.entanglement.confusion_rates` gives), the share
    chance would give, and whether the judge ranks at all (a judge that ties every row does
    not). ``matrices``: {judge: K x K DataFrame of T, concepts as rows}."""
    check(len(matrices) > 0, "judge_plausibility needs at least one judge's matrix")
    classes = list(confusion.index)
    k = len(classes)
    chance = 100.0 * min(top, k - 1) / max(1, k - 1)
    rows = []
    for judge, frame in matrices.items():
        frame = frame.loc[classes, classes].astype(float)
        hits, ranked = [], False
        for c in classes:
            near = _nearest_label(frame, c)
            if near is None:
                continue  # a tied row names no nearest concept
            ranked = True
            conf = confusion.loc[c].drop(c).astype(float)
            if conf.isna().all() or conf.max() <= 0:
                continue
            hits.append(near in set(conf.nlargest(top).index))
        rows.append({"judge": judge, "ranks": ranked, "classes": len(hits),
                     "agrees (%)": 100.0 * float(np.mean(hits)) if hits else float("nan"), "chance (%)": chance})
    return pd.DataFrame(rows).set_index("judge")


def judges_verdict(matrices: Mapping, confusion: pd.DataFrame, forget: str, *, used: str, top: int = 2) -> Verdict:
    """Which judge's nearest concepts are plausible, measured against the classes the trained
    model itself confuses (:func:`judge_plausibility`), and what each judge names as the
    forgotten class's nearest concept; ``used``: the judge MeGU's experiments use."""
    table = judge_plausibility(matrices, confusion, top)
    chance = float(table["chance (%)"].iloc[0])
    ranked = table[table.ranks & table["agrees (%)"].notna()]
    check(forget in confusion.index, f"class {forget!r} is not among the confusion matrix's classes")
    nearest = {j: _nearest_label(f, forget) or "(a tie)" for j, f in matrices.items() if j in ranked.index}
    if not len(ranked):
        return Verdict("no judge ranks the classes", "Every judge tied every row of T: none names a nearest concept.")
    best = ranked["agrees (%)"].idxmax()
    parts = [f"the {j} judge's nearest concept is among the {top} classes the model confuses most for "
             f"{ranked.loc[j, 'agrees (%)']:.0f} % of the classes" for j in ranked.index]
    weak = [j for j in ranked.index if ranked.loc[j, "agrees (%)"] <= chance + SHARE_MARGIN]
    names = "; ".join(f"{j} → {n}" for j, n in nearest.items())
    sentence = (f"Against what the trained model confuses (chance: {chance:.0f} %), {'; '.join(parts)}. "
                f"For {forget} the judges name: {names}.")
    if weak:
        sentence += (f" The {_list(weak)} judge{'s are' if len(weak) > 1 else ' is'} no better than chance here: "
                     "its neighbours are not the ones the model's features share.")
    if used in ranked.index:
        sentence += (f" MeGU's experiments use the {used} judge"
                     + (" — the most plausible one here." if used == best else f"; the {best} judge agrees more."))
    return Verdict(f"the {best} judge's neighbours are the most plausible", sentence)


# --------------------------------------------------------------------------- chapter 03
def perturbation_verdict(agreement: pd.DataFrame, rule: str = "product") -> Verdict:
    """Whether ``rule``'s perturbing labels follow the judge's T (the ``T`` rule) or the
    model's own runner-up (the ``prediction`` rule), from :func:`megu_lib.perturb.rule_agreement`
    (percent of forget samples sent to the same label)."""
    for name in (rule, "T", "prediction"):
        check(name in agreement.index, f"perturbation_verdict needs the {name!r} labelling in the agreement table")
    with_t, with_pred = float(agreement.loc[rule, "T"]), float(agreement.loc[rule, "prediction"])
    numbers = (f"The {rule} rule gives the same perturbing label as T alone for {with_t:.0f} % of the forget "
               f"samples and as the model's own runner-up for {with_pred:.0f} %.")
    if with_pred > with_t + SHARE_MARGIN:
        return Verdict("the model's prediction decides more than the judge", numbers +
                       " The semantic guidance the paper credits to the judge is, here, mostly the model's own "
                       "second choice: the `prediction` rule (MeGU without T) would relabel most samples alike.")
    if with_t > with_pred + SHARE_MARGIN:
        return Verdict("the judge decides more than the model's prediction", numbers +
                       " The judge's T, not the model's runner-up, sets most perturbing labels, as the paper intends.")
    return Verdict("the judge and the model's prediction weigh about equally", numbers)


# --------------------------------------------------------------------------- chapter 04
def fragment_align_verdict(effect: pd.DataFrame, changes: Mapping, names, forget: str) -> Verdict:
    """What MeGU's noises do to the frozen model and whether MeGU spares the shared features.

    ``effect``: :func:`megu_lib.noise.noise_effect`'s table indexed by input (``clean x``,
    ``x + N_pos[y_p]``, ``x + N_neg[y]``, ``x + both``); ``changes``: {method: {"shared_retained":
    percent change of the shared channels' activation on retained classes, ...}} for ``MeGU``
    and ``UNSIR``; ``names``: the class names (``top_label`` indexes them)."""
    for row in ("clean x", "x + N_pos[y_p]", "x + N_neg[y]"):
        check(row in effect.index, f"fragment_align_verdict needs the {row!r} row of noise_effect")
    clean, pos, neg = effect.loc["clean x"], effect.loc["x + N_pos[y_p]"], effect.loc["x + N_neg[y]"]
    raises = float(pos.pred_yp) > float(clean.pred_yp) + 1.0
    parts = [f"The positive noise {'raises' if raises else 'does not raise'} the share of forget images read as "
             f"their perturbing label ({float(clean.pred_yp):.0f} % → {float(pos.pred_yp):.0f} %)."]
    target = names[int(neg.top_label)]
    if float(neg.top_share) >= 90.0:
        parts.append(f"The negative noise does not just push images away from {forget}: it sends "
                     f"{float(neg.top_share):.0f} % of them to one class, {target}.")
    else:
        parts.append(f"The negative noise lowers the share read as {forget} to {float(neg.acc_y):.0f} % "
                     f"(its most common label: {target}, {float(neg.top_share):.0f} %).")
    label = "noises described"
    m = (changes.get("MeGU") or {}).get("shared_retained", float("nan"))
    u = (changes.get("UNSIR") or {}).get("shared_retained", float("nan"))
    if _finite(m) and _finite(u):
        if abs(m) > abs(u) + 5.0:
            label = "MeGU over-unlearns more than UNSIR here"
            parts.append(f"On the retained classes, MeGU changes the shared channels' activation by {m:+.0f} % "
                         f"against UNSIR's {u:+.0f} %: by this chapter's criterion MeGU pulls more of the shared "
                         "features away from the classes that keep them — the opposite of the paper's argument.")
        elif abs(u) > abs(m) + 5.0:
            label = "MeGU spares the shared features better than UNSIR"
            parts.append(f"On the retained classes, MeGU changes the shared channels' activation by {m:+.0f} % "
                         f"against UNSIR's {u:+.0f} %: it leaves more of the shared features to the classes that "
                         "keep them, as the paper argues.")
        else:
            label = "MeGU and UNSIR move the shared features alike"
            parts.append(f"On the retained classes, the shared channels' activation changes by {m:+.0f} % under "
                         f"MeGU and {u:+.0f} % under UNSIR: no difference this measurement can show.")
    else:
        parts.append("The forgotten class's pattern has no shared channel here, so over-unlearning cannot be "
                     "read off the shared channels.")
    return Verdict(label, " ".join(parts) + " (One seed and one class: a direction, not a measurement.)")


# --------------------------------------------------------------------------- chapter 05
def experiments_verdict(df: pd.DataFrame, focus: str = "megu") -> Verdict:
    """MeGU against the baselines, scenario by scenario, with the rule of the claims chapter
    (:func:`megu_lib.claims.scenario_claim`: rank by mean gap over seeds, a paired bootstrap
    interval of the difference to the closest baseline, "not meaningful" where doing nothing
    is as close to retrain as the best method)."""
    from .claims import FAILS, HOLDS, INCONCLUSIVE, MEANINGLESS, scenario_claim
    from .tables import scenarios_of
    claims = [scenario_claim(df, s, "", focus) for s in scenarios_of(df)]
    claims = [c for c in claims if c.verdict in (HOLDS, FAILS, INCONCLUSIVE, MEANINGLESS)]
    check(claims, f"experiments_verdict: no scenario with {focus} and baselines in the records")
    parts = [f"*{c.claim.removeprefix('beats the baselines in ')}*: {c.verdict} — {c.ours}" for c in claims]
    verdicts = {c.verdict for c in claims}
    tested = [c for c in claims if c.verdict != MEANINGLESS]
    if tested and all(c.verdict == HOLDS for c in tested):
        label = "MeGU beats the baselines where the benchmark can tell"
    elif tested and all(c.verdict == FAILS for c in tested):
        label = "MeGU does not beat the baselines"
    elif FAILS in verdicts and HOLDS not in verdicts:
        label = "MeGU does not beat the baselines where the benchmark can tell them apart"
    elif HOLDS in verdicts and FAILS not in verdicts:
        label = "MeGU leads in some scenarios, no baseline beats it"
    elif not tested:
        label = "no scenario can tell the methods apart"
    else:
        label = "mixed: MeGU wins some scenarios and loses others"
    return Verdict(label, "; ".join(parts) + ".")


# --------------------------------------------------------------------------- chapter 06
def ablations_verdict(effects: pd.DataFrame) -> Verdict:
    """Which part of MeGU matters most, from :func:`megu_lib.tables.ablation_effects` (the
    change in gap when a part is removed, against full MeGU on the same runs; positive: the
    part helps), averaged over scenarios, and where each scenario's largest effect lies."""
    check(len(effects) > 0, "ablations_verdict needs ablation effects")
    mean = effects.groupby("component").delta_gap.mean().sort_values(ascending=False)
    top = mean.index[0]
    helping = [c for c, v in mean.items() if v > 0]
    hurting = [c for c, v in mean.items() if v < 0]
    per = effects.loc[effects.groupby("scenario").delta_gap.idxmax()]
    per_text = "; ".join(f"{r.scenario}: {r.component} ({r.delta_gap:+.2f})" for r in per.itertuples())
    sentence = (f"Averaged over the scenarios, removing **{top}** changes the gap most ({mean[top]:+.2f} points). "
                f"Largest effect per scenario — {per_text}. ")
    if hurting:
        sentence += (f"Variants that end *closer* to retrain than full MeGU: {_list(hurting)} — what they leave "
                     "out does not earn its keep here.")
    if mean[top] <= 0:
        return Verdict("no single part of MeGU helps here", sentence)
    return Verdict(f"{top} matters most", sentence + f" {len(helping)} of {len(mean)} variants end further from "
                   "retrain than full MeGU.")


# --------------------------------------------------------------------------- the book's first page
def at_a_glance(df: pd.DataFrame, claims: pd.DataFrame, *, profile: str, description: str = "",
                focus: str = "megu", better_search: str | None = None) -> str:
    """The results at a glance, for the book's first page (Markdown): the setting and its scale,
    the original model's accuracy, where MeGU stands with its interval and its paired difference
    to the best baseline, the scenarios that cannot discriminate, the claims tally and the
    limits — from the records ``df`` (with gaps) and the checked ``claims``
    (:func:`megu_lib.claims.check_claims`) of ``profile``; ``better_search``: the profile whose
    runs put each method at the better of its two searches in ``df``
    (:func:`megu_lib.experiments.verdict_records`), named in the setting."""
    from .claims import claims_sentence
    from .stats import mean_ci, standing
    from .tables import main_methods
    check(len(df) > 0, f"no records of profile {profile!r} to summarise")
    seeds = sorted(set(df.seed))
    requests = {s: sorted(set(df[df.scenario == s].request)) for s in ("class", "subclass", "random")
                if s in set(df.scenario)}
    scale = "; ".join(f"{s}: {', '.join(r.split(':', 1)[1] for r in reqs)}" for s, reqs in requests.items())
    runs = int((df.method != "original").sum())  # unlearning runs; the original is the starting point
    description = description.strip().rstrip(".")
    lines = [f"- **Setting** (profile `{profile}`{': ' + description if description else ''}): "
             f"{_list(sorted(set(df.dataset)))}, {_list(sorted(set(df.arch)))}; {len(seeds)} seed"
             f"{'s' if len(seeds) != 1 else ''}, forget requests — {scale}; {runs} runs"
             + (f"; every method at the better of its two tuning searches (the repeat's runs: profile "
                f"`{better_search}`)" if better_search else "") + "."]
    orig = df[df.method == "original"].groupby("seed").test_acc.mean()
    if len(orig):
        m, lo, hi = mean_ci(orig)
        lines.append(f"- **Original model**: {m:.1f} % test accuracy{_ci(lo, hi, '.1f')}"
                     + (" (mean and 95 % interval over seeds)." if len(orig) > 1 else " (one seed)."))
    table = standing(df, main_methods(df), focus=focus)
    overall = table.loc["all"]
    lines.append(f"- **Closest to retrain** over all scenarios (each weighted equally): **{overall.closest}**, "
                 f"mean gap {overall.closest_gap:.2f} points{_ci(overall.closest_low, overall.closest_high)}"
                 + (f"; doing nothing (the original) {overall.original_gap:.2f}"
                    f"{_ci(overall.original_low, overall.original_high)}" if "original_gap" in table and
                    math.isfinite(overall.get("original_gap", float("nan"))) else "") + ".")
    if math.isfinite(overall.get("focus_rank", float("nan"))):
        line = (f"- **MeGU** ranks **{int(overall.focus_rank)} of {int(overall.n_methods)}**, mean gap "
                f"{overall.focus_gap:.2f}{_ci(overall.focus_low, overall.focus_high)}")
        if isinstance(overall.get("best_baseline"), str) and math.isfinite(overall.get("diff_low", float("nan"))):
            line += (f"; against the best baseline, {overall.best_baseline}, its gap differs by "
                     f"{overall['diff']:+.2f} points [{overall.diff_low:+.2f}, {overall.diff_high:+.2f}] "
                     "(paired bootstrap over seeds; negative: MeGU closer)")
        lines.append(line + ".")
    blind = [s for s, v in table.discriminates.items() if s != "all" and v is False]
    if blind:
        lines.append(f"- **Cannot discriminate**: in {_list(blind)} forgetting doing nothing is as close to retrain "
                     "as the best method; rankings there say nothing.")
    lines.append(f"- **The paper's claims**: {claims_sentence(claims)}")
    lines.append("- **Limits**: not the paper's data or architectures (CIFAR, ResNet18 and ViT need data and a GPU "
                 "these machines lack); the concept judge runs offline instead of the paper's multimodal LLM; "
                 "the population-level MIA is weak on these models (see *Experiments*).")
    return "\n".join(lines)


#: An original whose U-LiRA AUC interval does not clear this (percent) is not found by the
#: attack (forgetting leaves no per-example trace of membership on those models; ours).
ULIRA_POWER_FLOOR = 55.0


def privacy_verdict(table: pd.DataFrame, differences: list, focus: str = "megu") -> Verdict:
    """The per-example privacy chapter's verdict: where ``focus`` sits against the two anchors
    (the original and a second retraining) under U-LiRA, and the paper's privacy claims
    (MeGU's MIA lower than SSD's and UNSIR's) read on the paired AUC differences
    ``differences`` (dicts from :func:`megu_lib.shadows.auc_difference`, ``a`` = ``focus``):
    *holds* when the interval lies below 0, *does not hold* above 0, else *inconclusive*;
    *not meaningful here* against a method that left the models as they were (``table``'s
    ``unchanged``). The label names each reading ("the paper's privacy claim holds against
    unsir, ..."). When the attack cannot find the untouched original (its AUC interval does
    not clear :data:`ULIRA_POWER_FLOOR`), the sentence says what that means: doing nothing
    already passes, and an AUC above 50 is a trace the method leaves itself."""
    check({"original", "retrain", focus} <= set(table.index),
          f"privacy_verdict needs rows for original, retrain and {focus}, got {', '.join(table.index)}")
    o, r, f = (table.loc[m] for m in ("original", "retrain", focus))
    ends = (f"original {o.auc:.1f} [{o.auc_lo:.1f}, {o.auc_hi:.1f}], a second retraining {r.auc:.1f} "
            f"[{r.auc_lo:.1f}, {r.auc_hi:.1f}]")
    score = f"`{focus}` scores an AUC of {f.auc:.1f} [{f.auc_lo:.1f}, {f.auc_hi:.1f}]"
    if o.auc_lo > ULIRA_POWER_FLOOR:
        span = o.auc - r.auc
        closed = 100 * (o.auc - f.auc) / span if span > 0 else float("nan")
        if not _finite(closed):
            place = ""
        elif closed <= 0:
            place = ": it is no closer to retraining than the untouched original"
        elif closed >= 100:
            place = ": it sits as close to retraining as a second retraining does"
        else:
            place = f": it closes {closed:.0f} % of the distance from the original to retraining"
        where = f"{score} against the two ends of the scale ({ends}){place}"
    else:
        where = (f"U-LiRA cannot tell the untouched original from retraining ({ends}; AUC in %, 50 is chance): on "
                 "these models the forgotten examples leave no per-example trace of their membership, so doing "
                 f"nothing already passes this test and a method scores above 50 only by a trace of its own. {score}"
                 + (" — a trace of its own" if f.auc_lo > 50 else ""))
    reads, parts = [], []
    did_nothing = set(table.index[table["unchanged"].astype(bool)]) if "unchanged" in table else set()
    for d in differences:
        if d["b"] in did_nothing:
            reads.append(f"against `{d['b']}` *not meaningful here* (it left every model as it was)")
            parts.append(f"is not meaningful against {d['b']}")
            continue
        word = "holds" if d["hi"] < 0 else "does not hold" if d["lo"] > 0 else "inconclusive"
        parts.append(f"{'is ' if word == 'inconclusive' else ''}{word} against {d['b']}")
        reads.append(f"against `{d['b']}` the difference is {d['diff']:+.1f} points [{d['lo']:+.1f}, {d['hi']:+.1f}]"
                     f" (*{word}*)")
    ranked = table.drop(index=["original", "retrain", *did_nothing], errors="ignore").sort_values("auc")
    tail = (f" The least exposed method that changed the model is `{ranked.index[0]}` ({ranked.auc.iloc[0]:.1f})."
            if len(ranked) else "")
    if not reads:
        return Verdict("no comparison", where + "." + tail)
    return Verdict("the paper's privacy claim " + ", ".join(parts),
                   f"{where}. Read as the paper's claim that MeGU is harder to attack, {_list(reads)}.{tail}")


def privacy_glance(table: pd.DataFrame, verdict: Verdict, *, n_shadows: int, focus: str = "megu",
                   also=()) -> str:
    """The per-example privacy line of the results at a glance (Markdown bullet): U-LiRA's AUC
    of ``focus`` and of the two anchors, and the chapter's verdict label; then the same for
    each further setting in ``also`` (tuples ``(what the setting is, its table, its verdict)``,
    e.g. shadows trained until they memorise)."""
    def reading(t: pd.DataFrame, v: Verdict) -> str:
        check({"original", "retrain", focus} <= set(t.index),
              f"privacy_glance needs rows for original, retrain and {focus}")
        cell = lambda m: f"{t.loc[m, 'auc']:.1f}{_ci(t.loc[m, 'auc_lo'], t.loc[m, 'auc_hi'], '.1f')}"  # noqa: E731
        return (f"MeGU {cell(focus)}, doing nothing {cell('original')}, a second retraining {cell('retrain')} — "
                f"{v.label}")
    more = "".join(f" With {what}: {reading(t, v)}." for what, t, v in also)
    return (f"- **Per-example privacy** (U-LiRA on {n_shadows} shadow models, random forgetting; AUC %, 50: "
            f"unlearned cannot be told from retrained): {reading(table, verdict)}.{more}")
