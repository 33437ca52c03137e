"""NegGrad+: descend on the retain set and ascend on the forget set in the same step."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import hparams as hp
from ..training import train_model
from . import register
from ._common import masked_mean, schedule


def paired_batches(n_retain: int, n_forget: int, retain_batch: int, forget_batch: int):
    """A sampler for :func:`~megu_lib.training.train_model` over ``cat([retain, forget])``:
    every chunk of ``retain_batch + forget_batch`` indices is one retain batch followed by
    one forget batch. An epoch is one pass over the retain set; the forget set is cycled
    (reshuffled on each pass), as ``zip(retain_loader, cycle(forget_loader))`` does."""
    def sampler(epoch: int, gen: torch.Generator) -> torch.Tensor:
        dev = gen.device
        retain = torch.randperm(n_retain, device=dev, generator=gen)
        steps = -(-n_retain // retain_batch)
        passes = -(-steps * forget_batch // n_forget)
        forget = torch.cat([torch.randperm(n_forget, device=dev, generator=gen) for _ in range(passes)]) + n_retain
        chunks = []
        for i in range(steps):
            chunks.append(retain[i * retain_batch:(i + 1) * retain_batch])
            chunks.append(forget[i * forget_batch:(i + 1) * forget_batch])
        return torch.cat(chunks)
    return sampler


@register("neggrad", summary="NegGrad+: alpha * CE(retain) - (1 - alpha) * CE(forget), in paired batches",
          source="Kurmanji et al. 2023 (NeurIPS), 'Towards Unbounded Machine Unlearning' (meghdadk/SCRUB, "
                 "MIA_experiments.ipynb and small_scale_unlearning.ipynb: negative_grad / run_neggrad_epoch)",
          deviations='none known (an epoch is one pass over the retain set, the forget set cycled beside it)')
def neggrad(model, data, request, *, device, progress, seed, cache,
            alpha=hp.fraction(0.9999, search=hp.one_of(0.9, 0.95, 0.99, 0.999, 0.9999)), epochs=hp.epochs(5),
            lr=hp.lr(0.01, 1e-4, 0.1), batch_size=hp.batch_size(32), forget_batch_size=hp.batch_size(16),
            anchor=hp.Float(5e-4, 0, search=hp.log_range(1e-5, 1e-2)), augment=hp.flag(False)):
    """NegGrad+ (the baseline of Kurmanji et al. 2023): gradient descent on the retain set
    and ascent on the forget set, in one loss:
    ``alpha * (CE(retain) + anchor/2 * ||w - w0||^2) - (1 - alpha) * CE(forget)``, where
    ``w0`` are the original weights.

    Each step sees ``batch_size`` retain samples and ``forget_batch_size`` forget samples
    (the forget set cycled); an epoch is one pass over the retain set. Defaults from the
    SCRUB repository's one NegGrad+ run at full scale (MIA_experiments.ipynb, CIFAR-10
    with ResNet18, the SSD benchmark's scale): alpha 0.9999, 5 epochs, plain SGD at lr
    0.01 (no momentum, no weight decay), retain/forget batches 32/16, the L2 pull towards
    the original weights with the training weight decay 5e-4, no augmentation. Its
    small-scale notebook uses alpha 0.95, 10 epochs, batches 32/64: with the tiny alpha
    the ascent term only bites once the forget loss is large, so lower ``alpha`` for
    stronger forgetting. Hyperparameters: ``alpha``, ``epochs``, ``lr``, ``batch_size``,
    ``forget_batch_size``, ``anchor`` (the pull's weight; 0: off), ``augment``. Deviations
    from the reference code: none known.
    """
    xr, yr = request.retain_data(data)
    xf, yf = request.forget_data(data)
    x, y = torch.cat([xr, xf]), torch.cat([yr, yf])
    is_forget = torch.cat([torch.zeros(len(xr), dtype=torch.bool), torch.ones(len(xf), dtype=torch.bool)])
    params = [p for p in model.parameters() if p.requires_grad]
    origin = [p.detach().clone() for p in params]

    def loss_fn(m, xb, yb, ex):
        # one forward pass over the pair, so BatchNorm sees both halves together
        ce = F.cross_entropy(m(xb).float(), yb, reduction="none")
        f = ex["forget"]
        retain_loss = masked_mean(ce, ~f)
        if anchor > 0:
            retain_loss = retain_loss + anchor / 2 * sum((p - p0).pow(2).sum() for p, p0 in zip(params, origin))
        return alpha * retain_loss - (1 - alpha) * masked_mean(ce, f)

    cfg = schedule(model, data, epochs=epochs, lr=lr, batch_size=batch_size + forget_batch_size,
                   augment=augment, momentum=0.0, weight_decay=0.0)
    train_model(model, x, y, cfg, extras={"forget": is_forget}, loss_fn=loss_fn,
                sampler=paired_batches(len(xr), len(xf), batch_size, forget_batch_size),
                seed=seed, device=device, progress=progress, desc="neggrad")
    return {"n_forget": len(xf), "n_retain": len(xr)}
