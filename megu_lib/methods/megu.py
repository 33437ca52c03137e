"""MeGU: Machine-Guided Unlearning with Target Feature Disentanglement, and its ablations.

The paper's three steps (MEGU_SPEC §3–5), as we implement them:

1. a transition matrix T from a concept judge (:mod:`megu_lib.concepts`; the paper uses a
   multimodal LLM, estimated once and cached; the judge's one-off run is reported apart);
2. perturbing labels y_p for the forget samples (:func:`megu_lib.perturb.perturbing_labels`);
3. Fragment-Align: fine-tune on the perturbed forget set
   D_f^p = {(x + N_pos[y_p] + N_neg[y], y_p)} together with retain data, where the
   positive and negative noises are trained on the frozen model (:mod:`megu_lib.noise`).

Ours, where the paper is silent (each a named hyperparameter): the rule φ (``rule``),
the noise steps and bank size, the fine-tuning schedule (``epochs``, ``lr``,
``batch_size``, SGD with momentum), the retain share (``retain_ratio`` retain samples
per forget sample each epoch, drawn afresh every epoch) and no augmentation during the
short fine-tuning, and two departures chosen on validation data: soft targets
(``targets="soft"``) and noises on half of the forget samples at each step
(``noise_prob=0.5``). Defaults were chosen on a validation split carved from the training
data (``benchmarks/megu_validation.py``, results/megu_validation.json), never on the test
set. With the paper's hard labels and every forget sample noised (``megu_paper``), the
noise becomes a shortcut: the model learns "noise -> y_p" and keeps recognising the clean
forget images (validation gap to retrain 8-26 points at lr 0.001, see that file).
"""
from __future__ import annotations

import inspect
import math
import time

import torch

from . import register
from ..errors import check
from ..noise import check_noise_hp, noise_bank, stack_bank
from ..perturb import check_rule, perturbing_scores, soft_targets
from ..training import predict_logits, recalibrate_bn, resolve_device, train_config, train_model

SOURCE = ("Paper: MeGU (arXiv 2602.17088) — transition matrix, perturbing labels, Fragment-Align "
          "with positive/negative noises. Noise optimisation after UNSIR (Tarun et al. 2023). "
          "Schedule and rule phi: ours.")


def forget_concepts(data, request) -> torch.Tensor:
    """Each forget sample's row in T: its fine class in the subclass scenario, else its label."""
    if request.scenario == "subclass":
        return data.train_y[request.forget_idx]
    return request.train_labels(data)[request.forget_idx]


def transition_for(data, request, model, *, judge, n_exemplars, seed, cache, device, progress):
    """The transition matrix for a request (cached by :mod:`megu_lib.concepts`)."""
    from ..concepts import estimate_transition_matrix
    return estimate_transition_matrix(data, judge, request=request, model=model, n_exemplars=n_exemplars, seed=seed, cache=cache,
                                      device=device, progress=progress)


def _check_positive(name, value, integer=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if integer:
        ok = ok and isinstance(value, int)
    check(ok, f"megu: {name} must be a positive {'int' if integer else 'number'}, got {value!r}")


@register("megu", summary="MeGU: perturbing labels from a transition matrix + Fragment-Align noises", source=SOURCE)
def megu(model, data, request, *, device, progress, seed, cache,
         judge: str = "text", transition=None, n_exemplars: int = 10, rule: str = "product", mix_weight: float = 0.5,
         use_pos: bool = True, use_neg: bool = True, noise_steps: int = 30, noise_lr: float = 0.1,
         noise_lambda: float = 0.1, noise_bank_size: int = 1, noise_norm: str = "l2sq", noise_eps: float | None = 0.3,
         epochs: float = 1.0, lr: float = 0.003, batch_size: int = 128, retain_ratio: float = 1.0,
         momentum: float = 0.9, weight_decay: float = 5e-4, freeze_bn: bool = False, label_smoothing: float = 0.0,
         bn_recalibrate: int = 0, targets: str = "soft", noise_prob: float = 0.5):
    """MeGU on ``model`` (a copy), for ``request``.

    ``judge``: the concept judge for T (``text``, ``features``, ``vlm``, ``clip``,
    ``uniform``); ``transition``: a precomputed matrix (tensor or TransitionMatrix) that
    replaces the judge. ``rule``/``mix_weight``: φ (see :mod:`megu_lib.perturb`).
    ``use_pos``/``use_neg``: the two noises. ``noise_*``: noise optimisation (steps, Adam
    lr, λ, noises per class, regulariser, L∞ bound ``noise_eps`` in pixel units).
    ``freeze_bn``: keep BatchNorm statistics fixed while fine-tuning (ours: the perturbed
    forget samples would otherwise shift them for every class); ``bn_recalibrate``: after
    fine-tuning, re-estimate BatchNorm statistics from this many clean retain samples
    (0 = off; ours, for the same reason). ``epochs``: passes over the perturbed forget
    set, each with ``retain_ratio`` × |D_f| fresh retain samples; SGD ``lr``,
    ``momentum``, ``weight_decay``, ``batch_size``, ``label_smoothing`` (on every sample).
    ``targets``: ``"hard"`` (the paper: a forget sample's target is its perturbing label
    y_p) or ``"soft"`` (ours: the distribution of its perturbing scores over l ≠ y, see
    :func:`megu_lib.perturb.soft_targets` — a retrained model is rarely confident on the
    samples it never saw). ``noise_prob``: the chance that a forget sample carries the
    noises at each step (1 = the paper; ours below 1: the other forget samples are seen
    clean, so the new label cannot hide behind the noise).
    """
    check_rule(rule, mix_weight)
    check_noise_hp(noise_steps, noise_lr, noise_lambda, noise_bank_size, noise_norm, noise_eps)
    for name in ("epochs", "lr"):
        _check_positive(name, locals()[name])
    _check_positive("batch_size", batch_size, integer=True)
    check(isinstance(retain_ratio, (int, float)) and math.isfinite(retain_ratio) and retain_ratio >= 0,
          f"megu: retain_ratio must be a number >= 0, got {retain_ratio!r}")
    check(isinstance(n_exemplars, int) and n_exemplars >= 1, f"megu: n_exemplars must be an int >= 1, got {n_exemplars!r}")
    check(targets in ("hard", "soft"), f"megu: targets must be 'hard' or 'soft', got {targets!r}")
    check(isinstance(noise_prob, (int, float)) and 0 <= noise_prob <= 1,
          f"megu: noise_prob must be a number in [0, 1], got {noise_prob!r}")
    check(isinstance(label_smoothing, (int, float)) and 0 <= label_smoothing < 1,
          f"megu: label_smoothing must be in [0, 1), got {label_smoothing!r}")

    labels = request.train_labels(data)
    k = request.num_classes(data)
    xf, yf = data.train_x[request.forget_idx], labels[request.forget_idx]
    details = {}

    # 1. transition matrix (one-off judge run, cached; its time is reported apart)
    T, judge_seconds = None, 0.0
    t0 = time.perf_counter()
    if rule not in ("prediction", "random"):
        if transition is None:
            tm = transition_for(data, request, model, judge=judge, n_exemplars=n_exemplars, seed=seed,
                                cache=cache, device=device, progress=progress)
            T, judge_seconds = tm.matrix, tm.seconds
        else:
            T = transition.matrix if hasattr(transition, "matrix") else torch.as_tensor(transition)
        from ..concepts import check_transition_matrix
        n_concepts = len(data.classes) if request.scenario == "subclass" else k
        check_transition_matrix(T, n_concepts, k)
    details["judge_seconds"] = judge_seconds
    transition_wall = time.perf_counter() - t0

    # 2. perturbing labels
    probs = predict_logits(model, xf, device=device).softmax(1)
    scores = perturbing_scores(model, xf, yf, forget_concepts(data, request), T, rule=rule, weight=mix_weight,
                               seed=seed, probs=probs, num_classes=k)
    y_p = scores.argmax(1)
    details["perturbing_labels"] = torch.bincount(y_p, minlength=k).tolist()

    # 3. Fragment-Align noises on the frozen model (cached per model and class; the
    #    recorded optimisation time counts in MeGU's time even when cached)
    shape = tuple(data.image_shape)
    noise_kw = dict(shape=shape, bank=noise_bank_size, steps=noise_steps, lr=noise_lr, lam=noise_lambda,
                    norm=noise_norm, eps=noise_eps, seed=seed, device=device, cache=cache)
    pos = neg = None
    noise_seconds, t0 = 0.0, time.perf_counter()
    if use_pos:
        bank, s = noise_bank(model, y_p.unique().tolist(), sign=+1, **noise_kw)
        pos, noise_seconds = stack_bank(bank, k, shape), noise_seconds + s
    if use_neg:
        bank, s = noise_bank(model, yf.unique().tolist(), sign=-1, **noise_kw)
        neg, noise_seconds = stack_bank(bank, k, shape), noise_seconds + s
    details["noise_seconds"] = noise_seconds
    noise_wall = time.perf_counter() - t0

    # fine-tune on D_f^p ∪ (a fresh retain subsample each epoch); forget samples keep their
    # index into the training set, their label becomes y_p, and the loss adds their noises
    y_train = labels.clone()
    y_train[request.forget_idx] = y_p
    is_forget = torch.zeros(len(labels), dtype=torch.bool)
    is_forget[request.forget_idx] = True
    g = torch.Generator().manual_seed(int(seed))
    noise_id = torch.randint(0, noise_bank_size, (len(labels),), generator=g)
    extras = {"forget": is_forget, "y_orig": labels, "noise_id": noise_id}
    if targets == "soft":
        soft = torch.zeros((len(labels), k))
        soft[request.forget_idx] = soft_targets(scores)
        extras["soft"] = soft
    n_retain = min(len(request.retain_idx), int(round(retain_ratio * len(request.forget_idx))))
    forget_idx, retain_idx = request.forget_idx, request.retain_idx

    def sampler(epoch, gen):
        dev = gen.device
        r = retain_idx.to(dev)[torch.randperm(len(retain_idx), device=dev, generator=gen)[:n_retain]]
        both = torch.cat([forget_idx.to(dev), r])
        return both[torch.randperm(len(both), device=dev, generator=gen)]

    pos_d = pos.to(device) if pos is not None else None
    neg_d = neg.to(device) if neg is not None else None

    coin = torch.Generator(device=resolve_device(device)).manual_seed(int(seed) + 11)

    def loss_fn(m, xb, yb, ex):
        forget = ex["forget"]
        f = forget[:, None, None, None].to(xb.dtype)
        if noise_prob < 1:
            f = f * (torch.rand(f.shape, device=xb.device, generator=coin) < noise_prob).to(xb.dtype)
        if pos_d is not None:
            xb = xb + f * pos_d[yb, ex["noise_id"]]
        if neg_d is not None:
            xb = xb + f * neg_d[ex["y_orig"], ex["noise_id"]]
        logits = m(xb)
        if "soft" not in ex:
            return torch.nn.functional.cross_entropy(logits, yb, label_smoothing=label_smoothing)
        target = torch.nn.functional.one_hot(yb, k).to(logits.dtype)
        target = torch.where(forget[:, None], ex["soft"].to(logits.dtype), target)
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / k
        return torch.sum(-target * logits.log_softmax(1), 1).mean()

    cfg = train_config("fast", epochs=epochs, lr=lr, batch_size=batch_size, schedule="constant",
                       momentum=momentum, weight_decay=weight_decay, augment=False, nesterov=False,
                       freeze_bn=freeze_bn, label_smoothing=label_smoothing)
    train_model(model, data.train_x, y_train, cfg, extras=extras, loss_fn=loss_fn, sampler=sampler,
                seed=seed, device=device, progress=progress, desc="megu")
    details["n_retain_per_epoch"] = n_retain
    if bn_recalibrate:
        gr = torch.Generator().manual_seed(int(seed) + 7)
        pick = retain_idx[torch.randperm(len(retain_idx), generator=gr)[:int(bn_recalibrate)]]
        recalibrate_bn(model, data.train_x[pick], device=device)
    # MeGU's time: the noises' recorded optimisation time counts even when they came from
    # the cache; the judge's run (one-off, cached) is reported apart as judge_seconds
    details["extra_seconds"] = max(0.0, noise_seconds - noise_wall) - transition_wall
    return details


def _variant(name: str, summary: str, **fixed):
    """Register an ablation: MeGU with some knobs fixed (and removed from its hyperparameters)."""
    def fn(model, data, request, **kw):
        return megu(model, data, request, **kw, **fixed)
    sig = inspect.signature(megu)
    fn.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name not in fixed])
    fn.__doc__ = f"MeGU ablation: {summary} (fixed: {fixed})."
    register(name, summary=summary, source=SOURCE + " Ablation as in the paper's component study.")(fn)


_variant("megu_paper", "MeGU as the paper states it: hard perturbing labels, every forget sample noised",
         targets="hard", noise_prob=1.0)
_variant("megu_no_T", "perturbing labels from the model's prediction only, no transition matrix", rule="prediction")
_variant("megu_no_pos", "without the positive noise", use_pos=False)
_variant("megu_no_neg", "without the negative noise", use_neg=False)
_variant("megu_no_noise", "without both noises (perturbed labels only)", use_pos=False, use_neg=False)
_variant("megu_random_label", "random perturbing labels instead of guided ones", rule="random")
