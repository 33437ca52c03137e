"""SalUn: random-label fine-tuning restricted to the weights most salient for the forget loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import hparams as hp
from ..training import train_model
from . import register
from ._common import batch_ce_gradients, schedule


def saliency_mask(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ratio: float, *,
                  batch_size: int, device, progress: bool | None = None) -> list[torch.Tensor]:
    """Weight saliency: ``|sum over forget batches of grad CE(batch)|`` per parameter (model
    in eval mode), then the top ``ratio`` of all entries, ranked across every parameter
    of the model, get 1 and the rest 0. One float mask per parameter, on ``device``."""
    params = [p for p in model.parameters() if p.requires_grad]
    grad = [torch.zeros_like(p) for p in params]
    for grads in batch_ce_gradients(model, x, y, params, batch_size=batch_size, device=device, progress=progress,
                                    desc="salun: saliency"):
        for acc, g in zip(grad, grads):
            if g is not None:
                acc.add_(g.float())
    flat = torch.cat([g.abs().flatten() for g in grad])
    keep = int(len(flat) * ratio)  # exactly this many, ties broken by position, as the reference's ranking
    chosen = torch.zeros(len(flat), device=flat.device)
    chosen[torch.argsort(flat, descending=True, stable=True)[:keep]] = 1
    return [m.view_as(p) for m, p in zip(chosen.split([p.numel() for p in params]), params)]


@register("salun", summary="saliency mask from the forget-loss gradient, then random-label fine-tuning "
                           "of the masked weights on forget ∪ retain",
          source="Fan et al. 2024 (ICLR), 'SalUn: Empowering Machine Unlearning via Gradient-based Weight "
                 "Saliency' (OPTML-Group/Unlearn-Saliency, Classification/generate_mask.py and unlearn/RL.py)",
          deviations="none known (weight decay is folded into the gradient before masking, which keeps the weights "
                     "outside the mask as the reference's restore step does)")
def salun(model, data, request, *, device, progress, seed, cache,
          mask_ratio=hp.fraction(0.5, lo_open=True, search=hp.one_of(0.1, 0.3, 0.5, 0.7, 0.9)), epochs=hp.epochs(10),
          lr=hp.lr(0.013, 1e-4, 0.1), batch_size=hp.batch_size(256), weight_decay=hp.Float(5e-4, 0),
          augment=hp.flag(True)):
    """SalUn (Fan et al. 2024) for classification: random-label fine-tuning that moves only
    the weights most salient for the forget loss.

    1. Saliency mask (:func:`saliency_mask`): the top ``mask_ratio`` of the weights by
       the magnitude of the forget-set loss gradient.
    2. Random labels: forget ∪ retain, shuffled together; every time a forget sample is
       drawn it gets a fresh uniformly random label (any class, possibly its own, as in
       the reference); SGD with cross-entropy where only the masked weights move. The
       weight decay is folded into the gradient before masking, so the weights outside
       the mask stay exactly as they were (as the reference's restore step ensures).

    Defaults from the reference's README example (ResNet18, CIFAR-10): mask ratio 0.5, 10
    epochs, SGD lr 0.013 (constant: its decay milestones 91, 136 lie beyond), momentum
    0.9, weight decay 5e-4, batch 256, the training augmentation. Hyperparameters:
    ``mask_ratio``, ``epochs``, ``lr``, ``batch_size``, ``weight_decay``, ``augment``.
    Deviations from the reference code: none known; the folded weight decay gives what its
    restore step gives.
    """
    xr, yr = request.retain_data(data)
    xf, yf = request.forget_data(data)
    mask = saliency_mask(model, xf, yf, mask_ratio, batch_size=batch_size, device=device, progress=progress)
    params = [p for p in model.parameters() if p.requires_grad]

    def grad_hook(m):
        for p, keep in zip(params, mask):
            if p.grad is not None:
                if weight_decay:
                    p.grad.add_(p.detach(), alpha=weight_decay)
                p.grad.mul_(keep)

    n_classes = request.num_classes(data)
    gen = torch.Generator(device=device).manual_seed(int(seed) + 1)

    def loss_fn(m, xb, yb, ex):
        f = ex["forget"]
        random = torch.randint(n_classes, yb.shape, device=yb.device, generator=gen)
        return F.cross_entropy(m(xb).float(), torch.where(f, random, yb))

    x, y = torch.cat([xf, xr]), torch.cat([yf, yr])
    is_forget = torch.cat([torch.ones(len(xf), dtype=torch.bool), torch.zeros(len(xr), dtype=torch.bool)])
    cfg = schedule(model, data, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment, weight_decay=0.0)
    train_model(model, x, y, cfg, extras={"forget": is_forget}, loss_fn=loss_fn, grad_hook=grad_hook,
                seed=seed, device=device, progress=progress, desc="salun")
    n_masked = int(sum(m.sum() for m in mask))
    return {"n_forget": len(xf), "n_retain": len(xr), "mask_fraction": n_masked / sum(m.numel() for m in mask)}
