"""Metrics: accuracies, membership inference, and the gap to a reference (retrained) model.

MIA (the book page *The method, and our reading of it*, *What we report*; after the SSD benchmark code): a logistic
regression on the entropy of the softmax output, trained to tell retain-set training samples (members) from test
samples (non-members), balanced by subsampling; the reported figure is the share of
forget samples it calls members — lower means more forgotten; compare with retrain's,
not with zero. ``mia_loss`` is a loss-threshold variant (Yeom et al. 2018): the
threshold on the per-sample cross-entropy that best separates the same two groups.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .data import Dataset
from .errors import check
from .requests import Request, check_compatible
from .training import predict_logits

#: The metrics compared with retrain in the mean absolute gap (percentage points).
GAP_KEYS = ("retain_acc", "forget_acc", "test_acc", "mia")


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy in percent; NaN for an empty set."""
    if len(y) == 0:
        return float("nan")
    return 100.0 * (logits.argmax(1) == y).float().mean().item()


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the softmax distribution, per row (nats)."""
    logp = F.log_softmax(logits.float(), dim=1)
    return -(logp.exp() * logp).sum(1)


def _balanced(a: np.ndarray, b: np.ndarray, rng: np.random.Generator):
    n = min(len(a), len(b))
    return a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]


def mia_entropy(member_logits, nonmember_logits, target_logits, seed: int = 0) -> float:
    """Share (percent) of ``target`` samples that an entropy-based logistic regression,
    fit on members vs. non-members, calls members."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    m, nm = _balanced(entropy(member_logits).numpy(), entropy(nonmember_logits).numpy(), rng)
    check(len(m) > 0 and len(target_logits) > 0, "MIA needs members, non-members and targets")
    feats = np.concatenate([m, nm])[:, None]
    labels = np.concatenate([np.ones(len(m)), np.zeros(len(nm))])
    clf = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(feats, labels)
    return 100.0 * float(clf.predict(entropy(target_logits).numpy()[:, None]).mean())


def mia_loss_threshold(member_logits, member_y, nonmember_logits, nonmember_y, target_logits, target_y,
                       seed: int = 0) -> float:
    """Share (percent) of ``target`` samples whose loss is below the threshold that best
    separates members (low loss) from non-members (balanced accuracy)."""
    rng = np.random.default_rng(seed)
    lm = F.cross_entropy(member_logits, member_y, reduction="none").numpy()
    ln = F.cross_entropy(nonmember_logits, nonmember_y, reduction="none").numpy()
    lm, ln = _balanced(lm, ln, rng)
    cands = np.unique(np.concatenate([lm, ln]))
    # balanced accuracy of "loss <= t means member" for every candidate t
    acc = (np.searchsorted(np.sort(lm), cands, side="right") / len(lm)
           + 1 - np.searchsorted(np.sort(ln), cands, side="right") / len(ln)) / 2
    t = cands[int(np.argmax(acc))]
    lt = F.cross_entropy(target_logits, target_y, reduction="none").numpy()
    return 100.0 * float((lt <= t).mean())


#: How far above chance (points) an original must be for its page to mean anything.
CHANCE_MARGIN = 5.0


def chance_note(test_acc: float, num_classes: int, margin: float = CHANCE_MARGIN) -> str | None:
    """None for a model clearly above chance; else one line saying that nothing built on it
    means anything (a model within ``margin`` points of 100 / ``num_classes`` percent)."""
    chance = 100.0 / num_classes
    if test_acc > chance + margin:
        return None
    return (f"the original model's test accuracy is {test_acc:.1f} %, within {margin:g} points of chance "
            f"({chance:.1f} %): it has learnt nothing, so nothing on this page is meaningful; train it longer "
            "(the profile's train.min_steps or epochs) or give it more data")


def attack_auc(member_scores, nonmember_scores, seed: int = 0) -> float:
    """The power of a membership attack: the AUC (percent; 50 = chance) of ``scores`` (higher
    = more member-like) on balanced members vs. non-members. Both MIAs here threshold one
    score (the entropy attack's logistic regression is monotone in the entropy), so their
    AUC is that of the score itself."""
    from sklearn.metrics import roc_auc_score
    m, nm = _balanced(np.asarray(member_scores), np.asarray(nonmember_scores), np.random.default_rng(seed))
    check(len(m) > 0, "an attack's AUC needs members and non-members")
    return 100.0 * float(roc_auc_score(np.r_[np.ones(len(m)), np.zeros(len(nm))], np.r_[m, nm]))


def evaluate(model, data: Dataset, request: Request, *, max_retain: int | None = None, batch_size: int | None = None,
             device=None, seed: int = 0, per_class: bool = False) -> dict:
    """Evaluate ``model`` on a request. Returns percentages:

    ``retain_acc``, ``forget_acc``, ``test_acc``; where whole concepts are forgotten also
    ``test_forget_acc`` (test samples of the forgotten concept) and ``test_retain_acc``
    (the rest); ``mia`` (entropy MIA) and ``mia_loss`` (loss-threshold MIA), both as the
    share of forget samples called members, and each attack's power on the model,
    ``mia_auc`` and ``mia_loss_auc`` (:func:`attack_auc` of retain vs. test samples).
    ``max_retain`` evaluates on a seeded random subset of the retain set (for speed; None = all).
    ``per_class``: also ``per_class``, :func:`per_class_accuracy` on the test split at the
    request's level, from the same logits (one pass over the test split instead of two).
    """
    check(isinstance(model, torch.nn.Module), f"evaluate needs a model (a torch.nn.Module), got {type(model).__name__}")
    check(isinstance(data, Dataset), f"evaluate needs a Dataset (from load_dataset), got {type(data).__name__}")
    check(isinstance(request, Request), f"evaluate needs a Request (from make_request), got {type(request).__name__}")
    check_compatible(model, data, request)
    check(max_retain is None or (isinstance(max_retain, int) and not isinstance(max_retain, bool) and max_retain > 0),
          f"max_retain must be a positive int or None (all), got {max_retain!r}")
    y_train, y_test = request.train_labels(data), request.test_labels(data)
    retain_idx = request.retain_idx
    if max_retain is not None and len(retain_idx) > max_retain:
        g = torch.Generator().manual_seed(seed)
        retain_idx = retain_idx[torch.randperm(len(retain_idx), generator=g)[:max_retain]].sort().values
    run = lambda x: predict_logits(model, x, batch_size=batch_size, device=device)
    lr, lf, lt = run(data.train_x[retain_idx]), run(data.train_x[request.forget_idx]), run(data.test_x)
    yr, yf = y_train[retain_idx], y_train[request.forget_idx]
    out = dict(retain_acc=accuracy(lr, yr), forget_acc=accuracy(lf, yf), test_acc=accuracy(lt, y_test))
    if request.forgets_classes:
        mask = request.test_forget_mask
        out["test_forget_acc"] = accuracy(lt[mask], y_test[mask])
        out["test_retain_acc"] = accuracy(lt[~mask], y_test[~mask])
    out["mia"] = mia_entropy(lr, lt, lf, seed=seed)
    out["mia_loss"] = mia_loss_threshold(lr, yr, lt, y_test, lf, yf, seed=seed)
    # each attack's own power on this model (retain vs test): near 50, its MIA figure says nothing
    out["mia_auc"] = attack_auc(-entropy(lr).numpy(), -entropy(lt).numpy(), seed=seed)
    out["mia_loss_auc"] = attack_auc(-F.cross_entropy(lr, yr, reduction="none").numpy(),
                                     -F.cross_entropy(lt, y_test, reduction="none").numpy(), seed=seed)
    if per_class:
        out["per_class"] = per_class_accuracy(model, data, request.level, logits=lt)
    return out


def gap_to_reference(metrics: dict, reference: dict, keys=GAP_KEYS) -> dict:
    """Absolute differences to a reference model's metrics (points) and their mean as ``gap``."""
    keys = [k for k in keys if k in metrics and k in reference]
    diffs = {f"gap_{k}": abs(metrics[k] - reference[k]) for k in keys}
    diffs["gap"] = float(np.mean(list(diffs.values()))) if diffs else float("nan")
    return diffs


def per_class_accuracy(model, data: Dataset, level: str | None = None, split: str = "test",
                       batch_size: int | None = None, device=None, logits: torch.Tensor | None = None) -> dict:
    """Accuracy (percent) per class of ``split`` at ``level``: {class name: accuracy}."""
    x = data.test_x if split == "test" else data.train_x
    y = data.targets(split, level)
    logits = predict_logits(model, x, batch_size=batch_size, device=device) if logits is None else logits
    return {name: accuracy(logits[y == c], y[y == c]) for c, name in enumerate(data.class_names(level))}


def spearman(a, b) -> float:
    """Spearman rank correlation of two equally long 1-D sequences (average ranks for ties).

    Pairs where either value is NaN are dropped. NaN (and no warning) when fewer than
    three pairs remain or either sequence is constant: a rank correlation is undefined there.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    check(a.shape == b.shape, f"spearman needs two sequences of the same length, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    import pandas as pd
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])
