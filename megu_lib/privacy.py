"""Privacy measured per example: U-LiRA and the unlearning competition's forget-quality score.

Everything here works on numbers already read off trained models; nothing trains. The
runner trains the shadow models this module plans and hands back, per model and example,
one scalar: the logit-scaled confidence on the true label (:func:`logit_confidence`).

**The question.** After a method has "unlearned" an example, can an attacker who sees the
model tell it apart from a model retrained without that example? Averages over the forget
set hide the answer: some examples stay recognisable while others are forgotten. Both
measures below therefore look at each example on its own, over many models.

**The shadow models** (:func:`shadow_plan`). A pool of training examples; a fixed set of
*target* examples in it. Each shadow model trains on a random half of the pool (its
*members*) and forgets some of the targets among its members; from it come two models, the
method's *unlearned* model and a model *retrained* on the members minus that forget set.
Shadows come in complementary twins, so every target is forgotten in exactly half of the
shadows. Some twins *fit* the attack, the others are *held out* to measure it.

**U-LiRA** (Hayes et al. 2024, "Inexact Unlearning Needs More Careful Evaluations to Avoid a
False Sense of Privacy", arXiv 2403.01218, SaTML 2025), an unlearning version of the
likelihood-ratio attack LiRA (Carlini et al. 2022, "Membership Inference Attacks From First
Principles", arXiv 2112.03570, whose logit scaling of the confidence is used here). For each target,
fit one Gaussian to its confidence under the fitting shadows' unlearned models and one under
their retrained models (:func:`ulira_scores`); a held-out model's confidence on that target
is scored by the log of the ratio of the two densities (positive: looks unlearned). Pooled
over held-out (model, target) pairs, :func:`roc_summary` gives the attack's ROC: its AUC
(0.5: unlearned cannot be told from retrained; near 1: the method leaves the example
recognisable, as doing nothing does) and its TPR at a low FPR (1 %, 0.1 %), which says
whether *some* examples are exposed with confidence.

**Forget quality** (Triantafillou et al. 2024, "Are we making progress in unlearning?
Findings from the first NeurIPS unlearning competition", arXiv 2406.09073), the forgetting
part of the score that ranked the NeurIPS 2023 competition (:func:`forget_quality`): per
forget example, the two samples of its confidence (under unlearned models and under
retrained ones) are attacked with every rule of two families (a threshold, an interval);
each rule's false-positive and false-negative rates give a lower bound on the ε of
(ε, δ)-unlearning, the largest bound is that example's ε, and ε is turned into points (1
below 0.5, halved for each further 0.5, 0 past what the number of models can resolve); the
score is the mean of the points.
:func:`competition_score` multiplies it by the retained- and test-accuracy ratios, as the
competition's final score does. The constants are those of the competition's released
evaluation code (``google-deepmind/unlearning_evaluation``, ``metric.py`` and ``main.py``);
each is named below where it is used. The code here is ours.

**Data layout**, shared by U-LiRA and forget quality: arrays shaped ``(n_shadows,
n_targets)`` (rows: models, columns: examples) holding a confidence where that target was
forgotten in that shadow and NaN elsewhere (:meth:`ShadowPlan.layout` builds them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import MeguError, check

#: FPRs at which the attack's TPR is reported (issue 16); :func:`shadow_plan` sizes the plan for them.
DEFAULT_FPRS = (0.01, 0.001)
#: Fewest fitting shadows per target and side, our choice (a standard deviation from fewer
#: than four values is mostly noise; more shadows give better fits).
MIN_FIT_MODELS = 4
#: Floor on a fitted standard deviation, in logit units, ours (a method that returns the
#: same confidence on every model would otherwise give an infinite likelihood ratio).
MIN_STD = 0.01

# The competition's constants, from its released evaluation code (metric.py):
#: δ of (ε, δ)-unlearning (``DELTA``).
FQ_DELTA = 1e-5
#: ε given to an example whose samples are perfectly separated or degenerate (``EPSILON_CAP``).
FQ_EPSILON_CAP = 50.0
#: Thresholds per unit of confidence on the attacks' grids (``NUM_THRESHOLDS_PER_UNIT``).
FQ_THRESHOLDS_PER_UNIT = 100
#: How far the interval rule's edges are searched around the peakier sample (``buffer``).
FQ_INTERVAL_MARGIN = 2.0
#: Below this ratio of the two samples' ranges one sample counts as a spike, and ε is capped.
FQ_SPIKE_RATIO = 0.01
#: Width of the ε buckets that points are given for (``bucket_size``).
FQ_BUCKET = 0.5


def _float_array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise MeguError(f"{name} must be an array of numbers, got {type(x).__name__}") from None


def logit_confidence(logits, labels) -> np.ndarray:
    """The logit-scaled confidence on the true label, φ = log p_y − log(1 − p_y), per row.

    ``logits``: ``(n, n_classes)`` (numpy or torch), ``labels``: ``(n,)`` integers. Returns a
    float64 array ``(n,)``. With p the softmax of the logits z, log p_y = z_y − lse(z) and
    log(1 − p_y) = lse_{j≠y}(z_j) − lse(z), so φ = z_y − lse_{j≠y}(z_j) exactly: one
    log-sum-exp over the other classes, with its maximum taken out, and no probability is
    ever formed. A model confident at logit 1000 gives φ ≈ 1000, not inf or NaN (the form
    log(p) − log(1 − p) loses everything once p rounds to 1).
    """
    z = _float_array(logits, "logits")
    check(z.ndim == 2 and z.shape[1] >= 2,
          f"logits must be (examples, classes) with at least 2 classes, got shape {z.shape}")
    check(np.isfinite(z).all(), "logits contain NaN or inf: the model's outputs are broken, check it first")
    y = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
    check(y.shape == (z.shape[0],), f"labels must be ({z.shape[0]},) to match the logits, got shape {y.shape}")
    check(y.size == 0 or np.issubdtype(y.dtype, np.integer), f"labels must be integers, got dtype {y.dtype}")
    check(y.size == 0 or (y.min() >= 0 and y.max() < z.shape[1]),
          f"labels must lie in [0, {z.shape[1] - 1}] (one per class of the logits)")
    rows = np.arange(len(y))
    others = z.copy()
    others[rows, y] = -np.inf
    top = others.max(axis=1)
    lse_others = top + np.log(np.exp(others - top[:, None]).sum(axis=1))
    return z[rows, y] - lse_others


@dataclass(frozen=True, eq=False)
class ShadowPlan:
    """Which pool examples each shadow model trains on and which targets it forgets.

    ``members``: bool ``(n_shadows, pool_size)``, the shadow original's training set.
    ``targets``: int ``(n_targets,)``, the pool indices of the target examples, in the order
    of ``forgotten``'s columns.
    ``forgotten``: bool ``(n_shadows, n_targets)``, the targets each shadow forgets (its
    forget set, always among its members; the same number in every shadow).
    ``fit``: bool ``(n_shadows,)``, True for the shadows whose models fit the attack's
    Gaussians, False for those held out to measure it.

    Built by :func:`shadow_plan`; a plan built by hand is checked the same way: a forget set
    outside its shadow's members, or a target without enough fitting and held-out shadows
    that forget it, is a one-line error here, before anything is trained.
    """

    members: np.ndarray
    targets: np.ndarray
    forgotten: np.ndarray
    fit: np.ndarray
    seed: int | None = None

    def __post_init__(self):
        m, t, f, fit = (np.asarray(a) for a in (self.members, self.targets, self.forgotten, self.fit))
        check(m.ndim == 2 and m.dtype == bool and m.shape[0] >= 2,
              f"members must be a bool (n_shadows, pool_size) array with n_shadows >= 2, got {m.dtype} {m.shape}")
        n_shadows, pool_size = m.shape
        check(t.ndim == 1 and t.size >= 1 and np.issubdtype(t.dtype, np.integer),
              "targets must be a non-empty 1-D array of pool indices")
        check(t.min() >= 0 and t.max() < pool_size, f"targets must be pool indices in [0, {pool_size - 1}]")
        check(len(np.unique(t)) == len(t), "targets must be distinct pool indices")
        check(f.shape == (n_shadows, len(t)) and f.dtype == bool,
              f"forgotten must be a bool ({n_shadows}, {len(t)}) array (shadows x targets), got {f.dtype} {f.shape}")
        check(fit.shape == (n_shadows,) and fit.dtype == bool,
              f"fit must be a bool ({n_shadows},) array (one flag per shadow), got {fit.dtype} {fit.shape}")
        sizes = f.sum(axis=1)
        check(sizes.min() >= 1 and sizes.min() == sizes.max(),
              f"every shadow must forget the same number (>= 1) of targets, got between {sizes.min()} and "
              f"{sizes.max()}")
        outside = f & ~m[:, t]
        if outside.any():
            s, j = (int(v) for v in np.argwhere(outside)[0])
            check(False, f"shadow {s} forgets pool example {int(t[j])}, which is not among its members: a forget set "
                         "must be drawn from the shadow's own training half")
        n_fit = (f & fit[:, None]).sum(axis=0)
        n_held = (f & ~fit[:, None]).sum(axis=0)
        check(n_fit.min() >= MIN_FIT_MODELS,
              f"target {int(t[n_fit.argmin()])} is forgotten in only {n_fit.min()} fitting shadows; the attack fits "
              f"each target on at least {MIN_FIT_MODELS}: add shadows or mark more of them fit")
        check(n_held.min() >= 1,
              f"target {int(t[n_held.argmin()])} is forgotten in no held-out shadow, so the attack cannot be "
              "measured on it: hold out some shadows (fit=False)")
        for name, arr in (("members", m), ("targets", t), ("forgotten", f), ("fit", fit)):
            arr = arr.copy()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_shadows(self) -> int:
        return self.members.shape[0]

    @property
    def pool_size(self) -> int:
        return self.members.shape[1]

    @property
    def forget_size(self) -> int:
        return int(self.forgotten[0].sum())

    def member_indices(self, shadow: int) -> np.ndarray:
        """Pool indices the shadow's original trains on (sorted)."""
        return np.flatnonzero(self.members[shadow])

    def forget_indices(self, shadow: int) -> np.ndarray:
        """Pool indices the shadow forgets (all among its members)."""
        return self.targets[self.forgotten[shadow]]

    def retain_indices(self, shadow: int) -> np.ndarray:
        """Pool indices the shadow's retrained model trains on: its members minus its forget set."""
        keep = self.members[shadow].copy()
        keep[self.forget_indices(shadow)] = False
        return np.flatnonzero(keep)

    def layout(self, values) -> np.ndarray:
        """``values`` (one per shadow and target, ``(n_shadows, n_targets)``) with NaN wherever
        that target was not forgotten in that shadow: the layout :func:`ulira_scores` and
        :func:`forget_quality` read."""
        v = _float_array(values, "values")
        check(v.shape == self.forgotten.shape,
              f"values must be (n_shadows, n_targets) = {self.forgotten.shape}, got {v.shape}")
        return np.where(self.forgotten, v, np.nan)


def _resolvable(fpr: float) -> int:
    """Fewest negatives for which "TPR at FPR ≤ fpr" differs from "TPR at FPR 0": the
    threshold may let through floor(fpr · n_neg) negatives, which is 0 below 1/fpr."""
    return math.ceil(1.0 / fpr - 1e-9)


def _check_fprs(fprs) -> tuple[float, ...]:
    fprs = tuple(float(a) for a in np.atleast_1d(np.asarray(fprs, dtype=float)))
    check(len(fprs) >= 1 and all(0 < a < 1 for a in fprs), f"fprs must be false-positive rates in (0, 1), got {fprs}")
    return fprs


def _default_held_out(n_shadows: int) -> int:
    return 2 * (n_shadows // 4)  # half of the twins, rounded down


def shadow_plan(pool_size: int, n_shadows: int, forget_size: int, *, seed: int, targets=None,
                held_out: int | None = None, fprs=DEFAULT_FPRS) -> ShadowPlan:
    """Plan ``n_shadows`` shadow models on a pool of ``pool_size`` examples (indices 0 .. pool_size−1).

    The design: ``2 * forget_size`` *targets* (``targets``, or drawn from the pool with
    ``seed``). Shadows come in complementary twins: a twin's first shadow forgets a random
    half of the targets (``forget_size`` of them), its second the other half, so every
    target is forgotten in exactly ``n_shadows / 2`` shadows, once per twin. A shadow's
    *members* (its original's training set) are its forget set plus a random draw of the
    non-targets, ``pool_size // 2`` examples in all: a random half of the pool. A target a
    shadow does not forget is not among its members, so for targets too membership is a
    coin flip, and the forget set is always drawn from the shadow's members. Every shadow's
    request has the same size, ``forget_size``.

    ``held_out`` shadows (the last twins; default half of the twins, rounded down) measure
    the attack; the others fit it. **Minimum shadows.** Each held-out shadow gives
    ``forget_size`` retrained (model, target) pairs, the attack's negatives. "TPR at FPR ≤ α"
    lets the threshold pass floor(α · n_neg) negatives; below n_neg = 1/α that is none, and
    the figure is the TPR at FPR 0 whatever α says. So the held-out shadows must give
    ``held_out * forget_size >= ceil(1 / min(fprs))`` (1,000 for 0.1 %), and the fitting
    twins must forget each target at least ``MIN_FIT_MODELS`` times. With the default split,
    e.g. ``forget_size=50`` needs ``n_shadows >= 40`` for 0.1 %, ``forget_size=10`` needs 200.
    """
    for name, v in (("pool_size", pool_size), ("n_shadows", n_shadows), ("forget_size", forget_size)):
        check(isinstance(v, int | np.integer) and not isinstance(v, bool), f"{name} must be an integer, got {v!r}")
    check(forget_size >= 1, f"forget_size must be at least 1, got {forget_size}")
    check(2 * forget_size <= pool_size,
          f"a pool of {pool_size} is too small for forget sets of {forget_size}: each shadow trains on half the pool "
          f"and forgets from its half, so pool_size must be >= 2 * forget_size = {2 * forget_size}")
    check(n_shadows >= 2 and n_shadows % 2 == 0,
          f"n_shadows must be even (shadows come in complementary twins) and >= 2, got {n_shadows}")
    fprs = _check_fprs(fprs)
    need = _resolvable(min(fprs))
    per_shadow = forget_size

    def fits(n: int, h: int) -> bool:
        return h * per_shadow >= need and (n - h) // 2 >= MIN_FIT_MODELS

    if held_out is None:
        if not fits(n_shadows, _default_held_out(n_shadows)):
            # necessary: n // 4 >= ceil(need / (2 f)) and n / 2 + 1.5 >= 2 * MIN_FIT_MODELS; then step up
            n_min = max(4 * math.ceil(need / (2 * per_shadow)), 4 * MIN_FIT_MODELS - 4)
            while not fits(n_min, _default_held_out(n_min)):
                n_min += 2
            check(False, f"n_shadows={n_shadows} is too few for FPR {min(fprs)} with forget_size {forget_size}: the "
                         f"held-out half must give >= {need} retrained (model, example) pairs ({forget_size} per "
                         f"shadow) and {MIN_FIT_MODELS} fitting twins must remain; use n_shadows >= {n_min}, a larger "
                         "forget_size, or a larger FPR")
        held_out = _default_held_out(n_shadows)
    check(isinstance(held_out, int | np.integer) and held_out >= 2 and held_out % 2 == 0 and held_out < n_shadows,
          f"held_out must be an even number of shadows in [2, {n_shadows - 2}] (twins are held out together), "
          f"got {held_out!r}")
    check(held_out * per_shadow >= need,
          f"held_out={held_out} shadows give {held_out * per_shadow} retrained (model, example) pairs, too few for FPR "
          f"{min(fprs)} (needs >= {need}): hold out >= {2 * math.ceil(need / (2 * per_shadow))} shadows")
    check((n_shadows - held_out) // 2 >= MIN_FIT_MODELS,
          f"n_shadows={n_shadows} with held_out={held_out} leaves {(n_shadows - held_out) // 2} fitting twins; the "
          f"attack needs >= {MIN_FIT_MODELS}: use n_shadows >= {held_out + 2 * MIN_FIT_MODELS}")

    rng = np.random.default_rng(seed)
    n_targets = 2 * forget_size
    if targets is None:
        tg = np.sort(rng.choice(pool_size, n_targets, replace=False))
    else:
        tg = np.asarray(targets)
        check(tg.ndim == 1 and len(tg) == n_targets and np.issubdtype(tg.dtype, np.integer),
              f"targets must be {n_targets} (2 * forget_size) integer pool indices, got shape {tg.shape}; or omit "
              "targets to draw them")
        check(tg.min() >= 0 and tg.max() < pool_size and len(np.unique(tg)) == n_targets,
              f"targets must be distinct pool indices in [0, {pool_size - 1}]")
        tg = np.sort(tg)
    others = np.setdiff1d(np.arange(pool_size), tg)
    n_other_members = pool_size // 2 - forget_size
    members = np.zeros((n_shadows, pool_size), dtype=bool)
    forgotten = np.zeros((n_shadows, n_targets), dtype=bool)
    for twin in range(n_shadows // 2):
        half = rng.permutation(n_targets)[:forget_size]
        forgotten[2 * twin, half] = True
        forgotten[2 * twin + 1] = ~forgotten[2 * twin]
    for s in range(n_shadows):
        members[s, tg[forgotten[s]]] = True
        members[s, rng.choice(others, n_other_members, replace=False)] = True
    fit = np.arange(n_shadows) < n_shadows - held_out
    return ShadowPlan(members=members, targets=tg, forgotten=forgotten, fit=fit, seed=seed)


class ULiraScores(NamedTuple):
    """U-LiRA's log likelihood ratios, ``(n_shadows, n_targets)`` each: a held-out shadow's
    unlearned model (``unlearned``, the attack's positives) and retrained model (``retrained``,
    its negatives) on a target it forgot; NaN on fitting shadows and where nothing was
    forgotten. ``roc_summary(*scores)`` pools them."""

    unlearned: np.ndarray
    retrained: np.ndarray


def _confidence_pair(conf_unlearned, conf_retrained) -> tuple[np.ndarray, np.ndarray]:
    u = _float_array(conf_unlearned, "conf_unlearned")
    r = _float_array(conf_retrained, "conf_retrained")
    check(u.ndim == 2 and u.shape == r.shape,
          f"confidences must be two (n_models, n_examples) arrays of one shape, got {u.shape} and {r.shape}")
    check(not (np.isinf(u).any() or np.isinf(r).any()),
          "confidences contain inf: compute them with logit_confidence, which stays finite")
    return u, r


def ulira_scores(conf_unlearned, conf_retrained, fit, *, min_std: float = MIN_STD) -> ULiraScores:
    """U-LiRA: per target, Gaussians fitted on the fitting shadows, held-out shadows scored.

    ``conf_unlearned``, ``conf_retrained``: ``(n_shadows, n_targets)`` logit-scaled
    confidences (:func:`logit_confidence`) of each shadow's unlearned and retrained model on
    each target, NaN where that shadow did not forget that target (both arrays NaN at the
    same places; :meth:`ShadowPlan.layout`). ``fit``: bool ``(n_shadows,)``, the fitting
    shadows (``ShadowPlan.fit``).

    For target j, N(μ_u, σ_u) is fitted to its finite ``conf_unlearned[fit, j]`` and
    N(μ_r, σ_r) to ``conf_retrained[fit, j]`` (sample mean; standard deviation with ddof=1,
    floored at ``min_std``). A held-out model with confidence φ on j scores
    log N(φ; μ_u, σ_u) − log N(φ; μ_r, σ_r): positive when it looks unlearned.
    """
    u, r = _confidence_pair(conf_unlearned, conf_retrained)
    fit = np.asarray(fit)
    check(fit.shape == (u.shape[0],) and fit.dtype == bool,
          f"fit must be a bool array with one flag per shadow ({u.shape[0]}), got {fit.dtype} {fit.shape}")
    check(np.array_equal(np.isnan(u), np.isnan(r)),
          "conf_unlearned and conf_retrained must be NaN at the same places: each forgotten (shadow, target) has "
          "both an unlearned and a retrained model")
    check(min_std > 0, f"min_std must be positive, got {min_std}")
    n_fit = np.isfinite(u[fit]).sum(axis=0)
    check(n_fit.size and n_fit.min() >= MIN_FIT_MODELS,
          f"target column {int(n_fit.argmin()) if n_fit.size else 0} has {n_fit.min() if n_fit.size else 0} fitting "
          f"values; each target needs >= {MIN_FIT_MODELS} fitting shadows that forgot it")
    check(np.isfinite(u[~fit]).any(), "no held-out (shadow, target) pair to score: hold out some shadows (fit=False)")

    def gaussian(x):
        mu = np.nanmean(x[fit], axis=0)
        sd = np.maximum(np.nanstd(x[fit], axis=0, ddof=1), min_std)
        return mu, sd

    (mu_u, sd_u), (mu_r, sd_r) = gaussian(u), gaussian(r)

    def llr(x):
        out = (np.log(sd_r) - np.log(sd_u) - 0.5 * ((x - mu_u) / sd_u) ** 2 + 0.5 * ((x - mu_r) / sd_r) ** 2)
        out[fit] = np.nan
        return out

    return ULiraScores(unlearned=llr(u), retrained=llr(r))


@dataclass(frozen=True)
class RocSummary:
    """An attack's ROC. ``auc``: P(positive scores above negative), ties counted half.
    ``tpr_at``: {α: the largest TPR whose FPR ≤ α}. ``fpr``, ``tpr``: the curve's points,
    from (0, 0) to (1, 1), one per distinct score (plot them on log-log axes to see the
    low-FPR end). ``n_pos``, ``n_neg``: how many scores it rests on."""

    auc: float
    tpr_at: dict
    fpr: np.ndarray
    tpr: np.ndarray
    n_pos: int
    n_neg: int


def roc_summary(scores_pos, scores_neg, fprs=DEFAULT_FPRS) -> RocSummary:
    """AUC and TPR at low FPRs of an attack that calls a score *positive* when it is ≥ a threshold.

    ``scores_pos``: the scores of the positives (for U-LiRA, unlearned models), any shape;
    ``scores_neg``: those of the negatives (retrained models). NaN entries are "no such
    pair" and are dropped (the layout of :class:`ULiraScores`).

    AUC is the Mann–Whitney statistic U / (n_pos · n_neg), a tie between a positive and a
    negative counting one half. The curve has one point per distinct score t: (share of
    negatives ≥ t, share of positives ≥ t), plus (0, 0). The TPR at FPR α is the largest TPR
    among the points whose FPR ≤ α, no interpolation between points. An α below 1 / n_neg
    cannot be resolved (only FPR 0 lies under it) and is an error.
    """
    pos = _float_array(scores_pos, "scores_pos").ravel()
    neg = _float_array(scores_neg, "scores_neg").ravel()
    pos, neg = pos[~np.isnan(pos)], neg[~np.isnan(neg)]
    check(len(pos) >= 1 and len(neg) >= 1,
          f"an ROC needs at least one positive and one negative score, got {len(pos)} and {len(neg)}")
    fprs = _check_fprs(fprs)
    for a in fprs:
        check(len(neg) >= _resolvable(a),
              f"FPR {a} cannot be resolved with {len(neg)} negative scores (needs >= {_resolvable(a)}): ask for a "
              "larger FPR or score more held-out pairs (more shadows)")
    from scipy.stats import rankdata
    ranks = rankdata(np.concatenate([pos, neg]))  # ties get their average rank
    u_stat = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    auc = float(u_stat / (len(pos) * len(neg)))

    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]  # descending
    sp, sn = np.sort(pos), np.sort(neg)
    tp = len(pos) - np.searchsorted(sp, thresholds, side="left")  # positives >= t
    fp = len(neg) - np.searchsorted(sn, thresholds, side="left")
    tp, fp = np.concatenate([[0], tp]), np.concatenate([[0], fp])
    tpr_at = {}
    for a in fprs:
        allowed = math.floor(a * len(neg) + 1e-9)
        tpr_at[a] = float(tp[fp <= allowed].max() / len(pos))
    return RocSummary(auc=auc, tpr_at=tpr_at, fpr=fp / len(neg), tpr=tp / len(pos), n_pos=len(pos), n_neg=len(neg))


# ---------------------------------------------------------------------------------------
# The competition's forget quality


def _count_at_least(sorted_x: np.ndarray, t: np.ndarray) -> np.ndarray:
    return len(sorted_x) - np.searchsorted(sorted_x, t, side="left")


def _grid(lo: float, hi: float) -> np.ndarray:
    """``FQ_THRESHOLDS_PER_UNIT`` evenly spaced values per unit from ``lo`` to ``hi`` (both included)."""
    return np.linspace(lo, hi, math.ceil((hi - lo) * FQ_THRESHOLDS_PER_UNIT))


def _edges_at_or_below(base: np.ndarray, shifts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``out[i, m]``: how many of ``base[i] + shifts`` (as float64 sums, increasing) are <= ``values[m]``."""
    n = len(shifts)
    out = np.searchsorted(shifts, values[None, :] - base[:, None], side="right")
    b = np.broadcast_to(base[:, None], out.shape)
    v = np.broadcast_to(values[None, :], out.shape)
    for _ in range(4):  # three corrections, then the check
        down = (out > 0) & (b + shifts[np.maximum(out - 1, 0)] > v)  # the last one counted is above
        up = (out < n) & (b + shifts[np.minimum(out, n - 1)] <= v)  # the next one is not above
        if not (down.any() or up.any()):
            return out
        out = out - down + up
    # not reached for grids as fine as the rules' (each correction is a rounding step); counted directly
    return (b[:, :, None] + shifts[None, None, :] <= v[:, :, None]).sum(2)


def _interval_rules(peaky: np.ndarray, other: np.ndarray, width: float):
    """The interval rules of :func:`_example_epsilon` (``[left, right]``, right edges on a grid
    from ``peaky[0] + width − margin`` to ``peaky[-1] + margin``, left edges ``right − width + s``
    for ``s`` on a grid over ±margin), as their distinct (true positives among ``peaky``, false
    positives among ``other``) pairs; ``peaky`` and ``other`` sorted. A rule's counts are a
    function of how many of the merged values lie below its left edge and at most at its right
    edge, so the pairs are read off those two places; the same set of pairs (and so the same ε)
    as counting every rule, at a fraction of the work."""
    right = _grid(peaky[0] + width - FQ_INTERVAL_MARGIN, peaky[-1] + FQ_INTERVAL_MARGIN)
    shifts = np.linspace(-FQ_INTERVAL_MARGIN, FQ_INTERVAL_MARGIN, math.ceil(2 * FQ_INTERVAL_MARGIN
                                                                             * FQ_THRESHOLDS_PER_UNIT))
    merged = np.concatenate([peaky, other])
    order = np.argsort(merged, kind="stable")
    merged, is_peaky = merged[order], (order < len(peaky)).astype(np.int64)
    # cum_p[c], cum_o[c]: peaky and other values among the c smallest merged values
    cum_p = np.concatenate([[0], np.cumsum(is_peaky)])
    cum_o = np.arange(len(merged) + 1) - cum_p
    upto = np.searchsorted(merged, right, side="right")  # merged values <= each right edge
    # Left edges: row i holds (right[i] − width) + shifts, increasing along the row. How many of
    # them lie at or below each merged value, per row: its place on the shifts grid, then
    # corrected to the exact left edges as the rules compute them (rounding moves it by one at most).
    base = right - width
    ends = _edges_at_or_below(base, shifts, merged)
    counts = np.diff(np.concatenate([np.zeros((len(right), 1), np.int64), ends,
                                     np.full((len(right), 1), len(shifts))], axis=1), axis=1)
    # counts[i, c]: left edges of row i with exactly c merged values below them
    k = len(merged) + 1
    seen = np.zeros(k * k, dtype=bool)
    rows, below = np.nonzero(counts)
    seen[upto[rows] * k + below] = True
    pairs = np.flatnonzero(seen)
    hi, lo = pairs // k, pairs % k
    return cum_p[hi] - cum_p[lo], cum_o[hi] - cum_o[lo], len(peaky), len(other)


def _example_epsilon(unlearned: np.ndarray, retrained: np.ndarray, delta: float) -> float:
    """One example's ε from the two samples of its confidence (one value per model each)."""
    # The positive side is the one with the larger median (ties: unlearned).
    pos, neg = (retrained, unlearned) if np.median(retrained) > np.median(unlearned) else (unlearned, retrained)
    pos, neg = np.sort(pos), np.sort(neg)
    range_pos, range_neg = pos[-1] - pos[0], neg[-1] - neg[0]
    small, large = min(range_pos, range_neg), max(range_pos, range_neg)
    if large == 0:  # both samples constant (ours: the released code has no branch for it)
        return 0.0 if pos[0] == neg[0] else FQ_EPSILON_CAP
    if small / large < FQ_SPIKE_RATIO:  # one sample is a spike against the other: worst ε
        return FQ_EPSILON_CAP
    n_pos, n_neg = len(pos), len(neg)

    # Rule family 1: "positive" when the confidence is >= t, t on a grid over both samples.
    t = _grid(min(pos[0], neg[0]), max(pos[-1], neg[-1]))
    tp1, fp1 = _count_at_least(pos, t), _count_at_least(neg, t)

    # Rule family 2: "peaky" when the confidence lies in [left, right], where "peaky" is the
    # sample with the smaller range (on equal ranges: neg) and the interval is about as wide
    # as that range: right edges from min + width − margin to max + margin, left edges
    # right − width ± margin. Some 160,000 rules, but only a few hundred distinct pairs of
    # counts among them (:func:`_interval_rules`); the largest ε is the same either way.
    peaky, other = (pos, neg) if range_pos < range_neg else (neg, pos)
    tp2, fp2, n_peaky, n_other = _interval_rules(peaky, other, small)

    tpr = np.concatenate([tp1 / n_pos, tp2 / n_peaky])
    fpr = np.concatenate([fp1 / n_neg, fp2 / n_other])
    fnr = 1.0 - tpr
    fn_zero = np.concatenate([tp1 == n_pos, tp2 == n_peaky])
    fp_zero = np.concatenate([fp1 == 0, fp2 == 0])
    if (fn_zero & fp_zero).any():  # a rule separates the samples perfectly
        return FQ_EPSILON_CAP
    keep = ~(fn_zero | fp_zero)  # one error rate 0 and not the other: too few samples to tell, dropped
    fpr, fnr = fpr[keep], fnr[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(1 - delta - fpr) - np.log(fnr)
        b = np.log(1 - delta - fnr) - np.log(fpr)
    eps = np.fmax(a, b)  # NaN only where both logs are undefined (1 − δ − rate <= 0 on both)
    eps = eps[~np.isnan(eps)]
    if eps.size == 0:  # no rule left (ours: the released code stops with an assertion here)
        return FQ_EPSILON_CAP
    return float(min(max(eps.max(), 0.0), FQ_EPSILON_CAP))


def _points(epsilons: np.ndarray, n_models: int) -> tuple[np.ndarray, float]:
    max_eps = float(math.ceil(math.log(n_models - 1)))
    n_buckets = int(round(max_eps / FQ_BUCKET))
    bucket = np.floor(epsilons / FQ_BUCKET)
    return np.where(bucket < n_buckets, 2.0 ** -np.minimum(bucket, n_buckets), 0.0), max_eps


@dataclass(frozen=True)
class ForgetQuality:
    """The competition's forget quality. ``score``: mean of ``points`` over examples, in [0, 1]
    (1: no example's ε reaches 0.5). ``epsilons``, ``points``: per example. ``n_models``: models
    per side the estimate rests on (per example). ``max_epsilon``: ceil(ln(n_models − 1)), the
    largest ε the number of models can resolve; an example at or past it earns 0 points."""

    score: float
    epsilons: np.ndarray
    points: np.ndarray
    n_models: int
    n_examples: int
    max_epsilon: float


def forget_quality(outputs_unlearned, outputs_retrained, *, delta: float = FQ_DELTA) -> ForgetQuality:
    """The NeurIPS 2023 unlearning competition's forget quality F (Triantafillou et al. 2024).

    ``outputs_unlearned``, ``outputs_retrained``: ``(n_models, n_examples)``, one scalar per
    model and forget example, the logit-scaled confidence (:func:`logit_confidence`) as in
    the competition. NaN marks "no such model for this example" (the shadow layout of
    :class:`ShadowPlan`); every example must then have the same number ``N`` of finite values
    on both sides, as in the competition (``N`` models per side).

    Per example (the released ``metric.py``, ``_get_epsilons``; paper: per-example ε of
    (ε, δ)-unlearning estimated from attacks on the two output distributions):

    1. positive side: the sample with the larger median; if one sample's range is below
       ``FQ_SPIKE_RATIO`` (1 %) of the other's, ε = ``FQ_EPSILON_CAP`` (50);
    2. two families of rules: "positive if ≥ t", t on a grid of ``FQ_THRESHOLDS_PER_UNIT``
       (100) per unit over both samples; and "the peakier sample if inside [l, r]", r from
       min + w − 2 to max + 2 of the peakier sample (w its range) and l = r − w + s,
       s ∈ [−2, 2] (``FQ_INTERVAL_MARGIN``), 100 per unit on both;
    3. per rule, with its false-positive and false-negative rates: both 0 → ε = ∞ (capped at
       50); one of them 0 → the rule is dropped; else
       ε_rule = max(log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR), floored at 0;
    4. the example's ε = the largest ε_rule, capped at 50; δ = ``FQ_DELTA`` (10⁻⁵).

    Points (``compute_forget_score_from_confs``; paper: F = mean over the forget set of
    H(ε)): ε in [0, 0.5) earns 1, [0.5, 1) earns 1/2, each further 0.5 halves it, up to
    ε = ceil(ln(N − 1)) — with N samples the smallest non-zero rate is 1/N, so no rule can
    show an ε much above ln(N − 1) — past which an example earns 0. F is the mean.

    Read it against its own floor: the maximum over some 160,000 rules finds chance
    differences, so two independent samples of *one* distribution do not score 1 (measured
    here on Gaussian samples: about 0.17-0.19 for N from 16 to 256); only identical samples
    do. Compare a method with retraining against retraining with itself on the same N.

    Ours, where the released code gives no answer: both samples constant → ε = 0 if equal,
    else 50; no rule left after step 3 → 50 (the released code stops with an assertion).
    The competition compared N unlearning runs from *one* original with N retrainings on one
    fixed retain set (N = 512 by default in ``main.py``); computed from shadow models, each
    example's two samples also vary over the shadows' training halves.
    """
    u, r = _confidence_pair(outputs_unlearned, outputs_retrained)
    check(0 <= delta < 1, f"delta must lie in [0, 1), got {delta}")
    nu, nr = np.isfinite(u).sum(axis=0), np.isfinite(r).sum(axis=0)
    check(u.shape[1] >= 1, "forget quality needs at least one example (column)")
    check(np.all(nu == nu[0]) and np.array_equal(nu, nr),
          f"every example needs the same number of unlearned and retrained models, got {nu.min()}-{nu.max()} "
          f"unlearned and {nr.min()}-{nr.max()} retrained per example")
    n_models = int(nu[0])
    check(n_models >= 3,
          f"forget quality needs at least 3 models per side (with N models it resolves ε up to ceil(ln(N-1))), "
          f"got {n_models}")
    eps = np.array([_example_epsilon(u[np.isfinite(u[:, j]), j], r[np.isfinite(r[:, j]), j], delta)
                    for j in range(u.shape[1])])
    points, max_eps = _points(eps, n_models)
    return ForgetQuality(score=float(points.mean()), epsilons=eps, points=points, n_models=n_models,
                         n_examples=u.shape[1], max_epsilon=max_eps)


def competition_score(forget_quality_score: float, retain_acc_unlearned: float, retain_acc_retrained: float,
                      test_acc_unlearned: float, test_acc_retrained: float) -> float:
    """The competition's final score: F · (RA_u / RA_r) · (TA_u / TA_r), where RA and TA are the
    retain- and test-set accuracies averaged over the unlearned (u) and retrained (r) models
    (released ``main.py``). Accuracies in any one unit (fractions or percent)."""
    check(0 <= forget_quality_score <= 1, f"forget quality must lie in [0, 1], got {forget_quality_score}")
    check(min(retain_acc_unlearned, test_acc_unlearned) >= 0, "accuracies must be non-negative")
    check(retain_acc_retrained > 0 and test_acc_retrained > 0,
          "the retrained models' accuracies must be positive (they divide the score)")
    return float(forget_quality_score * (retain_acc_unlearned / retain_acc_retrained)
                 * (test_acc_unlearned / test_acc_retrained))
