"""The baseline unlearning methods: contract, scenarios, forgetting, hyperparameter checks."""
import math

import pytest
import torch

from megu_lib import MeguError, evaluate, fit_model, get_method, list_methods, make_request, unlearn

# Shorter (some stronger) settings so each run takes a second or two on 2 cores: the
# defaults are the references', tuned for CIFAR at full size, and on this tiny problem
# either take minutes or take too few steps to forget (scrub, bad_teacher).
FAST = {
    "finetune": dict(epochs=1),
    "random_label": dict(epochs=1, lr=1e-3),
    "neggrad": dict(epochs=1, alpha=0.95),
    "bad_teacher": dict(lr=1e-3),
    "ssd": dict(),
    "scrub": dict(lr=5e-3, forget_batch_size=32),
    "salun": dict(epochs=1),
    "l1_sparse": dict(epochs=1, batch_size=64),
}
METHODS = sorted(FAST)
# with one class in ten forgotten and D containing it, forget/D importance ratios stay
# below about 10, so the ResNet18 default alpha 10 selects nothing (see ssd's docstring)
CLASS_ONLY = {"ssd": dict(alpha=5.0)}


def state(model):
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def coarse_small(small, tiny_train, tmp_path_factory):
    """The small CNN trained on the coarse labels, for the subclass scenario."""
    return fit_model(small, arch="small_cnn", train=tiny_train, seed=0, width=12, level="coarse",
                     cache=tmp_path_factory.mktemp("coarse_cache"))


@pytest.fixture(scope="module")
def class_request(small):
    return make_request(small, "class", forget="Trouser")


@pytest.fixture(scope="module")
def original_metrics(trained_small, small, class_request):
    return evaluate(trained_small, small, class_request)


def test_all_registered_with_sources():
    names = list_methods()
    for name in METHODS:
        assert name in names
        spec = get_method(name)
        assert spec.summary and spec.source
        assert spec.fn.__doc__ and len(spec.fn.__doc__) > 100


@pytest.mark.parametrize("method", METHODS)
def test_class_scenario_forgets_and_leaves_original(method, trained_small, small, class_request, original_metrics):
    before = state(trained_small)
    hp = {**FAST[method], **CLASS_ONLY.get(method, {})}
    new, seconds, details = unlearn(method, trained_small, small, class_request, **hp)
    assert details["method"] == method and seconds > 0
    assert same_state(before, state(trained_small)), "the given model was modified"
    assert not same_state(before, state(new)), "the method changed nothing"
    after = evaluate(new, small, class_request)
    assert after["forget_acc"] < original_metrics["forget_acc"] - 40, (method, after)
    assert after["test_forget_acc"] < original_metrics["test_forget_acc"] - 40, (method, after)
    # forgetting one class must not wreck the other nine
    assert after["retain_acc"] > original_metrics["retain_acc"] - 15, (method, after)


@pytest.mark.parametrize("method", METHODS)
def test_subclass_and_random_scenarios_run(method, small, coarse_small, trained_small):
    for model, request in ((coarse_small, make_request(small, "subclass", forget="Shirt")),
                           (trained_small, make_request(small, "random", fraction=0.05, seed=1))):
        before = state(model)
        hp = {**FAST[method], **({"epochs": 0.3} if "epochs" in get_method(method).defaults else {})}
        new, _, details = unlearn(method, model, small, request, **hp)
        assert same_state(before, state(model))
        after = state(new)
        # SSD may rightly find no parameter special to the forget set
        assert not same_state(before, after) or details.get("n_dampened") == 0
        assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
        assert new.head.out_features == request.num_classes(small)


def test_ssd_only_shrinks_parameters(trained_small, small, class_request):
    new, _, details = unlearn("ssd", trained_small, small, class_request, alpha=5.0)
    assert 0 < details["fraction_dampened"] < 1
    for (name, p), q in zip(trained_small.named_parameters(), new.parameters()):
        assert (q.detach().abs() <= p.detach().abs() + 1e-7).all(), name
        # dampened entries keep their sign: beta lies in [0, 1]
        assert (q.detach() * p.detach() >= 0).all(), name


def test_salun_moves_only_salient_weights(trained_small, small, class_request):
    new, _, details = unlearn("salun", trained_small, small, class_request, epochs=0.5, mask_ratio=0.1)
    assert details["mask_fraction"] == pytest.approx(0.1, abs=1e-3)
    changed = sum(int((p.detach() != q.detach()).sum()) for p, q in zip(trained_small.parameters(), new.parameters()))
    total = sum(p.numel() for p in trained_small.parameters())
    assert 0 < changed <= math.ceil(0.1 * total)


def test_l1_sparse_penalty_shrinks_the_norm(trained_small, small, class_request):
    run = lambda gamma: unlearn("l1_sparse", trained_small, small, class_request, epochs=0.4, batch_size=64,
                                gamma=gamma).details["l1_norm"]
    plain, sparse = run(0.0), run(5e-3)
    assert sparse < 0.95 * plain


def test_seeded_runs_repeat(trained_small, small, class_request):
    for method, hp in (("scrub", dict(epochs=0.5, forget_batch_size=64)), ("salun", dict(epochs=0.2))):
        a = unlearn(method, trained_small, small, class_request, seed=4, **hp).model
        b = unlearn(method, trained_small, small, class_request, seed=4, **hp).model
        assert same_state(state(a), state(b)), method


BAD = [
    ("finetune", dict(epochs=0), "epochs"),
    ("finetune", dict(lr=float("nan")), "lr"),
    ("finetune", dict(batch_size=0), "batch_size"),
    ("finetune", dict(augment="yes"), "augment"),
    ("random_label", dict(lr=-1e-4), "lr"),
    ("neggrad", dict(alpha=1.5), r"alpha must be a number in \[0, 1\]"),
    ("neggrad", dict(alpha=float("nan")), "alpha"),
    ("neggrad", dict(forget_batch_size=2.5), "forget_batch_size"),
    ("neggrad", dict(anchor=-1), "anchor"),
    ("bad_teacher", dict(temperature=0), "temperature"),
    ("bad_teacher", dict(retain_fraction=0), r"retain_fraction must be a number in \(0, 1\]"),
    ("bad_teacher", dict(retain_fraction=1.2), "retain_fraction"),
    ("ssd", dict(alpha=-10), "alpha"),
    ("ssd", dict(lam=float("inf")), "lam"),
    ("ssd", dict(importance_on="test"), "importance_on must be one of 'train', 'retain'"),
    ("ssd", dict(importance_fraction=0), "importance_fraction"),
    ("scrub", dict(msteps=-1), "msteps"),
    ("scrub", dict(temperature=float("nan")), "temperature"),
    ("scrub", dict(gamma=-0.5), "gamma"),
    ("scrub", dict(epochs=True), "epochs"),
    ("salun", dict(mask_ratio=0), "mask_ratio"),
    ("salun", dict(mask_ratio=1.5), "mask_ratio"),
    ("salun", dict(weight_decay=-1), "weight_decay"),
    ("l1_sparse", dict(gamma=-5e-4), "gamma"),
    ("l1_sparse", dict(gamma=float("nan")), "gamma"),
]


@pytest.mark.parametrize("method,hp,match", BAD, ids=[f"{m}-{next(iter(h))}" for m, h, _ in BAD])
def test_bad_hyperparameters(method, hp, match, trained_small, small, class_request):
    before = state(trained_small)
    with pytest.raises(MeguError, match=match) as err:
        unlearn(method, trained_small, small, class_request, **hp)
    assert "\n" not in str(err.value) and method in str(err.value)
    assert same_state(before, state(trained_small))
