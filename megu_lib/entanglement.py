"""Entanglement of class concepts in feature space — our operationalisation of the
paper's motivation (the book's chapter *Entanglement* and page *The method, and our reading of it*).

The paper argues qualitatively that concepts share "associated" feature patterns
P_ij = P_i ∩ P_j and keep "unique" ones P_i minus P_ij, and that erasing shared features damages
neighbouring classes. We measure it on the penultimate activations of a trained model:

* per channel and class, the class-mean activation, standardised across classes
  (z[k, c] = (μ_k,c − mean_j μ_j,c) / std_j μ_j,c);
* P_k: the top-``q`` fraction of channels by z[k] (default q = 0.1);
* the Jaccard overlap |P_i ∩ P_j| / |P_i ∪ P_j| for all class pairs;
* for a forget class, its shared channels (in P_k and in some other class's pattern)
  and its unique channels (in P_k only);
* how those channels' activations move under an unlearning method, and each retained
  class's overlap with the forget class against its accuracy drop (collateral damage).

All of this is ours (the paper gives no formula); ``q`` and the standardisation are parameters.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from .errors import check
from .training import predict_logits


def penultimate_features(model, x: torch.Tensor, *, device=None, batch_size: int | None = None) -> torch.Tensor:
    """Penultimate activations (N, D) of any megu_lib model."""
    return predict_logits(model, x, batch_size=batch_size, device=device, features=True)


def class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean feature per class (K, D)."""
    out = torch.zeros((num_classes, features.shape[1]))
    out.index_add_(0, labels, features.float())
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).float()
    return out / counts[:, None]


def channel_zscores(means: torch.Tensor) -> torch.Tensor:
    """Class-mean activations standardised across classes, per channel (K, D)."""
    return (means - means.mean(0, keepdim=True)) / (means.std(0, keepdim=True) + 1e-8)


@dataclasses.dataclass
class Patterns:
    """Feature patterns P_k of each class: a boolean (K, D) membership matrix, plus what made it."""

    members: torch.Tensor
    zscores: torch.Tensor
    means: torch.Tensor
    classes: tuple
    q: float

    def overlap(self) -> pd.DataFrame:
        """Jaccard overlap |P_i ∩ P_j| / |P_i ∪ P_j| of every pair of classes (K x K DataFrame)."""
        m = self.members.float()
        inter = m @ m.T
        union = m.sum(1, keepdim=True) + m.sum(1) - inter
        return pd.DataFrame((inter / union.clamp(min=1)).numpy(), index=self.classes, columns=self.classes)

    def entanglement(self) -> pd.Series:
        """Each class's mean overlap with the other classes (higher = more entangled)."""
        o = self.overlap().to_numpy().copy()
        np.fill_diagonal(o, np.nan)
        return pd.Series(np.nanmean(o, axis=1), index=self.classes, name="entanglement")

    def split(self, k: int) -> dict:
        """Channels of class ``k``'s pattern that other classes share, and those only it has."""
        mine = self.members[k]
        others = self.members[torch.arange(len(self.classes)) != k].any(0)
        return {"shared": (mine & others).nonzero().squeeze(1), "unique": (mine & ~others).nonzero().squeeze(1)}

    def shared_with(self, k: int) -> pd.Series:
        """Number of channels class ``k`` shares with each other class."""
        inter = (self.members[k][None] & self.members).sum(1).numpy()
        return pd.Series(inter, index=self.classes, name=f"shared with {self.classes[k]}")


def class_patterns(features: torch.Tensor, labels: torch.Tensor, classes, q: float = 0.1) -> Patterns:
    """P_k = the top-``q`` fraction of channels by the class-mean z-score of class k."""
    check(0 < q <= 1, f"pattern fraction q must be in (0, 1], got {q!r}")
    k = len(classes)
    means = class_means(features, labels, k)
    z = channel_zscores(means)
    n_top = max(1, int(round(q * features.shape[1])))
    members = torch.zeros_like(z, dtype=torch.bool)
    members.scatter_(1, z.topk(n_top, dim=1).indices, True)
    return Patterns(members, z, means, tuple(classes), q)


def model_patterns(model, data, *, level: str | None = None, q: float = 0.1, split: str = "train",
                   max_samples: int | None = 10000, seed: int = 0,
                   device=None) -> tuple[Patterns, torch.Tensor, torch.Tensor]:
    """Patterns of a trained model on (a seeded subset of) ``split``: (Patterns, features, labels)."""
    x = data.train_x if split == "train" else data.test_x
    y = data.targets(split, level)
    if max_samples is not None and len(y) > max_samples:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(y), generator=g)[:max_samples]
        x, y = x[idx], y[idx]
    feats = penultimate_features(model, x, device=device)
    return class_patterns(feats, y, data.class_names(level), q), feats, y


def channel_shift(patterns: Patterns, k: int, models: dict, x: torch.Tensor, y: torch.Tensor, *,
                  device=None) -> pd.DataFrame:
    """Mean activation of class ``k``'s shared and unique channels, per model, on samples of
    class ``k`` ("forget class") and of the other classes ("retained classes").

    ``models``: {name: model}, e.g. original, retrain, megu, unsir. Returns a tidy DataFrame
    (model, channels, samples, activation)."""
    parts = patterns.split(k)
    rows = []
    for name, m in models.items():
        f = penultimate_features(m, x, device=device)
        for ch_name, ch in parts.items():
            if len(ch) == 0:
                continue
            for s_name, mask in (("forget class", y == k), ("retained classes", y != k)):
                rows.append(dict(model=name, channels=ch_name, samples=s_name,
                                 activation=float(f[mask][:, ch].mean()) if mask.any() else float("nan")))
    return pd.DataFrame(rows)


def confusion_rates(logits: torch.Tensor, y: torch.Tensor, classes) -> pd.DataFrame:
    """Row-normalised confusion matrix in percent (K x K DataFrame): entry [i, j] is the
    share of samples of class i that the model labels j (rows sum to 100; NaN for a class
    without samples)."""
    k = len(classes)
    counts = torch.zeros((k, k), dtype=torch.float64)
    counts.index_put_((y.long(), logits.argmax(1).long()), torch.ones(len(y), dtype=torch.float64), accumulate=True)
    totals = counts.sum(1, keepdim=True)
    rates = torch.where(totals > 0, 100 * counts / totals.clamp(min=1), torch.full_like(counts, float("nan")))
    return pd.DataFrame(rates.numpy(), index=pd.Index(classes, name="true class"),
                        columns=pd.Index(classes, name="predicted class"))


def overlap_confusion(overlap: pd.DataFrame, confusion: pd.DataFrame) -> pd.DataFrame:
    """One row per unordered pair of classes: their Jaccard overlap and how often the model
    confuses them (the mean of the two directions' confusion rates, percent)."""
    names = list(overlap.index)
    check(list(confusion.index) == names and list(confusion.columns) == names,
          "overlap and confusion must name the same classes in the same order")
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = names[i], names[j]
            rows.append(dict(pair=f"{a} / {b}", class_a=a, class_b=b, overlap=float(overlap.loc[a, b]),
                             confusion=float(np.nanmean([confusion.loc[a, b], confusion.loc[b, a]]))))
    return pd.DataFrame(rows)


def forgetting_difficulty(model, data, classes, *, method: str = "finetune", seed: int = 0, device=None,
                          cache=None, **hp) -> pd.DataFrame:
    """How much of each class in ``classes`` survives a class-forgetting ``method`` (default
    plain fine-tuning on the retain set; ``hp`` its hyperparameters, e.g. ``epochs=1``).

    One row per class: test accuracy of that class before and after (``acc_before``,
    ``acc_after``, percent), ``left`` = acc_after / acc_before (percent of the class's
    accuracy that remains), the mean test accuracy of the other classes before and after
    (``others_before``, ``others_after``) and the method's ``seconds``. One unlearning run
    per class: keep the list and the schedule short on a CPU.
    """
    from .methods import unlearn
    from .metrics import per_class_accuracy
    from .requests import make_request

    before = per_class_accuracy(model, data, device=device)
    rows = []
    for name in classes:
        request = make_request(data, "class", forget=name, seed=seed)
        new, seconds, _ = unlearn(method, model, data, request, device=device, seed=seed, cache=cache, **hp)
        after = per_class_accuracy(new, data, device=device)
        cls = request.forget[0]
        others = [c for c in before if c != cls]
        rows.append(dict(**{"class": cls}, acc_before=before[cls], acc_after=after[cls],
                         left=100 * after[cls] / before[cls] if before[cls] > 0 else float("nan"),
                         others_before=float(np.mean([before[c] for c in others])),
                         others_after=float(np.mean([after[c] for c in others])), seconds=seconds))
    return pd.DataFrame(rows)


def overlap_with_forgotten(model, data, forget: str, *, q: float = 0.1, max_samples: int | None = 10000,
                           seed: int = 0, device=None) -> pd.Series:
    """Each class's Jaccard feature overlap with class ``forget`` in ``model`` (our
    operationalisation, :mod:`megu_lib.entanglement`)."""
    patterns, _, _ = model_patterns(model, data, q=q, max_samples=max_samples, seed=seed, device=device)
    check(forget in patterns.classes, f"class {forget!r} is not a class of {data.name}")
    return patterns.overlap().loc[forget]
