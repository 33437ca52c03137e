"""SCRUB: the student follows the original (teacher) on the retain set and moves away from it on the forget set."""
from __future__ import annotations

import math

import torch.nn.functional as F

from .. import hparams as hp
from ..training import train_model
from . import register
from ._common import frozen_copy, kl_per_sample, live_logits, schedule, teacher_logits


@register("scrub", summary="alternate max-steps (KL away from the teacher on forget) and min-steps "
                           "(KL to the teacher + CE on retain)",
          source="Kurmanji et al. 2023 (NeurIPS), 'Towards Unbounded Machine Unlearning' "
                 "(meghdadk/SCRUB, large_scale_unlearning.ipynb and thirdparty/repdistiller/helper/loops.py)",
          deviations='none known (a fractional last epoch does a partial min-step pass)')
def scrub(model, data, request, *, device, progress, seed, cache,
          epochs=hp.epochs(3), msteps=hp.Int(2, lo=0, search=hp.one_of(1, 2, 3)), lr=hp.lr(5e-4, 1e-5, 1e-2),
          temperature=hp.positive(4.0, search=hp.one_of(1.0, 2.0, 4.0)),
          alpha=hp.Float(0.001, 0, search=hp.log_range(1e-4, 1.0)),
          gamma=hp.Float(0.99, 0, search=hp.one_of(0.5, 0.99)),
          batch_size=hp.batch_size(256), forget_batch_size=hp.batch_size(512), augment=hp.flag(False)):
    """SCRUB (Kurmanji et al. 2023) with the frozen original as teacher and the model as student.

    Each epoch is a max-step pass over the forget set (only in the first ``msteps``
    epochs), minimising ``-T^2 KL(teacher || student)``, then a min-step pass over the
    retain set minimising ``gamma * CE + alpha * T^2 KL(teacher || student)`` (KL of the
    outputs softened by temperature ``T``, averaged over the batch). A fractional last
    epoch does a partial min-step pass.

    Defaults from the reference's large-scale notebook (CIFAR-10, ResNet18): 3 epochs,
    ``msteps`` 2, SGD at a constant lr 5e-4 (its decay epochs 3, 5, 9 fall after the
    last), momentum 0.9, weight decay 5e-4, temperature 4, ``gamma`` 0.99 (the CE weight)
    and ``alpha`` 0.001 (the KL weight; the paper's notation), retain batches of 256 and
    forget batches of 512 (its loaders), no augmentation. Hyperparameters: ``epochs``,
    ``msteps``, ``lr``, ``temperature``, ``alpha``, ``gamma``, ``batch_size``,
    ``forget_batch_size``, ``augment``. Deviations from the reference code: none known.
    """
    xr, yr = request.retain_data(data)
    xf, yf = request.forget_data(data)
    xr, yr, xf, yf = xr.to(device), yr.to(device), xf.to(device), yf.to(device)
    teacher = frozen_copy(model).to(device)
    t2 = temperature ** 2
    if augment:  # the teacher must see the augmented batch the student sees
        ex_r, ex_f = {}, {}

        def target(xb, ex):
            return live_logits(teacher, xb)
    else:  # one teacher forward per sample, once, instead of one per pass
        ex_r, ex_f = {"teacher": teacher_logits(teacher, xr, device)}, {"teacher": teacher_logits(teacher, xf, device)}

        def target(xb, ex):
            return ex["teacher"]

    def max_loss(m, xb, yb, ex):
        return -t2 * kl_per_sample(m(xb), target(xb, ex), temperature).mean()

    def min_loss(m, xb, yb, ex):
        logits = m(xb)
        return (gamma * F.cross_entropy(logits.float(), yb)
                + alpha * t2 * kl_per_sample(logits, target(xb, ex), temperature).mean())

    def cfg(fraction, bs):
        return schedule(model, data, epochs=fraction, lr=lr, batch_size=bs, augment=augment)

    rounds = math.ceil(epochs)
    for r in range(rounds):
        if r < msteps:
            train_model(model, xf, yf, cfg(1, forget_batch_size), extras=ex_f, loss_fn=max_loss,
                        seed=seed + 2 * r + 1, device=device, progress=progress, desc=f"scrub max {r + 1}")
        train_model(model, xr, yr, cfg(min(1.0, epochs - r), batch_size), extras=ex_r, loss_fn=min_loss,
                    seed=seed + 2 * r, device=device, progress=progress, desc=f"scrub min {r + 1}")
    return {"n_forget": len(xf), "n_retain": len(xr), "max_passes": min(msteps, rounds), "min_passes": rounds}
