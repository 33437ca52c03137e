"""Retrain from scratch on the retain set: the gold standard every method is compared with."""
from __future__ import annotations

from . import register
from ..trained import fit_model


@register("retrain", summary="all weights re-initialised, the original's schedule on the retain set",
          source="the exact-unlearning reference; protocol of Foster et al. 2024 (SSD), "
                 "with every layer re-initialised (not only the last)")
def retrain(model, data, request, *, device, progress, seed, cache, train=None, init_seed=None):
    """``train``: the schedule (default: the one the original was trained with, recorded on
    the model as ``train_config``; else the ``fast`` preset). ``init_seed``: the seed of
    the new initialisation and data order (default: the original's training seed)."""
    schedule = train if train is not None else getattr(model, "train_config", "fast")
    seed0 = init_seed if init_seed is not None else getattr(model, "train_seed", seed)
    arch = {k: v for k, v in model.config.items()}
    new = fit_model(data, arch=arch, train=schedule, seed=seed0, request=request, cache=cache,
                    device=device, progress=progress)
    return new, {"seconds": new.train_seconds, "train_device": new.train_device, "init_seed": seed0}
