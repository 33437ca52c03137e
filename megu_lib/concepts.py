"""The transition matrix T (MeGU step 1; the book page *The method, and our reading of it*,
section *Step 1*).

T[c, l] scores how similar concept c (the concept of the forget data: a class, or a fine
class in the subclass scenario) is to label l of the model; higher = more similar.
MeGU uses row T[c, :] to pick a perturbing label for each forget sample. The scores come
from a concept judge (:mod:`megu_lib.judges`).

* **The paper's**: averaging over a small random subset of exemplars per class, and
  estimating T once and caching it for every request.
* **Our reading** (the paper is silent): rows are min-max normalised over the candidate
  labels l != the concept's own label; the concept's own label is then set to
  ``own_label_value`` (0); a row whose candidates all tie is set to ``tie_value`` (1).
* **Ours**: the cache key.

:func:`estimate_transition_matrix` validates everything, looks the raw scores up in the
cache (kind ``"transition"``), checks that the judge's weights can be loaded, draws the
exemplars, runs the judge and normalises. A matrix already in the cache is returned without
touching the weights, so a matrix estimated where the weights exist can be reused where
they do not.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import torch

from .errors import MeguError, check
from .judges import JudgeTask, get_judge, judge_model_id, resolve_weights
from .models import model_fingerprint

#: Cache entries of a different version are not reused (bump when scoring changes).
_KEY_VERSION = 1

# --------------------------------------------------------------------------- the result
@dataclasses.dataclass
class TransitionMatrix:
    """The transition matrix T and how it was made.

    ``matrix``: float32 K_concepts x K_labels in [0, 1], rows min-max normalised over
    the labels other than the concept's own, own label = ``own_label_value``.
    ``raw``: the judge's scores before normalisation (same shape; own label included).
    ``concepts``/``labels``: names; ``concept_level``/``level``: which labels of the data
    set they are ("fine"/"coarse"). ``own_label``: (K_concepts,) each concept's label.
    ``exemplars``: K_concepts x n indices (in ``split``) of the exemplars used.
    ``seconds``: the judge's wall-clock time (the recorded one when loaded from the cache).
    """

    matrix: torch.Tensor
    raw: torch.Tensor
    concepts: tuple
    labels: tuple
    own_label: torch.Tensor
    concept_level: str
    level: str
    judge: str
    model_id: str | None
    options: dict
    n_exemplars: int
    seed: int
    split: str
    seconds: float
    from_cache: bool = False
    exemplars: torch.Tensor | None = None
    details: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return tuple(self.matrix.shape)

    def _concept(self, k) -> int:
        if isinstance(k, str):
            names = {c.lower(): i for i, c in enumerate(self.concepts)}
            check(k.lower() in names, f"concept {k!r} is not in T: choose from {', '.join(self.concepts)}")
            return names[k.lower()]
        check(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(self.concepts),
              f"concept index {k!r} is out of range 0..{len(self.concepts) - 1}")
        return k

    def nearest(self, k, top: int = 3, *, raw: bool = False) -> list[tuple[str, float]]:
        """The ``top`` labels most similar to concept ``k`` (name or index), own label
        excluded, as (name, score) pairs, best first."""
        k = self._concept(k)
        row = (self.raw if raw else self.matrix)[k].clone()
        order = [int(j) for j in torch.argsort(row, descending=True, stable=True) if int(j) != int(self.own_label[k])]
        return [(self.labels[j], float(row[j])) for j in order[:top]]

    def to_frame(self, raw: bool = False):
        """T as a pandas DataFrame (rows: concepts, columns: labels)."""
        import pandas as pd
        m = self.raw if raw else self.matrix
        return pd.DataFrame(m.numpy(), index=pd.Index(self.concepts, name="concept"),
                            columns=pd.Index(self.labels, name="label"))

    def concept_ids(self, data, split: str = "train") -> torch.Tensor:
        """The concept of every sample of ``data``'s ``split`` (its label at ``concept_level``)."""
        check(tuple(data.class_names(self.concept_level)) == tuple(self.concepts),
              "this transition matrix was estimated on another data set; estimate it on this one")
        return data.targets(split, self.concept_level)

    def rows(self, data, indices=None, split: str = "train") -> torch.Tensor:
        """T[c(x), :] for the samples ``indices`` of ``split`` (all when None): N x K_labels.
        E.g. ``T.rows(data, request.forget_idx)`` for a forget set."""
        c = self.concept_ids(data, split)
        if indices is not None:
            c = c[torch.as_tensor(indices, dtype=torch.long)]
        return self.matrix[c]

    def __repr__(self) -> str:
        return (f"TransitionMatrix({self.judge}" + (f" {self.model_id!r}" if self.model_id else "") +
                f": {len(self.concepts)} {self.concept_level} concepts x {len(self.labels)} {self.level} labels, "
                f"n={self.n_exemplars}, seed={self.seed}, {self.seconds:.2f} s" +
                (", from cache)" if self.from_cache else ")"))


def check_transition_matrix(T, n_concepts: int, n_labels: int) -> torch.Tensor:
    """``T`` (a tensor, array, nested list or :class:`TransitionMatrix`) as a float32
    tensor, after checking it is n_concepts x n_labels, finite and non-negative."""
    m = T.matrix if isinstance(T, TransitionMatrix) else T
    try:
        m = torch.as_tensor(m, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise MeguError(f"transition matrix must be a 2-D array of numbers, got {type(T).__name__}") from None
    check(m.dim() == 2 and tuple(m.shape) == (n_concepts, n_labels),
          f"transition matrix has shape {tuple(m.shape)} but must be {n_concepts} concepts x {n_labels} labels; "
          "estimate it for this data set and scenario (estimate_transition_matrix(data, judge, request=request))")
    check(bool(torch.isfinite(m).all()), f"transition matrix has {int((~torch.isfinite(m)).sum())} NaN or infinite "
          "entries; re-estimate it (the judge failed) or replace them")
    check(bool((m >= 0).all()), f"transition matrix has negative entries (min {float(m.min()):.3g}); "
          "scores must be >= 0 (use the min-max normalised .matrix, not .raw)")
    return m


def normalize_rows(raw: torch.Tensor, own_label: torch.Tensor, *, own_label_value: float = 0.0,
                   tie_value: float = 1.0) -> torch.Tensor:
    """Min-max normalise each row over the labels other than its own (our reading: the paper
    gives no normalisation): candidates map to [0, 1]; the own label gets ``own_label_value``;
    a row whose candidates all tie gets ``tie_value``. An own label of -1 excludes nothing."""
    out = torch.empty_like(raw, dtype=torch.float32)
    for k in range(raw.shape[0]):
        cand = torch.ones(raw.shape[1], dtype=torch.bool)
        if 0 <= int(own_label[k]) < raw.shape[1]:
            cand[int(own_label[k])] = False
        v = raw[k, cand].float()
        lo, hi = v.min(), v.max()
        span = float(hi - lo)
        out[k, cand] = (v - lo) / span if span > 1e-12 * max(1.0, float(hi.abs())) else torch.full_like(v, tie_value)
        out[k, ~cand] = own_label_value
    return out


# --------------------------------------------------------------------------- the estimate
def _levels(data, request, level, concept_level) -> tuple[str, str]:
    if request is not None:
        from .requests import Request
        check(isinstance(request, Request),
              f"request must be a Request from make_request, got {type(request).__name__}")
        check(request.data_fingerprint == data.fingerprint(), "the request was made for another data set; "
              "build it with make_request on the same data")
        check(level is None or level == request.level,
              f"level={level!r} contradicts the request's level {request.level!r}")
        level = request.level
        default_concepts = "fine" if request.scenario == "subclass" else level
        check(concept_level is None or concept_level == default_concepts,
              f"concept_level={concept_level!r} contradicts the {request.scenario} scenario (concepts are "
              f"{default_concepts!r} there); leave it out")
        concept_level = default_concepts
    level = level or data.label_level
    check(level in ("fine", "coarse"), f"level must be 'fine' or 'coarse', got {level!r}")
    if concept_level is None:
        # coarse labels on a data set whose models predict fine ones: the subclass scenario
        concept_level = "fine" if level != data.label_level else level
    check(concept_level in ("fine", "coarse"), f"concept_level must be 'fine' or 'coarse', got {concept_level!r}")
    check(not (concept_level == "coarse" and level == "fine"),
          "concepts cannot be coarser than the labels: use concept_level='fine' with level='fine'")
    if "coarse" in (level, concept_level):
        check(data.has_coarse, f"data set {data.name!r} has no coarse labels; use level='fine'")
    return level, concept_level


def _own_labels(data, level: str, concept_level: str) -> torch.Tensor:
    if concept_level == level:
        return torch.arange(data.num_classes(level))
    return data.coarse_of_fine()


def _draw(targets: torch.Tensor, n_classes: int, n: int, g: torch.Generator) -> torch.Tensor:
    out = torch.empty(n_classes, n, dtype=torch.long)
    for c in range(n_classes):
        pool = (targets == c).nonzero().squeeze(1)
        out[c] = pool[torch.randperm(len(pool), generator=g)[:n]]
    return out


def estimate_transition_matrix(data, judge: str = "text", *, request=None, level: str | None = None,
                               concept_level: str | None = None, model: torch.nn.Module | None = None,
                               model_id: str | os.PathLike | None = None, model_key: str | None = None,
                               n_exemplars: int = 10, seed: int = 0, split: str = "train",
                               own_label_value: float = 0.0, tie_value: float = 1.0, exclude_own: bool = True,
                               cache=None, device=None,
                               progress: bool | None = None, batch_size: int = 16,
                               **judge_options) -> TransitionMatrix:
    """Estimate T (K_concepts x K_labels) with ``judge``, once, from the cache when it exists.

    ``judge``: one of :func:`megu_lib.judges.list_judges` (``text``, the offline default; ``vlm``, the
    paper's; ``clip``; ``features``; ``uniform``). ``judge_options``: that judge's options
    (see ``get_judge(name).defaults``).

    Which matrix: ``request`` (a :class:`~megu_lib.requests.Request`) settles it: labels =
    the model's labels (``request.level``); concepts = the fine classes in the subclass
    scenario, the labels otherwise. Without a request: ``level`` = the model's labels
    (default ``data.label_level``); ``concept_level`` defaults to "fine" when ``level``
    is coarser than the data set's own labels (the subclass scenario, e.g.
    ``level="coarse"`` on Fashion-MNIST: 10 fine concepts x 4 coarse labels), else to
    ``level`` (square). MeGU reads ``T.rows(data, request.forget_idx)``.

    ``model``: the trained model (``features`` judge; its state hash, or ``model_key``,
    enters the cache key). ``model_id``: weights of ``vlm``/``clip``/``text`` (a Hugging
    Face id or local folder; else ``$MEGU_VLM_MODEL`` / ``$MEGU_CLIP_MODEL`` /
    ``$MEGU_TEXT_MODEL``; else the judge's default). ``n_exemplars`` per concept and per
    label, drawn from ``split`` with ``seed``. ``batch_size``: prompts (vlm) or images per
    forward pass. ``own_label_value``, ``tie_value``: see :func:`normalize_rows`.
    ``exclude_own``: False normalises every row over all labels, its own included (the
    subclass scenario's "any coarse label" reading: a fine concept may score its own coarse
    label); the judge's raw scores, and so the cache entry, are the same either way.
    ``cache``: None = the default cache, False = none, a path or a Cache (kind "transition").
    """
    from .cache import as_cache
    from .data import Dataset
    from .training import resolve_device

    # -- everything is checked before any work
    check(isinstance(data, Dataset),
          f"estimate_transition_matrix needs a Dataset (from load_dataset), got {type(data).__name__}")
    spec = get_judge(judge)
    unknown = set(judge_options) - set(spec.defaults)
    check(not unknown, f"judge {judge!r} has no option(s) {sorted(unknown)}; its options are: "
          f"{', '.join(spec.defaults) or 'none'}")
    options = {**spec.defaults, **judge_options}
    spec.check_options(options)
    for name, v in (("n_exemplars", n_exemplars), ("batch_size", batch_size)):
        check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{name} must be a positive int, got {v!r}")
    check(isinstance(seed, int) and not isinstance(seed, bool), f"seed must be an int, got {seed!r}")
    check(split in ("train", "test"), f"split must be 'train' or 'test', got {split!r}")
    for name, v in (("own_label_value", own_label_value), ("tie_value", tie_value)):
        check(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
              f"{name} must be a finite number >= 0, got {v!r}")
    level, concept_level = _levels(data, request, level, concept_level)
    concepts, labels = tuple(data.class_names(concept_level)), tuple(data.class_names(level))
    concept_y, label_y = data.targets(split, concept_level), data.targets(split, level)
    for what, names, y in (("concept", concepts, concept_y), ("label", labels, label_y)):
        counts = torch.bincount(y, minlength=len(names))
        worst = int(counts.argmin())
        check(int(counts[worst]) >= n_exemplars,
              f"n_exemplars={n_exemplars} but {what} {names[worst]!r} has only {int(counts[worst])} {split} samples; "
              f"ask for at most {int(counts[worst])}")
    if spec.needs_model:
        check(model is not None and hasattr(model, "features"),
              f"judge {judge!r} needs the trained model (model=...), one with .features(x)")
        n_out = getattr(model, "config", {}).get("num_classes")
        check(n_out is None or n_out == len(labels), f"the model predicts {n_out} classes but the labels at level "
              f"{level!r} have {len(labels)}; pass the model trained at that level")
    mid = judge_model_id(spec, model_id) if spec.needs_weights else None
    if spec.needs_model:
        model_ref = model_key if model_key is not None else f"state:{model_fingerprint(model)}"
    else:
        model_ref = mid
    device = resolve_device(device)
    own = _own_labels(data, level, concept_level)

    key = dict(version=_KEY_VERSION, judge=judge, model=model_ref, data=data.fingerprint(), n=int(n_exemplars),
               seed=int(seed), level=level, concept_level=concept_level, split=split,
               options=json.loads(json.dumps(options, default=str)))
    store = as_cache(cache)
    entry = store.load("transition", key)
    from_cache = entry is not None
    if entry is None:
        store.check_writable("transition")  # an unwritable cache is reported before the judge runs
        path = resolve_weights(spec, mid) if spec.needs_weights else None  # before any other work
        g = torch.Generator().manual_seed(int(seed))
        c_idx = _draw(concept_y, len(concepts), n_exemplars, g)
        l_idx = c_idx if concept_level == level else _draw(label_y, len(labels), n_exemplars, g)
        x = data.train_x if split == "train" else data.test_x
        c_img = x[c_idx]
        l_img = c_img if concept_level == level else x[l_idx]
        task = JudgeTask(concepts, labels, own, c_img, l_img, c_idx, l_idx, seed=int(seed), device=device,
                         batch_size=batch_size, progress=progress, model=model, model_path=path,
                         details={"model_id": mid} if mid else {})
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        raw = spec.fn(task, **options)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        raw = torch.as_tensor(raw, dtype=torch.float32).cpu()
        check(tuple(raw.shape) == (len(concepts), len(labels)),
              f"judge {judge!r} returned scores of shape {tuple(raw.shape)}, expected {len(concepts)} x {len(labels)}")
        check(bool(torch.isfinite(raw).all()), f"judge {judge!r} returned NaN or infinite scores; check its weights")
        entry = dict(raw=raw, exemplars=c_idx, seconds=seconds, device=str(device),
                     details={k: v for k, v in task.details.items() if k != "model_id"})
        store.store("transition", key, entry, purpose=f"transition matrix ({judge})")
    check(isinstance(exclude_own, bool), f"exclude_own must be True or False, got {exclude_own!r}")
    excluded = own if exclude_own else torch.full_like(own, -1)
    matrix = normalize_rows(entry["raw"], excluded, own_label_value=float(own_label_value),
                            tie_value=float(tie_value))
    return TransitionMatrix(matrix=matrix, raw=entry["raw"], concepts=concepts, labels=labels, own_label=own,
                            concept_level=concept_level, level=level, judge=judge, model_id=model_ref,
                            options=options, n_exemplars=int(n_exemplars), seed=int(seed), split=split,
                            seconds=float(entry["seconds"]), from_cache=from_cache, exemplars=entry["exemplars"],
                            details=dict(entry.get("details", {}), device=entry.get("device")))


# --------------------------------------------------------------------------- comparing judges
def compare_transition_matrices(a, b) -> dict:
    """How far two transition matrices of the same concepts and labels agree (ours).

    ``a``, ``b``: :class:`TransitionMatrix` (their own labels are excluded from every
    row). Returns ``spearman``: the mean over concepts of the Spearman rank correlation
    of the two rows over the candidate labels, skipping rows that are constant in either
    matrix (a uniform judge ranks nothing: NaN when every row is skipped);
    ``top1``: the share (percent) of concepts whose highest-scoring candidate is the
    same, over the concepts where neither row ties at the top (NaN when none);
    ``rows``: the number of rows the Spearman mean is over.
    """
    from .metrics import spearman
    check(isinstance(a, TransitionMatrix) and isinstance(b, TransitionMatrix),
          "compare_transition_matrices needs two TransitionMatrix objects (from estimate_transition_matrix)")
    check(a.concepts == b.concepts and a.labels == b.labels,
          "the two transition matrices have different concepts or labels; estimate both for the same request")
    rhos, same, ranked = [], 0, 0
    for k in range(len(a.concepts)):
        cand = torch.ones(len(a.labels), dtype=torch.bool)
        own = int(a.own_label[k])
        if 0 <= own < len(a.labels):
            cand[own] = False
        ra, rb = a.matrix[k, cand].double(), b.matrix[k, cand].double()
        rho = spearman(ra.numpy(), rb.numpy())
        if rho == rho:
            rhos.append(rho)
        if int((ra == ra.max()).sum()) == 1 and int((rb == rb.max()).sum()) == 1:
            ranked += 1
            same += int(ra.argmax()) == int(rb.argmax())
    return dict(spearman=float(sum(rhos) / len(rhos)) if rhos else float("nan"),
                top1=100.0 * same / ranked if ranked else float("nan"), rows=len(rhos))


def judge_agreement(matrices: dict):
    """:func:`compare_transition_matrices` for every pair of ``matrices`` ({judge name:
    TransitionMatrix}): a tidy DataFrame (judge_a, judge_b, spearman, top1, rows), both
    orders and the diagonal included, so that ``.pivot`` gives square tables."""
    import pandas as pd
    rows = []
    for na, ta in matrices.items():
        for nb, tb in matrices.items():
            rows.append(dict(judge_a=na, judge_b=nb, **compare_transition_matrices(ta, tb)))
    return pd.DataFrame(rows)


def nearest_table(matrices: dict, top: int = 3):
    """The ``top`` most similar labels of every concept under each judge ({judge name:
    TransitionMatrix}): a DataFrame (rows: concepts, columns: judges) of comma-separated
    names, best first; "all tied" where a judge scores every candidate the same."""
    import pandas as pd
    cols = {}
    for name, tm in matrices.items():
        out = []
        for k in range(len(tm.concepts)):
            cand = [j for j in range(len(tm.labels)) if j != int(tm.own_label[k])]
            row = tm.matrix[k, cand]
            out.append("all tied" if bool((row == row[0]).all()) else
                       ", ".join(n for n, _ in tm.nearest(k, top=top)))
        cols[name] = out
    first = next(iter(matrices.values()))
    return pd.DataFrame(cols, index=pd.Index(first.concepts, name="concept"))
