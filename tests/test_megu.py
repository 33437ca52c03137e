"""MeGU's parts: perturbing labels, feature noises, Fragment-Align, the method and its ablations, UNSIR."""
import pytest
import torch
import torch.nn.functional as F

from megu_lib import MeguError, evaluate, list_methods, make_request, unlearn
from megu_lib.noise import noise_bank, train_noises
from megu_lib.perturb import RULES, label_flow, perturbing_labels


def _state(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("rule", RULES)
def test_perturbing_labels_never_equal_true_label(trained_small, small, rule):
    x, y = small.train_x[:300], small.train_y[:300]
    T = torch.rand(10, 10)
    yp = perturbing_labels(trained_small, x, y, y, T, rule=rule, seed=0)
    assert yp.shape == y.shape and (yp != y).all()
    assert ((yp >= 0) & (yp < 10)).all()


def test_perturbing_rules_follow_their_definition(trained_small, small):
    x, y = small.train_x[:200], small.train_y[:200]
    T = torch.zeros(10, 10)
    T[:, 3] = 1.0  # the judge sends everything to class 3 (or 4 when the sample is a 3)
    T[3, 4] = 1.0
    yp = perturbing_labels(trained_small, x, y, y, T, rule="T")
    assert (yp[y != 3] == 3).all() and (yp[y == 3] == 4).all()
    probs = torch.rand(200, 10)
    masked = probs.clone()
    masked[torch.arange(200), y] = -1
    assert torch.equal(perturbing_labels(trained_small, x, y, y, None, rule="prediction", probs=probs),
                       masked.argmax(1))


def test_perturbing_labels_subclass_stays_out_of_own_superclass(trained_small, small):
    coarse = small.coarse_train[:200]
    T = torch.rand(10, 4)
    yp = perturbing_labels(trained_small, small.train_x[:200], coarse, small.train_y[:200], T, rule="T",
                           probs=torch.rand(200, 4))
    assert (yp != coarse).all()


def test_bad_rule_and_flow():
    with pytest.raises(MeguError, match="perturbing rule must be one of .*got 'nearest'"):
        perturbing_labels(None, None, torch.zeros(1, dtype=torch.long), None, None, rule="nearest")
    flow = label_flow(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0]), 3)
    assert flow.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0]]


def test_positive_noise_lowers_and_negative_raises_class_loss(trained_small, small):
    shape = small.image_shape
    base = torch.randn(4, *shape) * 0.1
    for label in (1, 6):
        pos = train_noises(trained_small, [label], sign=1, shape=shape, bank=4, steps=30)[0]
        neg = train_noises(trained_small, [label], sign=-1, shape=shape, bank=4, steps=30, eps=0.3)[0]
        target = torch.full((4,), label)
        with torch.no_grad():
            ce = lambda x, target=target: F.cross_entropy(trained_small(x), target).item()
            assert ce(pos) < ce(base) < ce(neg)
        assert neg.abs().max() <= 0.3 + 1e-6


def test_noise_bank_is_cached_with_recorded_time(trained_small, small, tmp_path):
    a, s1 = noise_bank(trained_small, [2, 5], sign=1, shape=small.image_shape, steps=3, cache=tmp_path)
    b, s2 = noise_bank(trained_small, [5, 2], sign=1, shape=small.image_shape, steps=3, cache=tmp_path)
    assert s1 == s2 > 0 and torch.equal(a[5], b[5])
    with pytest.raises(MeguError, match="noise steps"):
        noise_bank(trained_small, [2], sign=1, shape=small.image_shape, steps=0, cache=tmp_path)


def test_megu_and_ablations_registered():
    names = list_methods()
    for n in ("megu", "megu_no_T", "megu_no_pos", "megu_no_neg", "megu_no_noise", "megu_random_label", "unsir"):
        assert n in names
    from megu_lib import get_method
    assert "use_pos" not in get_method("megu_no_pos").defaults
    assert "rule" not in get_method("megu_no_T").defaults


@pytest.mark.parametrize("method", ["megu_no_T", "megu_random_label", "unsir"])
def test_forgets_the_class_and_keeps_the_rest(method, trained_small, small, tmp_path):
    r = make_request(small, "class", forget="Trouser")
    before = _state(trained_small)
    orig = evaluate(trained_small, small, r)
    # two passes on this 3k-sample problem. UNSIR at the SSD benchmark's Adam lr 1e-4 barely
    # moves this small model (Trouser 93 -> 88 %), at its authors' 0.02 / 0.01 it wrecks it
    # (retained 33 %); Adam at 1e-3 forgets Trouser and keeps the rest (measured: 0 %, 69.9 %)
    new, seconds, details = unlearn(method, trained_small, small, r, cache=tmp_path, **(
        {"epochs": 2.0} if method.startswith("megu") else {"impair_epochs": 2.0, "impair_lr": 1e-3,
                                                           "repair_lr": 1e-3}))
    assert all(torch.equal(before[k], v) for k, v in trained_small.state_dict().items())
    after = evaluate(new, small, r)
    assert after["forget_acc"] < orig["forget_acc"] - 40 and after["test_forget_acc"] < orig["test_forget_acc"] - 40
    # loose on purpose: on a 3k-sample model of 71 % retained accuracy two passes cost the
    # random-label ablation 9-17 points at this seed (float32 / bf16), and other seeds of the
    # model spread far wider (measured: 40-62 % retained); still catches a collapse
    assert after["test_retain_acc"] > orig["test_retain_acc"] - 20
    assert seconds > 0


def test_megu_with_given_transition_matrix(trained_small, small, tmp_path):
    r = make_request(small, "class", forget="Sneaker")
    T = torch.zeros(10, 10)
    T[:, 5] = 1.0  # everything to Sandal
    new, _, details = unlearn("megu", trained_small, small, r, transition=T, rule="T", cache=tmp_path)
    assert details["perturbing_labels"][5] == len(r.forget_idx)
    with pytest.raises(MeguError):
        unlearn("megu", trained_small, small, r, transition=torch.full((10, 9), 0.5), cache=tmp_path)
    with pytest.raises(MeguError, match="epochs"):
        unlearn("megu", trained_small, small, r, transition=T, epochs=float("nan"), cache=tmp_path)


def test_megu_subclass_and_random(small, tiny_train, tmp_path):
    from megu_lib import fit_model
    coarse = fit_model(small, arch="small_cnn", train=tiny_train, seed=0, width=12, level="coarse", cache=tmp_path)
    r = make_request(small, "subclass", forget="Shirt")
    new, _, det = unlearn("megu_no_T", coarse, small, r, cache=tmp_path)
    tops = small.coarse_classes.index("tops")
    assert det["perturbing_labels"][tops] == 0  # "other": a forgotten Shirt leaves "tops"
    # "any": the coarse model's own prediction for its Shirts is mostly "tops", and may stay
    _, _, det = unlearn("megu_no_T", coarse, small, r, cache=tmp_path, subclass_labels="any")
    assert det["perturbing_labels"][tops] > len(r.forget_idx) / 2
    from megu_lib.methods.megu import megu_parts
    parts = megu_parts(coarse, small, r, judge="uniform", subclass_labels="any")
    assert (parts.T >= 0).all() and parts.T.shape == (10, 4)  # normalised over all coarse labels


def test_soft_targets_are_distributions_without_the_own_label():
    from megu_lib.perturb import soft_targets
    scores = torch.tensor([[-float("inf"), 0.6, 0.2, 0.0], [0.0, -float("inf"), 0.0, 0.0]])
    t = soft_targets(scores)
    assert torch.allclose(t.sum(1), torch.ones(2))
    assert t[0, 0] == 0 and t[1, 1] == 0
    assert torch.allclose(t[0], torch.tensor([0.0, 0.75, 0.25, 0.0]))
    assert torch.allclose(t[1], torch.tensor([1 / 3, 0.0, 1 / 3, 1 / 3]))  # no positive score: uniform


def test_megu_soft_targets_and_noise_prob_run_and_are_checked(trained_small, small, tmp_path):
    r = make_request(small, "class", forget="Trouser")
    orig = evaluate(trained_small, small, r)
    new, _, _ = unlearn("megu", trained_small, small, r, cache=tmp_path, targets="soft", noise_prob=0.5, epochs=2.0)
    after = evaluate(new, small, r)
    assert after["forget_acc"] < orig["forget_acc"] - 40
    # the same seed gives the same model (the noise coin has its own seeded generator)
    again, _, _ = unlearn("megu", trained_small, small, r, cache=tmp_path, targets="soft", noise_prob=0.5, epochs=2.0)
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), again.state_dict().values()))
    for bad in (dict(targets="fuzzy"), dict(noise_prob=1.5), dict(label_smoothing=-0.1)):
        with pytest.raises(MeguError):
            unlearn("megu", trained_small, small, r, cache=tmp_path, **bad)
