"""Fine-tuning on the retain set only: the simplest baseline, forgetting by catastrophic interference."""
from __future__ import annotations

from .. import hparams as hp
from ..training import train_model
from . import register
from ._common import schedule


@register("finetune", summary="fine-tune the original on the retain set only",
          source="SSD benchmark baseline (Foster et al. 2024, AAAI; if-loops/selective-synaptic-dampening, "
                 "forget_*_strategies.finetune)",
          deviations='none known (epochs may be fractional: a random part of the retain set)')
def finetune(model, data, request, *, device, progress, seed, cache,
             epochs=hp.epochs(5), lr=hp.lr(0.02, 1e-4, 0.1), batch_size=hp.batch_size(64), augment=hp.flag(False)):
    """Fine-tune on the retain set with cross-entropy: the forget set is never seen again and
    fades by interference (the baseline of the SSD benchmark, Foster et al. 2024).

    Hyperparameters: ``epochs``, ``lr``, ``batch_size``, ``augment``. Defaults follow the
    SSD benchmark code (``finetune`` in if-loops/selective-synaptic-dampening): 5 epochs of
    SGD at a constant lr 0.02, momentum 0.9, weight decay 5e-4, batch 64 (the full-class
    scripts' loader; its random-forgetting script uses 128), on un-augmented images (the
    benchmark's ``unlearning=True`` transforms). ``epochs`` may be fractional: 0.2 visits a
    random fifth of the retain set. Deviations from the reference code: none known
    (fractional epochs are ours).
    """
    x, y = request.retain_data(data)
    cfg = schedule(model, data, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment)
    train_model(model, x, y, cfg, seed=seed, device=device, progress=progress, desc="finetune")
    return {"n_retain": len(x)}
