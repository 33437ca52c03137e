"""Bad Teacher: distil from the original on retain samples and from a random network on forget samples."""
from __future__ import annotations

import torch

from .. import hparams as hp
from ..models import build_model
from ..training import train_model
from . import register
from ._common import frozen_copy, kl_per_sample, live_logits, schedule, seeded_subset, teacher_logits


@register("bad_teacher", summary="KL distillation: competent teacher on retain, incompetent (random) teacher on forget",
          source="Chundawat et al. 2023 (AAAI), 'Can bad teaching induce forgetting?' "
                 "(vikram2000b/bad-teaching-unlearning; as run in the SSD benchmark, forget_*_strategies.blindspot)",
          deviations='none known')
def bad_teacher(model, data, request, *, device, progress, seed, cache,
                epochs=hp.epochs(1), lr=hp.lr(1e-4, 1e-5, 1e-2), batch_size=hp.batch_size(256),
                temperature=hp.positive(1.0, search=hp.one_of(1.0, 2.0, 4.0)),
                retain_fraction=hp.fraction(0.3, lo_open=True, search=hp.linear_range(0.1, 1.0)),
                augment=hp.flag(False)):
    """Bad Teacher (Chundawat et al. 2023): the student (the model) minimises
    KL(teacher || student) of temperature-softened outputs, where the teacher is the frozen
    original on retain samples and a randomly initialised network of the same configuration
    (seeded by ``seed``) on forget samples.

    The training set is the whole forget set plus a seeded random ``retain_fraction`` of
    the retain set, shuffled together. Defaults from the reference (and the SSD
    benchmark's ``blindspot``): 1 epoch of Adam at lr 1e-4, batch 256, temperature 1,
    30% of the retain set; the SSD benchmark feeds un-augmented images. Hyperparameters:
    ``epochs``, ``lr``, ``batch_size``, ``temperature``, ``retain_fraction``, ``augment``.
    Deviations from the reference code: none known.
    """
    xr, yr = request.retain_data(data)
    xf, yf = request.forget_data(data)
    keep = seeded_subset(len(xr), max(1, round(retain_fraction * len(xr))), seed)
    xr, yr = xr[keep], yr[keep]
    x, y = torch.cat([xf, xr]), torch.cat([yf, yr])
    is_forget = torch.cat([torch.ones(len(xf), dtype=torch.bool), torch.zeros(len(xr), dtype=torch.bool)])

    good = frozen_copy(model).to(device)
    bad = build_model(model.config, seed=seed).to(device).eval()
    for p in bad.parameters():
        p.requires_grad_(False)

    if augment:  # the teachers must see the augmented batch the student sees
        extras = {"forget": is_forget}

        def targets(xb, ex):
            return torch.where(ex["forget"][:, None], live_logits(bad, xb), live_logits(good, xb))
    else:  # one teacher forward per sample, once
        extras = {"forget": is_forget, "teacher": torch.cat([teacher_logits(bad, xf, device),
                                                             teacher_logits(good, xr, device)])}

        def targets(xb, ex):
            return ex["teacher"]

    def loss_fn(m, xb, yb, ex):
        return kl_per_sample(m(xb), targets(xb, ex), temperature).mean()

    cfg = schedule(model, data, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment,
                   optimizer="adam", weight_decay=0.0)
    train_model(model, x, y, cfg, extras=extras, loss_fn=loss_fn, seed=seed, device=device,
                progress=progress, desc="bad_teacher")
    return {"n_forget": len(xf), "n_retain_used": len(xr)}
