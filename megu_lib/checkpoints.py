"""Trained models on demand: originals and retrained references, cached by what determines them."""
from __future__ import annotations

import numbers
import time

import torch

from .cache import as_cache
from .data import Dataset
from .errors import check
from .models import build_model, model_config
from .requests import Request
from .training import TrainConfig, resolve_device, seed_everything, train_config, train_model


def model_key(data: Dataset, arch_config: dict, train: TrainConfig, seed: int, level: str,
              request: Request | None) -> dict:
    """Everything that determines a trained model: data, architecture, schedule, seed, request."""
    return dict(data=data.fingerprint(), level=level, arch=arch_config, train=train.to_dict(), seed=int(seed),
                request=None if request is None else request.key())


def fit_model(data: Dataset, *, arch: str | dict = "small_cnn", train: TrainConfig | str | dict | None = "fast",
              seed: int = 0, level: str | None = None, request: Request | None = None, cache=None,
              device=None, progress=None, **model_options) -> torch.nn.Module:
    """A model trained from scratch, from the cache when it exists.

    Without ``request``: the original model, trained on the whole training set. With a
    ``request``: the retrained reference, trained on its retain set only (at the
    request's label level), all weights freshly initialised. ``arch`` is a name or a
    model config dict (as ``model.config``). The returned model carries
    ``train_config``, ``train_seed`` and ``train_seconds`` (the recorded training
    time, also when loaded from the cache).
    """
    check(isinstance(data, Dataset), f"expected a Dataset from load_dataset, got {type(data).__name__}")
    check(len(data.train_y) > 0,
          f"data set {data.name!r} has no training samples: cannot train on an empty set of samples")
    check(isinstance(seed, numbers.Integral) and not isinstance(seed, bool), f"seed must be an int, got {seed!r}")
    check(request is None or isinstance(request, Request),
          f"request must be a Request (from make_request) or None, got {type(request).__name__}")
    cfg = train_config(train)
    level = request.level if request is not None else (level or data.label_level)
    if isinstance(arch, dict):
        config = dict(arch)
        check(config.get("num_classes") == data.num_classes(level),
              f"model config predicts {config.get('num_classes')} classes but the labels at level "
              f"{level!r} have {data.num_classes(level)}")
    else:
        config = model_config(arch, data, level=level, **model_options)
    key = model_key(data, config, cfg, seed, level, request)
    device = resolve_device(device)

    def make():
        seed_everything(seed)
        model = build_model(config)
        x = data.train_x if request is None else data.train_x[request.retain_idx]
        y = data.targets("train", level) if request is None else data.targets("train", level)[request.retain_idx]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_model(model, x, y, cfg.replace(hflip=cfg.hflip and data.hflip), seed=seed, device=device,
                    progress=progress, desc="retrain" if request is not None else "train")
        if device.type == "cuda":
            torch.cuda.synchronize()
        return dict(state_dict={k: v.cpu() for k, v in model.state_dict().items()}, config=config,
                    seconds=time.perf_counter() - start, device=str(device))

    entry = as_cache(cache).get_or_make("models", key, make, purpose="retrain" if request else "original")
    model = build_model(entry["config"])
    model.load_state_dict(entry["state_dict"])
    model.train_config, model.train_seed = cfg, int(seed)
    model.train_seconds, model.train_device = entry["seconds"], entry["device"]
    return model.to(device).eval()
