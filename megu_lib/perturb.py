"""Perturbing labels (MeGU step 2; the book page *The method, and our reading of it*, *Step 2*).

For each forget sample (x, y) the paper chooses a wrong label that is semantically close:

    y_p = argmax_{l ≠ y} φ(T[c(x), l], p_θ(l | x))

with T the transition matrix (rows: the sample's concept c(x) — its class, or its fine
class in the subclass scenario; columns: the model's labels) and p_θ the trained
model's softmax. The paper does not give φ; ours are named rules:

* ``product`` (default): T[c, l] · p(l | x)
* ``T``: T[c, l] alone (the judge decides, the model does not)
* ``prediction``: p(l | x) alone (the model's own runner-up; the "MeGU without T" ablation)
* ``mix``: w · T[c, l] + (1 − w) · p(l | x)
* ``random``: a seeded uniformly random l ≠ y (the "random perturbing label" ablation)

The sample's own label is always excluded, so y_p ≠ y for every sample; in the subclass
scenario the labels are superclasses and the sample's own superclass is excluded.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import pandas as pd

from . import hparams as hp
from .errors import check
from .training import predict_logits

RULES = ("product", "T", "prediction", "mix", "random")
#: The rule phi and the ``mix`` rule's weight, declared once (MeGU's ``rule`` and ``mix_weight``).
RULE = hp.Choice("product", RULES, search=hp.one_of("product", "T", "prediction", "mix"), help="the rule phi")
MIX_WEIGHT = hp.fraction(0.5, search=hp.linear_range(0.0, 1.0), help="weight of T in the mix rule")


def check_rule(rule: str, weight: float = 0.5) -> None:
    hp.check_values({"rule": RULE, "mix_weight": MIX_WEIGHT}, {"rule": rule, "mix_weight": weight}, "perturbing ")


def perturbing_scores(model, x: torch.Tensor, y: torch.Tensor, concepts: torch.Tensor, T: torch.Tensor | None,
                      *, rule: str = "product", weight: float = 0.5, seed: int = 0, device=None,
                      probs: torch.Tensor | None = None, num_classes: int | None = None,
                      exclude_own: bool = True) -> torch.Tensor:
    """The scores φ(T[c(x), l], p(l | x)) of every label for every forget sample, (N, K) float.

    Arguments as :func:`perturbing_labels`. The sample's own label scores ``-inf`` (unless
    ``exclude_own`` is False: the subclass scenario's "any coarse label" reading, where a
    forgotten fine class may keep its coarse label); the ``random`` rule gives one seeded
    random label a score of 1 and the others 0.
    """
    check_rule(rule, weight)
    n = len(y)
    if rule == "random":
        k = int(T.shape[1]) if T is not None else int(num_classes or model.config["num_classes"])
        g = torch.Generator().manual_seed(int(seed))
        draw = torch.randint(0, k - 1, (n,), generator=g)
        if exclude_own:
            pick = draw + (draw >= y).long()  # skip the own label: uniform over l != y
        else:
            pick = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(int(seed)))
        score = torch.zeros((n, k))
        score[torch.arange(n), pick] = 1.0
        if exclude_own:
            score[torch.arange(n), y] = -float("inf")
        return score
    if rule != "prediction":
        check(T is not None, f"perturbing rule {rule!r} needs a transition matrix")
        check(int(concepts.max()) < T.shape[0], "a sample's concept is outside the transition matrix's rows")
    if probs is None and rule != "T":
        probs = predict_logits(model, x, device=device).softmax(1)
    if rule == "T":
        score = T[concepts].float().clone()
    elif rule == "prediction":
        score = probs.float().clone()
    elif rule == "product":
        score = T[concepts].float() * probs.float()
    else:
        score = weight * T[concepts].float() + (1 - weight) * probs.float()
    check(score.shape == (n, score.shape[1]) and score.shape[1] >= 2, "scores have the wrong shape")
    if exclude_own:
        score[torch.arange(n), y] = -float("inf")
    # ties (e.g. a row of zeros in T) are broken by the model's prediction, then by label order
    if probs is not None:
        score = score + 1e-9 * probs.float()
    return score


def perturbing_labels(model, x: torch.Tensor, y: torch.Tensor, concepts: torch.Tensor, T: torch.Tensor | None,
                      *, rule: str = "product", weight: float = 0.5, seed: int = 0, device=None,
                      probs: torch.Tensor | None = None) -> torch.Tensor:
    """Perturbing labels for forget samples.

    ``x``: images (N, C, H, W); ``y``: their labels in the model's label space (N,);
    ``concepts``: each sample's row in ``T`` (N,) — its class, or its fine class in the
    subclass scenario; ``T``: (K_concepts, K_labels) transition matrix (None only for the
    ``prediction`` and ``random`` rules). ``probs``: the model's softmax on ``x`` if
    already computed. Returns int64 labels (N,), never equal to ``y``.
    """
    return perturbing_scores(model, x, y, concepts, T, rule=rule, weight=weight, seed=seed, device=device,
                             probs=probs).argmax(1)


def soft_targets(scores: torch.Tensor) -> torch.Tensor:
    """Target distributions from perturbing scores (ours, not the paper's): each row's scores
    clipped at zero (the own label gets 0) and normalised to sum 1; a row with no positive
    score becomes uniform over the other labels. (N, K) float."""
    w = scores.clamp(min=0).nan_to_num(0.0, posinf=0.0, neginf=0.0)
    empty = w.sum(1) <= 0
    if empty.any():
        w[empty] = torch.isfinite(scores[empty]).float()
    return w / w.sum(1, keepdim=True)


def label_flow(y: torch.Tensor, y_p: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes x num_classes): how many samples of label i were sent to label j."""
    flow = torch.zeros((num_classes, num_classes), dtype=torch.long)
    flow.index_put_((y, y_p), torch.ones_like(y), accumulate=True)
    return flow


def target_shares(labels: dict, names) -> "pd.DataFrame":
    """Where each labelling sends the samples: {rule name: perturbing labels (N,)} ->
    DataFrame (rows: rules, columns: label ``names``) of the share of samples (percent)."""
    import pandas as pd
    rows = {}
    for rule, y_p in labels.items():
        counts = torch.bincount(torch.as_tensor(y_p).long(), minlength=len(names)).double()
        check(len(counts) == len(names), f"labels of {rule!r} exceed the {len(names)} label names")
        rows[rule] = (100 * counts / max(1, len(y_p))).tolist()
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(names))


def rule_agreement(labels: dict) -> "pd.DataFrame":
    """Share of samples (percent) that two labellings send to the same label, for every pair
    of {rule name: perturbing labels (N,)} (square DataFrame, 100 on the diagonal)."""
    import pandas as pd
    names = list(labels)
    ys = [torch.as_tensor(labels[n]).long() for n in names]
    check(len({len(y) for y in ys}) <= 1, "all labellings must cover the same samples")
    out = [[100.0 * float((a == b).double().mean()) if len(a) else float("nan") for b in ys] for a in ys]
    return pd.DataFrame(out, index=names, columns=names)
