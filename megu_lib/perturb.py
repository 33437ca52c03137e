"""Perturbing labels (MeGU step 2, MEGU_SPEC §4).

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

import torch

from .errors import check
from .training import predict_logits

RULES = ("product", "T", "prediction", "mix", "random")


def check_rule(rule: str, weight: float = 0.5) -> None:
    check(rule in RULES, f"unknown perturbing rule {rule!r}: use one of {', '.join(RULES)}")
    check(isinstance(weight, (int, float)) and 0 <= weight <= 1, f"mix weight must be in [0, 1], got {weight!r}")


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
    check_rule(rule, weight)
    n = len(y)
    if rule == "random":
        k = int(T.shape[1]) if T is not None else int(model.config["num_classes"])
        g = torch.Generator().manual_seed(int(seed))
        draw = torch.randint(0, k - 1, (n,), generator=g)
        return draw + (draw >= y).long()  # skip the own label: uniform over l != y
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
    score[torch.arange(n), y] = -float("inf")
    # ties (e.g. a row of zeros in T) are broken by the model's prediction, then by label order
    if probs is not None:
        score = score + 1e-9 * probs.float()
    return score.argmax(1)


def label_flow(y: torch.Tensor, y_p: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes x num_classes): how many samples of label i were sent to label j."""
    flow = torch.zeros((num_classes, num_classes), dtype=torch.long)
    flow.index_put_((y, y_p), torch.ones_like(y), accumulate=True)
    return flow
