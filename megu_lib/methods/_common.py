"""Helpers the baseline unlearning methods share: the fine-tuning schedule, frozen teachers, random labels and
masked losses.

Not a method (it registers nothing); the method files import it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import clone_model
from ..training import TrainConfig, autocast, fast_layout, predict_logits, progress_bar, to_float_images, train_config


# --------------------------------------------------------------------------- schedule
def schedule(model, data, *, epochs: float, lr: float, batch_size: int, augment: bool,
             optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 5e-4) -> TrainConfig:
    """A constant-learning-rate schedule, as the reference unlearning code uses throughout
    (plain momentum, no Nesterov). Augmentation, when on, is the original's: its crop
    padding (recorded on the model) and flips only where the data set allows them."""
    base = getattr(model, "train_config", None)
    padding = base.crop_padding if isinstance(base, TrainConfig) else train_config("fast").crop_padding
    return train_config("fast", epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer,
                        momentum=momentum, weight_decay=weight_decay, nesterov=False, schedule="constant",
                        augment=augment, crop_padding=padding, hflip=bool(data.hflip))


# --------------------------------------------------------------------------- teachers
def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` in eval mode with no gradients: a fixed teacher."""
    teacher = clone_model(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def teacher_logits(teacher: torch.nn.Module, x: torch.Tensor, device) -> torch.Tensor:
    """Logits of a frozen teacher on (un-augmented) images, float32 on the CPU: computed
    once, so that a loop without augmentation does not redo the teacher's forward pass."""
    return predict_logits(teacher, x, device=device)


@torch.no_grad()
def live_logits(teacher: torch.nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """Teacher logits on a batch as the student sees it (after augmentation)."""
    teacher.eval()
    return teacher(xb).float()


# --------------------------------------------------------------------------- losses
def kl_per_sample(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions, one value per row (nats)."""
    log_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="none").sum(1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` holds; 0 where it holds nowhere (no host sync)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1)


# --------------------------------------------------------------------------- labels and subsets
def random_wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator,
                        allowed: torch.Tensor | None = None) -> torch.Tensor:
    """A random label per sample, uniform over the classes other than its own, or over
    ``allowed`` (class ids) when given."""
    if allowed is not None:
        return allowed[torch.randint(len(allowed), y.shape, generator=generator)]
    r = torch.randint(num_classes - 1, y.shape, generator=generator)
    return r + (r >= y).long()


def seeded_subset(n: int, count: int, seed: int) -> torch.Tensor:
    """``count`` of ``range(n)`` drawn without replacement, sorted."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[:count].sort().values


def batch_ce_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, params, *, batch_size: int,
                       device, progress: bool | None = None, desc: str = "gradients"):
    """Yield, per mini-batch of (``x``, ``y``) in order, the gradients of the batch-mean
    cross-entropy with respect to ``params`` (model in eval mode, no augmentation; None
    for an unused parameter). Shared by SalUn's saliency and SSD's importances."""
    fast_layout(model, device).eval()
    with progress_bar(-(-len(x) // batch_size), desc, progress) as bar:
        for start in range(0, len(x), batch_size):
            xb = to_float_images(x[start:start + batch_size].to(device, non_blocking=True))
            yb = y[start:start + batch_size].to(device, non_blocking=True)
            xb = fast_layout(xb, device)
            with autocast(device):
                loss = F.cross_entropy(model(xb).float(), yb)
            yield torch.autograd.grad(loss, params, allow_unused=True)
            bar.update(1)
