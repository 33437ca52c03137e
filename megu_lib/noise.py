"""Class-conditional feature noises, shared by Fragment-Align (MeGU) and UNSIR.

A noise for class ``l`` is an input-shaped tensor optimised on the *frozen* model
(eval mode, no weight updates) with Adam, as UNSIR's error-maximising noise
(Tarun et al. 2023, "Fast yet effective machine unlearning"):

* ``sign=+1`` (MeGU's positive noise):  N_pos[l] = argmin_N  CE(f(N), l) + λ·R(N)
  — a pattern that evokes the features of concept ``l``;
* ``sign=-1`` (MeGU's negative noise, UNSIR's noise):  N_neg[y] = argmin_N −CE(f(N), y) + λ·R(N)
  — a pattern that counteracts the features of concept ``y``.

R(N) is the squared L2 norm of each noise sample (UNSIR's regulariser, ``norm="l2sq"``)
or its L2 norm (``norm="l2"``, the spec's ‖N‖); ``eps`` optionally bounds every pixel (ours:
an unbounded error-maximising noise grows far larger than the image it is added to). Noises live in pixel space: the
model normalises its input itself, and a noise is added to images in [0, 1] (MeGU) or
used as an input on its own (UNSIR). Defaults (Adam lr 0.1, λ 0.1) are UNSIR's; the
number of steps and the bank size (noises per class) are ours, named parameters.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from . import hparams as hp
from .cache import as_cache
from .errors import check
from .models import model_fingerprint
from .training import resolve_device

NORMS = ("l2sq", "l2")
#: The noise optimisation's knobs, declared once. MeGU and UNSIR take them as their
#: ``noise_*`` hyperparameters (UNSIR's bank size is its ``noise_per_class``).
PARAMS = {
    "steps": hp.Int(30, 1, search=hp.one_of(10, 30, 100), help="Adam steps"),
    "lr": hp.positive(0.1, search=hp.log_range(0.01, 1.0), help="Adam learning rate"),
    "lam": hp.Float(0.1, 0, search=hp.log_range(0.001, 1.0), help="weight of the norm penalty"),
    "bank": hp.Int(1, 1, help="noises per class"),
    "norm": hp.Choice("l2sq", NORMS, help="the penalty: squared L2 norm or L2 norm"),
    "eps": hp.positive(None, none=True, search=hp.one_of(0.1, 0.3, 1.0), help="L-infinity bound; None: unbounded"),
}


def check_noise_hp(steps, lr, lam, bank, norm="l2sq", eps=None):
    """One-line errors for bad noise hyperparameters, before any work (the :data:`PARAMS` declarations)."""
    hp.check_values(PARAMS, dict(steps=steps, lr=lr, lam=lam, bank=bank, norm=norm, eps=eps), "noise ")


def train_noises(model, labels, *, sign: int, shape, bank: int = 1, steps: int = 30, lr: float = 0.1,
                 lam: float = 0.1, norm: str = "l2sq", eps: float | None = None, init_scale: float = 0.1,
                 seed: int = 0, device=None) -> torch.Tensor:
    """Optimise ``bank`` noises of ``shape`` (C, H, W) for each class in ``labels`` on the frozen model.

    All noises are optimised jointly in one batch (each noise's loss term depends on it
    alone, so this equals optimising them one by one, only faster). ``sign=+1``: minimise
    CE to the class (positive noise); ``sign=-1``: maximise it (negative noise).
    ``eps``: an L∞ bound on every pixel of the noise (projected after each step; None = unbounded,
    as UNSIR). Returns a float tensor (len(labels), bank, C, H, W) on the CPU.
    """
    check(sign in (1, -1), f"noise sign must be +1 or -1, got {sign!r}")
    check_noise_hp(steps, lr, lam, bank, norm, eps)
    labels = [int(lab) for lab in labels]
    device = resolve_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator(device="cpu").manual_seed(int(seed) * 2 + (sign > 0))
    noise = torch.randn((len(labels) * bank, *shape), generator=g) * init_scale
    if eps is not None:
        noise = noise.clamp(-eps, eps)
    noise = noise.to(device).requires_grad_(True)
    target = torch.tensor(labels, device=device).repeat_interleave(bank)
    opt = torch.optim.Adam([noise], lr=lr)
    try:
        for _ in range(steps):
            # summed over noises: each noise gets the gradient of its own term only
            ce = F.cross_entropy(model(noise), target, reduction="none")
            reg = noise.pow(2).flatten(1).sum(1)
            reg = reg if norm == "l2sq" else (reg + 1e-12).sqrt()
            loss = ((ce if sign > 0 else -ce) + lam * reg).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if eps is not None:
                with torch.no_grad():
                    noise.clamp_(-eps, eps)
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)
    return noise.detach().cpu().view(len(labels), bank, *shape)


def noise_bank(model, labels, *, sign: int, shape, bank: int = 1, steps: int = 30, lr: float = 0.1,
               lam: float = 0.1, norm: str = "l2sq", eps: float | None = None, seed: int = 0, device=None,
               cache=None, model_key: str | None = None) -> tuple[dict, float]:
    """Noises for the classes in ``labels``: ({label: (bank, C, H, W) tensor}, seconds).

    Cached per model (``model_key``, default the weights' hash), set of classes, sign and
    hyperparameters. ``seconds`` is the recorded optimisation time, also when the noises
    come from the cache (so timings stay honest).
    """
    labels = sorted({int(lab) for lab in labels})
    key = dict(model=model_key or model_fingerprint(model), labels=labels, sign=int(sign), shape=list(shape),
               bank=bank, steps=steps, lr=lr, lam=lam, norm=norm, eps=eps, seed=int(seed))

    def make():
        start = time.perf_counter()
        n = train_noises(model, labels, sign=sign, shape=shape, bank=bank, steps=steps, lr=lr, lam=lam,
                         norm=norm, eps=eps, seed=seed, device=device)
        return {"noise": n, "seconds": time.perf_counter() - start}

    entry = as_cache(cache).get_or_make("noise", key, make)
    return {lab: entry["noise"][i] for i, lab in enumerate(labels)}, entry["seconds"]


def stack_bank(noises: dict, num_classes: int, shape) -> torch.Tensor:
    """{label: (bank, C, H, W)} -> a (num_classes, bank, C, H, W) tensor, zeros for absent classes."""
    bank = max(v.shape[0] for v in noises.values()) if noises else 1
    out = torch.zeros((num_classes, bank, *shape))
    for label, v in noises.items():
        out[label, : v.shape[0]] = v
    return out


@torch.no_grad()
def noise_effect(model, x: torch.Tensor, y: torch.Tensor, y_p: torch.Tensor, pos: torch.Tensor | None,
                 neg: torch.Tensor | None, *, device=None, batch_size: int | None = None):
    """What the noises do to the frozen ``model``'s predictions on forget samples.

    ``x``: images (N, C, H, W), uint8 or float in [0, 1]; ``y``: their labels; ``y_p``:
    their perturbing labels; ``pos``/``neg``: stacked banks (K, bank, C, H, W) from
    :func:`stack_bank` (None leaves that noise out). Sample i uses noise i mod bank.
    The inputs are x, x + N_pos[y_p], x + N_neg[y] and x + both (as MeGU builds them: no
    clipping). Returns a DataFrame, one row per input: ``acc_y`` (percent predicted y),
    ``pred_yp`` (percent predicted y_p), ``p_y``, ``p_yp`` (mean softmax probabilities, percent),
    ``top_label`` (the label predicted most often) and ``top_share`` (its share, percent).
    """
    from .training import predict_logits, to_float_images
    xf = to_float_images(x)
    n = len(y)
    i = torch.arange(n)
    n_pos = pos[y_p, i % pos.shape[1]] if pos is not None else None
    n_neg = neg[y, i % neg.shape[1]] if neg is not None else None
    inputs = {"clean x": xf}
    if n_pos is not None:
        inputs["x + N_pos[y_p]"] = xf + n_pos
    if n_neg is not None:
        inputs["x + N_neg[y]"] = xf + n_neg
    if n_pos is not None and n_neg is not None:
        inputs["x + both"] = xf + n_pos + n_neg
    rows = []
    for name, xi in inputs.items():
        p = predict_logits(model, xi, batch_size=batch_size, device=device).softmax(1)
        pred = p.argmax(1)
        counts = torch.bincount(pred, minlength=p.shape[1])
        rows.append(dict(input=name, acc_y=100 * float((pred == y).float().mean()),
                         pred_yp=100 * float((pred == y_p).float().mean()),
                         p_y=100 * float(p[i, y].mean()), p_yp=100 * float(p[i, y_p].mean()),
                         top_label=int(counts.argmax()), top_share=100 * float(counts.max()) / max(1, n)))
    import pandas as pd
    return pd.DataFrame(rows)
