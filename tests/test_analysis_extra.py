"""Small analysis helpers the book's chapters 1-4 use: rank correlation, confusion rates,
overlap vs. confusion, forgetting difficulty, judge agreement, perturbing-label shares
and agreement, and the noises' effect on a frozen model."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import megu_lib as ml
from megu_lib.concepts import TransitionMatrix, compare_transition_matrices, judge_agreement
from megu_lib.entanglement import confusion_rates, forgetting_difficulty, overlap_confusion
from megu_lib.metrics import spearman
from megu_lib.noise import noise_effect, stack_bank
from megu_lib.perturb import rule_agreement, target_shares


def test_spearman_matches_ranks_and_is_nan_without_warning_when_undefined():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = [0.1, 0.5, 0.5, 0.9, 0.3], [3, 1, 2, 5, 4]
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
        assert math.isnan(spearman([1, 2], [1, 2]))
        assert spearman([1, 2, float("nan"), 3], [1, 2, 9, 3]) == pytest.approx(1.0)
    with pytest.raises(ml.MeguError):
        spearman([1, 2, 3], [1, 2])


def test_confusion_rates_and_pairs():
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 0, 2]), 3).float()
    conf = confusion_rates(logits, y, ["a", "b", "c"])
    assert conf.loc["a", "b"] == 50 and conf.loc["b", "b"] == 100 and conf.loc["c", "a"] == 50
    assert np.allclose(conf.sum(1), 100)
    overlap = pd.DataFrame(np.array([[1, .5, 0], [.5, 1, .2], [0, .2, 1]]), index=list("abc"), columns=list("abc"))
    pairs = overlap_confusion(overlap, conf)
    assert list(pairs.pair) == ["a / b", "a / c", "b / c"]
    assert pairs.set_index("pair").loc["a / b", "confusion"] == 25  # mean of 50 and 0
    assert pairs.set_index("pair").loc["a / c", "confusion"] == 25
    with pytest.raises(ml.MeguError):
        overlap_confusion(overlap, conf.iloc[::-1])


def test_forgetting_difficulty_runs_one_short_finetune_per_class(small, trained_small):
    df = forgetting_difficulty(trained_small, small, ["Trouser", "Shirt"], epochs=0.1)
    assert list(df["class"]) == ["Trouser", "Shirt"]
    before = ml.per_class_accuracy(trained_small, small)
    assert df.acc_before.tolist() == [before["Trouser"], before["Shirt"]]
    assert (df.acc_after <= 100).all() and (df.seconds > 0).all()
    assert df.left.iloc[0] == pytest.approx(100 * df.acc_after.iloc[0] / df.acc_before.iloc[0])


def _tm(matrix, names=("a", "b", "c", "d")):
    m = torch.as_tensor(matrix, dtype=torch.float32)
    k = len(names)
    return TransitionMatrix(matrix=m, raw=m, concepts=tuple(names), labels=tuple(names), own_label=torch.arange(k),
                            concept_level="fine", level="fine", judge="x", model_id=None, options={}, n_exemplars=1,
                            seed=0, split="train", seconds=0.0)


def test_compare_transition_matrices():
    a = _tm([[0, 1, .5, 0], [1, 0, .2, .4], [.1, .9, 0, 1], [1, .5, 0, 0]])
    assert compare_transition_matrices(a, a) == {"spearman": pytest.approx(1.0), "top1": 100.0, "rows": 4}
    flipped = _tm(torch.where(torch.eye(4, dtype=torch.bool), 0.0, 1.0 - a.matrix))
    out = compare_transition_matrices(a, flipped)
    assert out["spearman"] == pytest.approx(-1.0) and out["top1"] == 0.0
    uniform = _tm(1.0 - torch.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compare_transition_matrices(a, uniform)
    assert math.isnan(out["spearman"]) and math.isnan(out["top1"]) and out["rows"] == 0
    table = judge_agreement({"a": a, "flipped": flipped, "uniform": uniform})
    assert len(table) == 9 and set(table.columns) == {"judge_a", "judge_b", "spearman", "top1", "rows"}
    square = table.pivot(index="judge_a", columns="judge_b", values="spearman")
    assert square.loc["a", "flipped"] == pytest.approx(-1.0)
    with pytest.raises(ml.MeguError):
        compare_transition_matrices(a, _tm(a.matrix, names=("a", "b", "c", "e")))


def test_target_shares_and_rule_agreement():
    labels = {"product": torch.tensor([1, 1, 2, 3]), "random": torch.tensor([1, 0, 2, 2])}
    shares = target_shares(labels, ["a", "b", "c", "d"])
    assert list(shares.index) == ["product", "random"] and list(shares.columns) == ["a", "b", "c", "d"]
    assert shares.loc["product"].tolist() == [0, 50, 25, 25]
    assert np.allclose(shares.sum(1), 100)
    agree = rule_agreement(labels)
    assert agree.loc["product", "random"] == 50 and agree.loc["random", "random"] == 100
    with pytest.raises(ml.MeguError):
        rule_agreement({"a": torch.tensor([1]), "b": torch.tensor([1, 2])})


class _Linear(torch.nn.Module):
    """Logits = the mean intensity of each of 3 image quadrants, times 10: predictable noises."""

    def forward(self, x):
        h = x.shape[-1] // 2
        return 10 * torch.stack([x[..., :h, :h].mean((1, 2, 3)), x[..., :h, h:].mean((1, 2, 3)),
                                 x[..., h:, :h].mean((1, 2, 3))], 1)


def test_noise_effect_moves_predictions():
    model = _Linear()
    x = torch.zeros(6, 1, 4, 4)
    x[..., :2, :2] = 1.0  # every sample looks like class 0
    y, y_p = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    pos = torch.zeros(3, 1, 1, 4, 4)
    pos[1, 0, :, :2, 2:] = 2.0  # N_pos[1] lights up quadrant 1
    neg = torch.zeros(3, 1, 1, 4, 4)
    neg[0, 0, :, :2, :2] = -1.0  # N_neg[0] switches off quadrant 0
    df = noise_effect(model, x, y, y_p, stack_bank({1: pos[1]}, 3, (1, 4, 4)), stack_bank({0: neg[0]}, 3, (1, 4, 4)),
                      device="cpu").set_index("input")
    assert list(df.index) == ["clean x", "x + N_pos[y_p]", "x + N_neg[y]", "x + both"]
    assert df.loc["clean x", "acc_y"] == 100 and df.loc["clean x", "pred_yp"] == 0
    assert df.loc["x + N_pos[y_p]", "pred_yp"] == 100
    assert df.loc["x + both", "p_yp"] > df.loc["x + N_pos[y_p]", "p_yp"] > df.loc["clean x", "p_yp"]
    assert df.loc["x + N_neg[y]", "p_y"] < df.loc["clean x", "p_y"]
    assert df.loc["clean x", "top_label"] == 0 and df.loc["x + N_pos[y_p]", "top_label"] == 1
    assert df.loc["clean x", "top_share"] == 100
    only = noise_effect(model, x, y, y_p, None, neg, device="cpu")
    assert list(only.input) == ["clean x", "x + N_neg[y]"]


def test_nearest_table_marks_ties():
    from megu_lib.concepts import nearest_table
    a = _tm([[0, 1, .5, 0], [1, 0, .2, .4], [.1, .9, 0, 1], [1, .5, 0, 0]])
    uniform = _tm(1.0 - torch.eye(4))
    table = nearest_table({"a": a, "uniform": uniform}, top=2)
    assert list(table.columns) == ["a", "uniform"] and list(table.index) == ["a", "b", "c", "d"]
    assert table.loc["a", "a"] == "b, c" and table.loc["c", "a"] == "d, b"
    assert (table["uniform"] == "all tied").all()
