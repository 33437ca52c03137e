"""Retrain from scratch on the retain set: the gold standard every method is compared with."""
from __future__ import annotations

import time

from .. import hparams as hp
from ..checkpoints import fit_model
from . import MethodOutput, TimedPart, register


def _schedule_problem(value) -> str | None:
    """None when ``value`` is a training schedule (preset name, dict or TrainConfig), else why not."""
    from ..errors import MeguError
    from ..training import train_config
    try:
        train_config(value)
    except MeguError as e:
        return str(e)
    return None


@register("retrain", summary="all weights re-initialised, the original's schedule on the retain set",
          source="the exact-unlearning reference; protocol of Foster et al. 2024 (SSD), "
                 "with every layer re-initialised (not only the last)")
def retrain(model, data, request, *, device, progress, seed, cache,
            train=hp.Param(None, "value", none=True, validate=_schedule_problem,
                           help="a training preset name, a mapping of schedule fields or a TrainConfig"),
            init_seed=hp.Int(None, lo=0, none=True)):
    """Exact unlearning, the reference of every comparison: a new model of the original's
    architecture, every weight initialised afresh, trained on the retain set alone with the
    original's schedule (the SSD benchmark's protocol, Foster et al. 2024, with every layer
    re-initialised, not only the last). It returns a new model (through
    :func:`~megu_lib.checkpoints.fit_model`, cached by what determines it).

    Hyperparameters: ``train``, the schedule (default: the one the original was trained
    with, recorded on the model as ``train_config``; else the ``fast`` preset);
    ``init_seed``, the seed of the new initialisation and data order (default: the
    original's training seed).

    Time: the recorded training time of the retrained model, also when it comes from the
    cache (a counted :class:`~megu_lib.methods.TimedPart`)."""
    schedule = train if train is not None else getattr(model, "train_config", "fast")
    seed0 = init_seed if init_seed is not None else getattr(model, "train_seed", seed)
    arch = {k: v for k, v in model.config.items()}
    t0 = time.perf_counter()
    new = fit_model(data, arch=arch, train=schedule, seed=seed0, request=request, cache=cache,
                    device=device, progress=progress)
    part = TimedPart("training", wall=time.perf_counter() - t0, recorded=new.train_seconds, counted=True)
    return MethodOutput(details={"train_device": new.train_device, "init_seed": seed0}, model=new, parts=(part,))
