"""Amnesiac unlearning: relabel the forget set at random and fine-tune on it with the retain set."""
from __future__ import annotations

import torch

from .. import hparams as hp
from ..training import train_model
from . import register
from ._common import random_wrong_labels, schedule


@register("random_label", summary="forget samples get random wrong labels; fine-tune on them with the retain set",
          source="Graves et al. 2021 (AAAI), amnesiac unlearning; defaults from the SSD benchmark "
                 "(if-loops/selective-synaptic-dampening, forget_*_strategies.amnesiac)",
          deviations='none known')
def random_label(model, data, request, *, device, progress, seed, cache,
                 epochs=hp.epochs(3), lr=hp.lr(1e-4, 1e-5, 1e-2), batch_size=hp.batch_size(128),
                 augment=hp.flag(False)):
    """Amnesiac unlearning (Graves et al. 2021), as the SSD benchmark runs it: each forget
    sample gets one random wrong label (drawn once, seeded); the model is then trained on
    forget ∪ retain, shuffled together, with cross-entropy.

    Wrong labels: in the class scenario drawn from the retained classes (the reference
    removes the forgotten class from the choices); otherwise any class but the sample's
    own (the reference's random-forgetting rule; in the subclass scenario that excludes
    the superclass). Defaults from the SSD benchmark's ``amnesiac``: 3 epochs of Adam at
    lr 1e-4 (no weight decay), batch 128, un-augmented images. Hyperparameters:
    ``epochs``, ``lr``, ``batch_size``, ``augment``. Deviations from the reference code:
    none known.
    """
    xr, yr = request.retain_data(data)
    xf, yf = request.forget_data(data)
    n_classes = request.num_classes(data)
    allowed = None
    if request.scenario == "class":
        keep = torch.ones(n_classes, dtype=torch.bool)
        keep[list(request.forget_classes)] = False
        allowed = keep.nonzero().squeeze(1)
    g = torch.Generator().manual_seed(int(seed))
    y_wrong = random_wrong_labels(yf, n_classes, g, allowed)
    x, y = torch.cat([xf, xr]), torch.cat([y_wrong, yr])
    cfg = schedule(model, data, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment,
                   optimizer="adam", weight_decay=0.0)
    train_model(model, x, y, cfg, seed=seed, device=device, progress=progress, desc="random_label")
    return {"n_forget": len(xf), "n_retain": len(xr)}
