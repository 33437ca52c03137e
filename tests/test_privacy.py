"""megu_lib.privacy: the logit-scaled confidence, shadow plans, U-LiRA, ROC summaries, forget quality."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from megu_lib import MeguError
from megu_lib.privacy import (
    FQ_DELTA,
    FQ_EPSILON_CAP,
    MIN_FIT_MODELS,
    ShadowPlan,
    _points,
    competition_score,
    forget_quality,
    logit_confidence,
    roc_summary,
    shadow_plan,
    ulira_scores,
)


def _one_line_error(fn, *args, match, **kwargs):
    with pytest.raises(MeguError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


# --- the logit-scaled confidence -------------------------------------------------------------

def test_logit_confidence_is_log_p_over_one_minus_p():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, size=(50, 7))
    y = rng.integers(0, 7, size=50)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    py = p[np.arange(50), y]
    np.testing.assert_allclose(logit_confidence(z, y), np.log(py) - np.log1p(-py), rtol=1e-9, atol=1e-9)
    # torch tensors in, the same numbers out
    np.testing.assert_allclose(logit_confidence(torch.tensor(z), torch.tensor(y)), logit_confidence(z, y))


def test_logit_confidence_stays_finite_on_extreme_logits():
    z = np.array([[1000.0, 0.0, 0.0], [1000.0, 0.0, 0.0], [-1000.0, 1000.0, 999.0], [1e6, -1e6, 0.0], [5.0, 5.0, 5.0]])
    phi = logit_confidence(z, np.array([0, 1, 1, 0, 2]))
    assert np.isfinite(phi).all()
    np.testing.assert_allclose(phi, [1000 - math.log(2), -1000.0, 1000 - np.logaddexp(-1000, 999), 1e6, -math.log(2)],
                               rtol=1e-12)
    # float32 logits that overflow exp() in float32 (e^89 > 3.4e38) are fine too
    assert logit_confidence(torch.tensor([[95.0, 0.0]], dtype=torch.float32), torch.tensor([0]))[0] == pytest.approx(
        95.0, abs=1e-9)


def test_logit_confidence_bad_input_is_one_line():
    z = np.zeros((3, 4))
    _one_line_error(logit_confidence, np.zeros((3, 1)), [0, 0, 0], match="at least 2 classes")
    _one_line_error(logit_confidence, z, [0, 1], match="must be \\(3,\\)")
    _one_line_error(logit_confidence, z, [0, 1, 4], match="must lie in \\[0, 3\\]")
    _one_line_error(logit_confidence, z, [0.0, 1.0, 2.0], match="must be integers")
    _one_line_error(logit_confidence, np.full((3, 4), np.nan), [0, 1, 2], match="NaN or inf")


# --- the shadow plan -------------------------------------------------------------------------

def test_shadow_plan_halves_twins_and_forget_sets_among_members():
    plan = shadow_plan(400, 40, 50, seed=0)
    assert (plan.n_shadows, plan.pool_size, plan.forget_size, len(plan.targets)) == (40, 400, 50, 100)
    assert (plan.members.sum(axis=1) == 200).all()  # every original trains on half the pool
    for s in range(plan.n_shadows):
        forget, members = plan.forget_indices(s), plan.member_indices(s)
        assert len(forget) == 50 and np.isin(forget, members).all()
        np.testing.assert_array_equal(plan.retain_indices(s), np.setdiff1d(members, forget))
        # a target the shadow does not forget is not one of its members
        assert not plan.members[s, np.setdiff1d(plan.targets, forget)].any()
    # twins are complementary: each target forgotten in exactly half of the shadows, half of those fit
    assert (plan.forgotten[0::2] ^ plan.forgotten[1::2]).all()
    assert (plan.forgotten.sum(axis=0) == 20).all()
    assert (plan.forgotten[plan.fit].sum(axis=0) == 10).all() and (plan.forgotten[~plan.fit].sum(axis=0) == 10).all()
    assert plan.fit.sum() == 20 and not plan.fit[-20:].any()
    # non-targets: members about half the time, each
    others = np.setdiff1d(np.arange(400), plan.targets)
    rate = plan.members[:, others].mean(axis=0)
    assert rate.mean() == pytest.approx(0.5) and 0.15 < rate.min() and rate.max() < 0.85
    # the layout: NaN where nothing was forgotten
    lay = plan.layout(np.ones((40, 100)))
    assert np.isnan(lay).sum() == 40 * 50 and (lay[plan.forgotten] == 1).all()


def test_shadow_plan_is_reproducible_by_seed_and_takes_given_targets():
    a, b, c = (shadow_plan(300, 24, 40, seed=s, fprs=(0.01,)) for s in (3, 3, 4))
    for name in ("members", "targets", "forgotten", "fit"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.members, c.members)
    targets = np.arange(0, 160, 2)
    plan = shadow_plan(300, 24, 40, seed=0, targets=targets[::-1], fprs=(0.01,))
    np.testing.assert_array_equal(plan.targets, targets)
    assert plan.members[:, plan.targets].sum() == 24 * 40


def test_minimum_shadows_rule_at_its_boundary():
    # forget_size 50, FPR 0.1 %: 1000 held-out pairs = 20 held-out shadows = half of 40
    shadow_plan(400, 40, 50, seed=0)
    _one_line_error(shadow_plan, 400, 38, 50, seed=0, match="n_shadows=38 is too few for FPR 0.001.*n_shadows >= 40")
    _one_line_error(shadow_plan, 400, 20, 10, seed=0, match="n_shadows >= 200")
    # at 1 % only 100 pairs are needed; then the fitting twins bind: 14 shadows = 3 held-out twins + 4 fitting
    plan = shadow_plan(400, 14, 50, seed=0, fprs=(0.01,))
    assert (~plan.fit).sum() == 6
    _one_line_error(shadow_plan, 400, 12, 50, seed=0, fprs=(0.01,), match="n_shadows >= 14")
    # an explicit held-out count is checked the same way
    shadow_plan(400, 30, 50, seed=0, held_out=20)
    _one_line_error(shadow_plan, 400, 30, 50, seed=0, held_out=18, match="hold out >= 20 shadows")
    _one_line_error(shadow_plan, 400, 26, 50, seed=0, held_out=20, match="leaves 3 fitting twins")


def test_shadow_plan_bad_input_is_one_line():
    _one_line_error(shadow_plan, 50, 40, 30, seed=0, match="pool of 50 is too small for forget sets of 30")
    _one_line_error(shadow_plan, 400, 41, 50, seed=0, match="must be even")
    _one_line_error(shadow_plan, 400, 40, 0, seed=0, match="at least 1")
    _one_line_error(shadow_plan, 400, 40, 50, seed=0, fprs=(0.0,), match="in \\(0, 1\\)")
    _one_line_error(shadow_plan, 400, 40, 50, seed=0, targets=np.arange(99), match="100 \\(2 \\* forget_size\\)")
    _one_line_error(shadow_plan, 400, 40, 50, seed=0, targets=np.arange(350, 450), match="distinct pool indices")
    _one_line_error(shadow_plan, 400, 40, 50, seed=0, held_out=3, match="even number")


def test_a_forget_set_outside_the_members_is_refused():
    good = shadow_plan(100, 16, 5, seed=1, fprs=(0.2,))
    members = good.members.copy()
    members[3, good.forget_indices(3)[0]] = False
    _one_line_error(ShadowPlan, members, good.targets, good.forgotten, good.fit,
                    match=f"shadow 3 forgets pool example {good.forget_indices(3)[0]}, which is not among its members")
    _one_line_error(ShadowPlan, good.members, good.targets, good.forgotten, np.ones(16, dtype=bool),
                    match="no held-out shadow")
    fit = good.fit.copy()
    fit[:2] = False
    _one_line_error(ShadowPlan, good.members, good.targets, good.forgotten, fit,
                    match=f"fitting shadows; the attack fits each target on at least {MIN_FIT_MODELS}")


# --- U-LiRA and the ROC ----------------------------------------------------------------------

def _same(a, b):
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _synthetic(plan, shift, seed=0):
    """Per-target baselines spread widely (what makes per-example attacks strong), unit noise
    per model; unlearned = retrained + shift."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 3, size=len(plan.targets))
    r = base + rng.normal(size=plan.forgotten.shape)
    u = base + shift + rng.normal(size=plan.forgotten.shape)
    return plan.layout(u), plan.layout(r)


def test_ulira_cannot_tell_retraining_from_itself():
    plan = shadow_plan(400, 40, 50, seed=0)
    roc = roc_summary(*ulira_scores(*_synthetic(plan, 0.0), plan.fit))
    assert roc.n_pos == roc.n_neg == 1000
    # the AUC's standard deviation under "no difference" (Mann-Whitney): sqrt((n+m+1) / (12 n m))
    sd = math.sqrt((roc.n_pos + roc.n_neg + 1) / (12 * roc.n_pos * roc.n_neg))
    assert abs(roc.auc - 0.5) < 4 * sd
    assert roc.tpr_at[0.01] < 0.01 + 4 * math.sqrt(0.01 * 0.99 / roc.n_pos)


def test_ulira_detects_the_original_and_beats_a_population_threshold():
    plan = shadow_plan(400, 40, 50, seed=0)
    u, r = _synthetic(plan, 3.0)
    roc = roc_summary(*ulira_scores(u, r, plan.fit))
    assert roc.auc > 0.95 and roc.tpr_at[0.01] > 0.4 and roc.tpr_at[0.001] > 0.02
    # one threshold for all examples on the raw confidences: the per-example spread hides the shift
    population = roc_summary(u[~plan.fit], r[~plan.fit])
    assert population.auc < roc.auc - 0.1


def test_ulira_scores_held_out_models_with_the_fitted_gaussians():
    plan = shadow_plan(100, 16, 5, seed=2, fprs=(0.2,))
    u, r = _synthetic(plan, 1.0, seed=1)
    scores = ulira_scores(u, r, plan.fit)
    assert np.isnan(scores.unlearned[plan.fit]).all() and np.isnan(scores.retrained[plan.fit]).all()
    np.testing.assert_array_equal(np.isnan(scores.unlearned[~plan.fit]), ~plan.forgotten[~plan.fit])
    s, j = np.argwhere(plan.forgotten & ~plan.fit[:, None])[0]
    fu, fr = u[plan.fit, j], r[plan.fit, j]
    fu, fr = fu[~np.isnan(fu)], fr[~np.isnan(fr)]
    expect = norm.logpdf(u[s, j], fu.mean(), fu.std(ddof=1)) - norm.logpdf(u[s, j], fr.mean(), fr.std(ddof=1))
    assert scores.unlearned[s, j] == pytest.approx(expect, rel=1e-10)
    # a held-out value moves only its own score; a fitting value moves its target's scores
    u2 = u.copy()
    u2[s, j] += 5
    moved = ~_same(ulira_scores(u2, r, plan.fit).unlearned, scores.unlearned)
    assert moved.sum() == 1 and moved[s, j]
    f = np.flatnonzero(plan.fit & plan.forgotten[:, j])[0]
    u3 = u.copy()
    u3[f, j] += 5
    changed = ulira_scores(u3, r, plan.fit)
    held = plan.forgotten[~plan.fit, j]
    assert not _same(changed.retrained[~plan.fit, j], scores.retrained[~plan.fit, j])[held].any()
    other = np.arange(len(plan.targets)) != j
    np.testing.assert_array_equal(changed.retrained[:, other], scores.retrained[:, other])


def test_ulira_bad_input_is_one_line():
    plan = shadow_plan(100, 16, 5, seed=2, fprs=(0.2,))
    u, r = _synthetic(plan, 0.0)
    r2 = r.copy()
    s, j = np.argwhere(~np.isnan(r))[0]
    r2[s, j] = np.nan
    _one_line_error(ulira_scores, u, r2, plan.fit, match="NaN at the same places")
    _one_line_error(ulira_scores, u, r[:, :3], plan.fit, match="of one shape")
    _one_line_error(ulira_scores, u, r, plan.fit[:-1], match="one flag per shadow")
    few = plan.fit & (np.arange(16) < 4)  # two fitting twins: each target forgotten twice
    _one_line_error(ulira_scores, u, r, few, match=f"needs >= {MIN_FIT_MODELS} fitting shadows")


def test_roc_summary_on_a_hand_computed_example_with_ties():
    roc = roc_summary([3, 2, 2, 1], [2, 1, 0, 0], fprs=(0.25, 0.5))
    # pairs: 3 beats 4; each 2 beats 3 and ties 1 (3.5); 1 beats 2 and ties 1 (2.5): 13.5 / 16
    assert roc.auc == pytest.approx(13.5 / 16)
    np.testing.assert_allclose(roc.fpr, [0, 0, 0.25, 0.5, 1])
    np.testing.assert_allclose(roc.tpr, [0, 0.25, 0.75, 1, 1])
    assert roc.tpr_at == {0.25: 0.75, 0.5: 1.0}
    assert roc_summary([3, 2, 2, 1], [2, 1, 0, 0], fprs=(0.3,)).tpr_at == {0.3: 0.75}  # no interpolation
    # NaN is "no such pair" and is dropped
    assert roc_summary([3, np.nan, 2, 2, 1], [[2, 1], [0, np.nan], [0, np.nan]], fprs=(0.25,)).auc == roc.auc
    _one_line_error(roc_summary, [3, 2, 2, 1], [2, 1, 0, 0], fprs=(0.2,),
                    match="FPR 0.2 cannot be resolved with 4 negative scores \\(needs >= 5\\)")
    _one_line_error(roc_summary, [np.nan], [1.0], fprs=(0.5,), match="at least one positive")


def test_roc_auc_is_the_area_under_its_own_curve():
    rng = np.random.default_rng(5)
    pos, neg = rng.integers(0, 6, 300).astype(float) + 0.5, rng.integers(0, 6, 400).astype(float)  # many ties
    roc = roc_summary(pos, neg, fprs=(0.01,))
    assert roc.auc == pytest.approx(np.trapezoid(roc.tpr, roc.fpr), rel=1e-12)
    assert roc.auc == pytest.approx(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))


# --- forget quality --------------------------------------------------------------------------

def test_forget_quality_hand_example():
    # unlearned {1,2,3,4} vs retrained {0,1,2,3}: the best rule (>= 2, or [0, 2.5] on the
    # retrained side) has FPR 1/2, FNR 1/4, so ε = log(1 − δ − 1/2) − log(1/4) = log(2 − 4δ);
    # with N = 4 models, ε resolves up to ceil(ln 3) = 2 and ε in [0.5, 1) earns 1/2.
    fq = forget_quality(np.array([[1.0], [2], [3], [4]]), np.array([[0.0], [1], [2], [3]]))
    assert fq.epsilons[0] == pytest.approx(math.log(2 - 4 * FQ_DELTA), rel=1e-12)
    assert (fq.score, fq.n_models, fq.n_examples, fq.max_epsilon) == (0.5, 4, 1, 2.0)
    # a second example, the same on both sides: ε = 0, a full point; the score is the mean
    both = forget_quality(np.array([[1.0, 7], [2, 8], [3, 9], [4, 6]]), np.array([[0.0, 9], [1, 8], [2, 7], [3, 6]]))
    np.testing.assert_allclose(both.points, [0.5, 1.0])
    assert both.score == 0.75


def _eps(unlearned, retrained):
    return forget_quality(np.array(unlearned, float)[:, None], np.array(retrained, float)[:, None]).epsilons[0]


def test_forget_quality_orientation_and_interval_rule_by_hand():
    # unlearned {0,1,5,5} has the larger median, so "unlearned if >= t": t in (0, 1] catches 3
    # of 4 unlearned and 1 of 4 retrained: ε = log((1 − δ − 1/4) / (1/4)) = log(3 − 4δ), the
    # most 4 models can show (read the other way round, the rules show only log 2)
    assert _eps([0, 1, 5, 5], [0, 0, 0, 3]) == pytest.approx(math.log(3 - 4 * FQ_DELTA), rel=1e-12)
    # equal ranges (4 and 4): the interval rule is centred on the negative side, here the
    # unlearned {1,1,3,5}; no interval of width 2..6 holds 3 of them and 1 retrained, and the
    # best threshold (retrained if >= 2) has FPR 1/2, FNR 1/4: ε = log(2 − 4δ), not log 3
    assert _eps([1, 1, 3, 5], [0, 2, 3, 4]) == pytest.approx(math.log(2 - 4 * FQ_DELTA), rel=1e-12)
    # the interval's right edge runs from min + w − 2 up (w: the peakier sample's range, 3 for
    # unlearned {3,3,3,6}), so from 4: an interval holding the three 3s also holds retrained 3
    # and 4, and the best rule is a threshold (retrained if >= 4: FPR 1/4, FNR 1/2), log(2 − 4δ)
    assert _eps([3, 3, 3, 6], [1, 3, 4, 5]) == pytest.approx(math.log(2 - 4 * FQ_DELTA), rel=1e-12)
    # the bound read the other way, log((1 − δ − FNR) / FPR): the interval [3.5, 4.5] holds both
    # retrained 4s (FNR 1/2) and the unlearned 4 (FPR 1/4), log(2 − 4δ); the other reading gives log 1.5
    assert _eps([0, 1, 2, 4], [4, 4, 5, 5]) == pytest.approx(math.log(2 - 4 * FQ_DELTA), rel=1e-12)
    # a threshold separates {0..3} from {4..7}: ε is the cap, though the interval [1, 4] alone shows only log 3
    assert _eps([0, 1, 2, 3], [4, 5, 6, 7]) == FQ_EPSILON_CAP
    # both samples constant (ours): equal, nothing to tell apart; different, perfectly apart
    assert _eps([2, 2, 2], [2, 2, 2]) == 0 and _eps([2, 2, 2], [3, 3, 3]) == FQ_EPSILON_CAP
    # a sample whose range is under 1 % of the other's is a spike: ε is the cap, whatever the rules say
    assert _eps([0, 0.001, 0.002, 0.003], [-1, 0, 0.0015, 1]) == FQ_EPSILON_CAP
    assert _eps([0, 0.1, 0.2, 0.3], [-1, 0, 0.15, 1]) < 2


def test_forget_quality_best_when_identical_worst_when_separable():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(30, 40))
    same = forget_quality(u, u.copy())
    assert same.score == 1.0 and (same.epsilons == 0).all()
    apart = forget_quality(u + 100, u)
    assert apart.score == 0.0 and (apart.epsilons == FQ_EPSILON_CAP).all()
    spike = forget_quality(np.ones((30, 3)), u[:, :3])  # a constant sample against a spread one
    assert spike.score == 0.0
    # in between: two samples of one distribution beat a shifted one; finite samples keep both below 1
    iid = forget_quality(rng.normal(size=(30, 60)), rng.normal(size=(30, 60)))
    shifted = forget_quality(rng.normal(size=(30, 60)) + 2, rng.normal(size=(30, 60)))
    assert 1.0 > iid.score > 2 * shifted.score


def _interval_rules_by_enumeration(peaky, other, width):
    """Every interval rule counted one by one, as the competition's code does: the reference
    that the counting by places in ``_interval_rules`` must match (as a set of pairs)."""
    from megu_lib.privacy import FQ_INTERVAL_MARGIN, FQ_THRESHOLDS_PER_UNIT, _grid
    right = _grid(peaky[0] + width - FQ_INTERVAL_MARGIN, peaky[-1] + FQ_INTERVAL_MARGIN)
    shifts = np.linspace(-FQ_INTERVAL_MARGIN, FQ_INTERVAL_MARGIN,
                         math.ceil(2 * FQ_INTERVAL_MARGIN * FQ_THRESHOLDS_PER_UNIT))
    left = (right[:, None] - width + shifts[None, :]).ravel()
    right = np.repeat(right, len(shifts))
    within = lambda x: np.searchsorted(x, right, side="right") - np.searchsorted(x, left, side="left")
    return set(zip(within(peaky).tolist(), within(other).tolist()))


def test_interval_rules_are_the_enumerated_rules():
    from megu_lib.privacy import _interval_rules
    rng = np.random.default_rng(3)
    cases = []
    for n in (3, 8, 16):
        for _ in range(15):
            cases.append((rng.normal(0, rng.uniform(0.2, 3), n), rng.normal(rng.uniform(-2, 2), 1, n)))
        # ties within and across the samples, values on the rules' grid, one sample inside the other
        grid = np.round(rng.uniform(-1, 1, (2, n)), 2)
        cases += [(grid[0], grid[1]), (grid[0], grid[0].copy()), (np.linspace(0, 1, n), np.linspace(-3, 3, n)),
                  (np.r_[np.zeros(n - 1), 0.5], np.r_[np.zeros(n - 1), 0.25])]
    for a, b in cases:
        a, b = np.sort(a), np.sort(b)
        (peaky, other) = (a, b) if np.ptp(a) < np.ptp(b) else (b, a)
        width = np.ptp(peaky)
        tp, fp, n_p, n_o = _interval_rules(peaky, other, width)
        assert (n_p, n_o) == (len(peaky), len(other))
        assert set(zip(tp.tolist(), fp.tolist())) == _interval_rules_by_enumeration(peaky, other, width)


def test_edges_at_or_below_counts_the_summed_edges_exactly():
    # values placed on the edges themselves and one rounding step either side of them
    from megu_lib.privacy import _edges_at_or_below
    rng = np.random.default_rng(5)
    shifts = np.linspace(-2, 2, 400)
    base = rng.uniform(-3, 3, 50)
    on = (base[:7, None] + shifts[rng.integers(0, 400, 7)][:, None]).ravel()
    values = np.sort(np.concatenate([on, np.nextafter(on, np.inf), np.nextafter(on, -np.inf),
                                     rng.uniform(-6, 6, 20), [-100.0, 100.0]]))
    exact = (base[:, None, None] + shifts[None, None, :] <= values[None, :, None]).sum(2)
    np.testing.assert_array_equal(_edges_at_or_below(base, shifts, values), exact)


def test_forget_quality_points_per_bucket():
    eps = np.array([0, 0.49, 0.5, 0.99, 1.0, 1.49, 1.5, 1.99, 2.0, FQ_EPSILON_CAP])
    points, max_eps = _points(eps, n_models=4)  # ceil(ln 3) = 2: four buckets
    assert max_eps == 2.0
    np.testing.assert_array_equal(points, [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0, 0])
    assert _points(np.array([1.9]), n_models=8)[1] == 2.0  # ceil(ln 7) = 2, where ln 8 would round up to 3
    points, max_eps = _points(np.array([5.9, 6.0]), n_models=512)  # ceil(ln 511) = 7
    assert max_eps == 7.0 and points[0] == 2.0 ** -11 and points[1] == 2.0 ** -12


def test_forget_quality_reads_the_shadow_layout():
    plan = shadow_plan(100, 16, 5, seed=2, fprs=(0.2,))
    u, r = _synthetic(plan, 0.0)
    fq = forget_quality(u, r)
    assert fq.n_models == 8 and fq.n_examples == 10
    dense = np.stack([u[plan.forgotten[:, j], j] for j in range(10)], axis=1)
    dense_r = np.stack([r[plan.forgotten[:, j], j] for j in range(10)], axis=1)
    np.testing.assert_array_equal(forget_quality(dense, dense_r).epsilons, fq.epsilons)


def test_forget_quality_bad_input_is_one_line():
    u = np.zeros((5, 3))
    _one_line_error(forget_quality, u[:2], u[:2], match="at least 3 models per side")
    ragged = np.ones((5, 3))
    ragged[0, 1] = np.nan
    _one_line_error(forget_quality, ragged, np.ones((5, 3)), match="same number of unlearned and retrained models")
    _one_line_error(forget_quality, u, u[:, :2], match="of one shape")
    _one_line_error(forget_quality, np.full((5, 3), np.inf), u, match="contain inf")


def test_competition_score_adjusts_for_utility():
    assert competition_score(0.5, 0.9, 1.0, 0.8, 0.9) == pytest.approx(0.5 * 0.9 * 0.8 / 0.9)
    assert competition_score(0.5, 90.0, 100.0, 80.0, 90.0) == pytest.approx(0.4)
    _one_line_error(competition_score, 1.5, 0.9, 1.0, 0.8, 0.9, match="in \\[0, 1\\]")
    _one_line_error(competition_score, 0.5, 0.9, 0.0, 0.8, 0.9, match="must be positive")
