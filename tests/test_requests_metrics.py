import math

import pytest
import torch

from megu_lib import MeguError, evaluate, gap_to_reference, make_request
from megu_lib.metrics import accuracy, entropy, mia_entropy, mia_loss_threshold


def test_class_request(small):
    r = make_request(small, "class", forget="Shirt")
    assert r.forget == ("Shirt",) and r.forget_classes == (6,)
    assert (small.train_y[r.forget_idx] == 6).all() and (small.train_y[r.retain_idx] != 6).all()
    assert len(r.forget_idx) + len(r.retain_idx) == len(small.train_y)
    assert r.test_forget_mask.sum() == (small.test_y == 6).sum()
    assert make_request(small, "class", forget=6).key() == r.key()
    assert make_request(small, "class", forget="shirt").forget == ("Shirt",)


def test_subclass_request(small):
    r = make_request(small, "subclass", forget="Shirt")
    assert r.level == "coarse" and r.num_classes(small) == 4
    y = r.train_labels(small)
    tops = small.coarse_classes.index("tops")
    assert (y[r.forget_idx] == tops).all()
    # the superclass's other fine classes stay in the retain set
    assert (small.train_y[r.retain_idx] == 0).any() and (y[r.retain_idx] == tops).any()


def test_random_request(small):
    r = make_request(small, "random", fraction=0.1, seed=1)
    assert len(r.forget_idx) == 300 and r.test_forget_mask is None
    assert not r.forgets_classes
    assert torch.equal(r.forget_idx, make_request(small, "random", fraction=0.1, seed=1).forget_idx)
    assert not torch.equal(r.forget_idx, make_request(small, "random", fraction=0.1, seed=2).forget_idx)
    assert len(make_request(small, "random", forget=17).forget_idx) == 17


def test_bad_requests(small, tmp_path):
    with pytest.raises(MeguError, match="choose from T-shirt/top, Trouser"):
        make_request(small, "class", forget="Hat")
    with pytest.raises(MeguError, match="unknown scenario"):
        make_request(small, "sub-class", forget="Shirt")
    for bad in (0, 1.0, 1.5, -0.1):
        with pytest.raises(MeguError, match=r"\(0, 1\)"):
            make_request(small, "random", fraction=bad)
    with pytest.raises(MeguError, match="whole training set"):
        make_request(small, "class", forget=list(small.classes))
    with pytest.raises(MeguError, match="only fine class"):
        make_request(small, "subclass", forget="Bag")
    import dataclasses
    flat = dataclasses.replace(small, coarse_train=None, coarse_test=None, coarse_classes=None)
    with pytest.raises(MeguError, match="needs coarse labels"):
        make_request(flat, "subclass", forget="Shirt")


def test_accuracy_and_entropy_exact():
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 1])) == 75.0
    assert math.isnan(accuracy(logits[:0], torch.tensor([], dtype=torch.long)))
    assert entropy(torch.zeros(1, 4)).item() == pytest.approx(math.log(4))
    assert entropy(torch.tensor([[100.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)
    gap = gap_to_reference({"retain_acc": 90, "forget_acc": 10, "test_acc": 80, "mia": 20},
                           {"retain_acc": 92, "forget_acc": 0, "test_acc": 80, "mia": 24})
    assert gap["gap"] == pytest.approx((2 + 10 + 0 + 4) / 4) and gap["gap_forget_acc"] == 10


def test_mia_on_hand_made_logits():
    g = torch.Generator().manual_seed(0)
    confident = (torch.randn(400, 10, generator=g)
                 + torch.nn.functional.one_hot(torch.zeros(400, dtype=torch.long), 10) * 12)
    unsure = torch.randn(400, 10, generator=g) * 0.3
    assert mia_entropy(confident, unsure, confident[:100]) == 100.0
    assert mia_entropy(confident, unsure, unsure[:100]) == 0.0
    y = torch.zeros(400, dtype=torch.long)
    assert mia_loss_threshold(confident, y, unsure, y, confident[:50], y[:50]) == 100.0
    assert mia_loss_threshold(confident, y, unsure, y, unsure[:50], y[:50]) == 0.0


def test_mia_calls_training_data_members_more_often(small):
    """An over-fit model: its own training samples look like members more often than held-out ones."""
    from megu_lib import build_model, predict_logits, train_config, train_model
    x, y = small.train_x[:600], small.train_y[:600]
    m = build_model("small_cnn", small, seed=0, width=16)
    train_model(m, x, y, train_config("fast", epochs=25, augment=False, batch_size=64, lr=0.05,
                                      weight_decay=0.0), seed=0)
    lm, lt = predict_logits(m, x[:300]), predict_logits(m, small.test_x)
    own, held = predict_logits(m, x[300:]), predict_logits(m, small.test_x[:300])
    assert mia_entropy(lm, lt, own) > mia_entropy(lm, lt, held) + 10


def test_evaluate_keys_and_ranges(small, trained_small):
    r = make_request(small, "class", forget="Trouser")
    m = evaluate(trained_small, small, r)
    assert set(m) == {"retain_acc", "forget_acc", "test_acc", "test_forget_acc", "test_retain_acc", "mia", "mia_loss",
                      "mia_auc", "mia_loss_auc"}
    assert all(0 <= v <= 100 for v in m.values())
    assert m["test_acc"] > 60
    assert set(evaluate(trained_small, small, make_request(small, "random", fraction=0.05))) == \
        {"retain_acc", "forget_acc", "test_acc", "mia", "mia_loss", "mia_auc", "mia_loss_auc"}
    sub = evaluate(trained_small, small, r, max_retain=500)
    assert abs(sub["retain_acc"] - m["retain_acc"]) < 6


def test_attack_auc_measures_the_attacks_power():
    from megu_lib.metrics import attack_auc
    g = torch.Generator().manual_seed(0)
    members, nonmembers = torch.randn(500, generator=g) + 3, torch.randn(500, generator=g)
    assert attack_auc(members, nonmembers) > 95  # well separated: a powerful attack
    same = torch.randn(500, generator=g)
    assert 40 < attack_auc(same, nonmembers) < 60  # indistinguishable: chance
    assert attack_auc(nonmembers, members) < 5


def test_evaluate_reports_each_attacks_auc(trained_small, small):
    metrics = evaluate(trained_small, small, make_request(small, "class", forget="Trouser"))
    # a 3-epoch model on 3k samples barely overfits: both attacks sit near chance on it
    assert 45 <= metrics["mia_auc"] <= 70 and 45 <= metrics["mia_loss_auc"] <= 70
