"""UNSIR (Tarun et al. 2023, "Fast yet effective machine unlearning", IEEE TNNLS).

Impair: fine-tune one epoch on error-maximising noises of the forget classes (labelled
with those classes) mixed with a retain subsample, at a high learning rate; repair: one
epoch on the retain subsample at a lower rate. The noises come from
:mod:`megu_lib.noise` (``sign=-1``), the same code as MeGU's negative noise.

Reference defaults (the authors' CIFAR code): Adam lr 0.1 and λ 0.1 for the noise;
impair lr 0.02, repair lr 0.01, one epoch each, batch 256; a retain subsample per class
(``retain_per_class``). In the random scenario (which UNSIR does not define) the noises
are made for every class present in the forget set, in proportion to its share of it:
ours.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .. import hparams as hp
from ..noise import PARAMS as NOISE
from ..noise import noise_bank, stack_bank
from ..training import train_config, train_model
from . import MethodOutput, TimedPart, register


@register("unsir", summary="impair on error-maximising noise + retain subsample, then repair on retain",
          source="Tarun et al. 2023 (TNNLS), github.com/vikram2000b/Fast-Machine-Unlearning")
def unsir(model, data, request, *, device, progress, seed, cache,
          noise_steps=NOISE["steps"], noise_lr=NOISE["lr"], noise_lambda=NOISE["lam"],
          noise_per_class=NOISE["bank"].replace(default=64, search=hp.one_of(64, 256, 1024)),
          retain_per_class=hp.Int(500, 1, search=hp.one_of(100, 500, 1000)), impair_lr=hp.lr(0.02, 1e-4, 0.1),
          repair_lr=hp.lr(0.01, 1e-4, 0.1), impair_epochs=hp.epochs(1.0, 0.5, 3), repair_epochs=hp.epochs(1.0, 0.5, 3),
          batch_size=hp.batch_size(256)):
    """``noise_per_class``: noise samples per forget class (the noise bank);
    ``retain_per_class``: retain samples per class in the impair and repair sets.

    Time: the noises' recorded optimisation time counts, also when they come from the cache."""
    labels = request.train_labels(data)
    k = request.num_classes(data)
    yf = labels[request.forget_idx]
    shape = tuple(data.image_shape)

    t0 = time.perf_counter()
    noises, noise_seconds = noise_bank(model, yf.unique().tolist(), sign=-1, shape=shape, bank=noise_per_class,
                                       steps=noise_steps, lr=noise_lr, lam=noise_lambda, seed=seed,
                                       device=device, cache=cache)
    noise_wall = time.perf_counter() - t0
    bank = stack_bank(noises, k, shape)

    # a retain subsample: up to retain_per_class samples of each class
    g = torch.Generator().manual_seed(int(seed))
    ry = labels[request.retain_idx]
    keep = []
    for c in ry.unique():
        idx = request.retain_idx[ry == c]
        keep.append(idx[torch.randperm(len(idx), generator=g)[:retain_per_class]])
    retain_sub = torch.cat(keep)

    # noise carriers: forget indices whose image is replaced by a noise of their class,
    # as many per class as its share of the forget set (at least one bank's worth in the class scenario)
    counts = torch.bincount(yf, minlength=k).float()
    per_class = (counts / counts.sum() * noise_per_class * len(noises)).round().long().clamp(min=0)
    carriers, carrier_noise = [], []
    for c in noises:
        n = max(1, int(per_class[c]))
        src = request.forget_idx[yf == c]
        carriers.append(src[torch.randint(0, len(src), (n,), generator=g)])
        carrier_noise.append(torch.arange(n) % noise_per_class)
    carriers = torch.cat(carriers)
    noise_id = torch.zeros(len(labels), dtype=torch.long)
    is_noise = torch.zeros(len(labels), dtype=torch.bool)
    noise_id[carriers], is_noise[carriers] = torch.cat(carrier_noise), True
    bank_d = bank.to(device)

    def impair_loss(m, xb, yb, ex):
        xb = torch.where(ex["noise"][:, None, None, None], bank_d[yb, ex["noise_id"]], xb)
        return F.cross_entropy(m(xb), yb)

    impair_idx = torch.cat([carriers, retain_sub])
    cfg = train_config("fast", batch_size=batch_size, schedule="constant", augment=False, nesterov=False)
    train_model(model, data.train_x, labels, cfg.replace(epochs=impair_epochs, lr=impair_lr),
                extras={"noise": is_noise, "noise_id": noise_id}, loss_fn=impair_loss,
                sampler=lambda e, gen: impair_idx.to(gen.device)[torch.randperm(len(impair_idx), device=gen.device,
                                                                                generator=gen)],
                seed=seed, device=device, progress=progress, desc="unsir impair")
    train_model(model, data.train_x, labels, cfg.replace(epochs=repair_epochs, lr=repair_lr),
                sampler=lambda e, gen: retain_sub.to(gen.device)[torch.randperm(len(retain_sub), device=gen.device,
                                                                                generator=gen)],
                seed=seed + 1, device=device, progress=progress, desc="unsir repair")
    return MethodOutput(details={"n_impair": len(impair_idx), "n_repair": len(retain_sub)},
                        parts=(TimedPart("noises", wall=noise_wall, recorded=noise_seconds, counted=True),))
