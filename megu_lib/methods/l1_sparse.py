"""l1-sparse: fine-tune on the retain set with an l1 penalty that decays linearly to zero."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import hparams as hp
from ..training import train_model
from . import register
from ._common import schedule


@register("l1_sparse", summary="fine-tune on the retain set with gamma_e * ||w||_1, gamma_e falling linearly per epoch",
          source="Jia et al. 2023 (NeurIPS), 'Model Sparsity Can Simplify Machine Unlearning' "
                 "(OPTML-Group/Unlearn-Sparse, unlearn/FT.py: FT_l1 / FT_prune)",
          deviations='none known')
def l1_sparse(model, data, request, *, device, progress, seed, cache,
              gamma=hp.Float(5e-4, 0, search=hp.log_range(1e-5, 1e-3)), epochs=hp.epochs(10), lr=hp.lr(0.01, 1e-4, 0.1),
              batch_size=hp.batch_size(256), augment=hp.flag(True)):
    """ℓ1-sparse unlearning (Jia et al. 2023): fine-tune on the retain set minimising
    ``CE + gamma_e * sum |w|`` over all parameters, with ``gamma_e = gamma * (1 - e / epochs)``
    in epoch ``e = 0, 1, ...`` (the reference decays it once per epoch).

    Defaults from the reference: ``gamma`` 5e-4 (the paper's choice; the repository
    passes it as ``--alpha``), 10 epochs, SGD at a constant lr 0.01 (decay milestones 91,
    136 lie beyond), momentum 0.9, weight decay 5e-4, batch 256, the training
    augmentation. Hyperparameters: ``gamma``, ``epochs``, ``lr``, ``batch_size``,
    ``augment``. Deviations from the reference code: none known.
    """
    x, y = request.retain_data(data)
    params = [p for p in model.parameters() if p.requires_grad]
    steps_per_epoch = max(1, math.ceil(len(x) / batch_size))  # as train_model counts them
    step = [0]

    def loss_fn(m, xb, yb, ex):
        weight = gamma * (1 - (step[0] // steps_per_epoch) / epochs)
        step[0] += 1
        loss = F.cross_entropy(m(xb).float(), yb)
        if weight > 0:
            loss = loss + weight * torch.stack([p.abs().sum() for p in params]).sum()
        return loss

    cfg = schedule(model, data, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment)
    train_model(model, x, y, cfg, loss_fn=loss_fn, seed=seed, device=device, progress=progress, desc="l1_sparse")
    return {"n_retain": len(x), "l1_norm": float(sum(p.detach().abs().sum() for p in params))}
