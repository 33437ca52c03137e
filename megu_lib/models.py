"""Models: a small CNN (the CPU default), CIFAR-form ResNet18, a small ViT, ViT-B/16.

Every model takes float images in [0, 1] (N x C x H x W), normalises them itself (so
noises and perturbations live in pixel space), and exposes

* ``model.features(x)`` -> (N, D) penultimate activations, the input of the last layer;
* ``model.head`` -> the final ``nn.Linear`` (D -> num_classes);
* ``model.config`` -> the dict that :func:`build_model` rebuilds it from.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import MeguError, check


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Base: normalise -> ``body`` (returns features) -> ``head``."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        self.norm = Normalize(config["mean"], config["std"])

    def body(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, (N, D)."""
        return self.body(self.norm(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def feature_dim(self) -> int:
        return self.head.in_features


def _conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(Classifier):
    """Conv-BN-ReLU blocks with max-pooling; ``width`` scales the channels (default 32-32-64-64-128).

    ``convs``: 3x3 convolutions in each of the first two stages (2, the default, or 1: the
    32-64-128 form, about 2.5x faster to train on a CPU; see ``benchmarks/original_recipe.py``).
    """

    def __init__(self, config):
        super().__init__(config)
        w = config.get("width", 32)
        c = config["in_channels"]
        convs = config.get("convs", 2)
        check(convs in (1, 2), f"small_cnn: convs must be 1 or 2, got {convs!r}")

        def stage(cin, cout):
            return [_conv_bn(cin, cout)] + \
                   [_conv_bn(cout, cout) for _ in range(convs - 1)] + [nn.MaxPool2d(2)]

        self.net = nn.Sequential(*stage(c, w), *stage(w, 2 * w),
                                 _conv_bn(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * w, config["num_classes"])

    def body(self, x):
        return self.net(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(Classifier):
    """ResNet18 in the CIFAR form (He et al. 2016; 3x3 stem, stride 1, no max-pool)."""

    def __init__(self, config):
        super().__init__(config)
        w = config.get("width", 64)
        self.stem = nn.Sequential(nn.Conv2d(config["in_channels"], w, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        layers, cin = [], w
        for i, mult in enumerate((1, 2, 4, 8)):
            for j in range(2):
                layers.append(BasicBlock(cin, w * mult, 2 if (j == 0 and i > 0) else 1))
                cin = w * mult
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, config["num_classes"])

    def body(self, x):
        x = self.layers(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class ViT(Classifier):
    """A small Vision Transformer trained from scratch at 28-32 px (patch 4, pre-norm, CLS token)."""

    def __init__(self, config):
        super().__init__(config)
        p, d = config.get("patch", 4), config.get("dim", 192)
        size = config["image_size"]
        check(size % p == 0, f"vit: image size {size} is not a multiple of the patch size {p}")
        self.patch = nn.Conv2d(config["in_channels"], d, p, p)
        n = (size // p) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, config.get("heads", 3), int(d * config.get("mlp_ratio", 2)),
                                           dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.get("depth", 6), enable_nested_tensor=False)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, config["num_classes"])

    def body(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.pos
        return self.ln(self.encoder(x)[:, 0])


class PretrainedViT(Classifier):
    """ViT-B/16 from torchvision (ImageNet weights when a local file is given), at 224 px."""

    def __init__(self, config):
        super().__init__(config)
        import torchvision
        net = torchvision.models.vit_b_16(weights=None)
        weights = config.get("weights")
        if weights:
            try:
                net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            except (OSError, RuntimeError) as e:
                raise MeguError(f"vit_b16: cannot load weights from {weights!r} ({type(e).__name__}); "
                                "pass the path of torchvision's vit_b_16 state dict") from None
        self.channels = config["in_channels"]
        net.heads = nn.Identity()
        self.net = net
        self.head = nn.Linear(768, config["num_classes"])

    def body(self, x):
        if self.channels == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=224, mode="bilinear", align_corners=False)
        return self.net(x)


ARCHITECTURES = {"small_cnn": SmallCNN, "resnet18": ResNet18, "vit": ViT, "vit_b16": PretrainedViT}
#: The options (keyword arguments of :func:`build_model`) each architecture reads.
ARCH_OPTIONS = {"small_cnn": ("width", "convs"), "resnet18": ("width",),
                "vit": ("patch", "dim", "depth", "heads", "mlp_ratio"), "vit_b16": ("weights",)}


def model_config(arch: str = "small_cnn", data=None, *, num_classes: int | None = None,
                 in_channels: int | None = None, image_size: int | None = None,
                 mean=None, std=None, level: str | None = None, **options) -> dict:
    """The config dict :func:`build_model` builds from (see there for the arguments)."""
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise MeguError(f"unknown model {arch!r}: use one of {', '.join(ARCHITECTURES)}")
    unknown = set(options) - set(ARCH_OPTIONS[arch])
    check(not unknown, f"model {arch!r} has no option(s) {sorted(unknown)}; its options are: "
          f"{', '.join(ARCH_OPTIONS[arch])}")
    for name, value in options.items():
        if name == "mlp_ratio":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        elif name == "weights":
            ok = value is None or isinstance(value, str) or hasattr(value, "__fspath__")
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        check(ok, f"model {arch!r}: {name} must be a positive "
              f"{'number' if name == 'mlp_ratio' else 'path or None' if name == 'weights' else 'int'}, got {value!r}")
    if data is not None:
        num_classes = num_classes or data.num_classes(level)
        in_channels = in_channels or data.image_shape[0]
        image_size = image_size or data.image_shape[-1]
        mean, std = mean or data.mean, std or data.std
    check(num_classes is not None and num_classes >= 2, f"a model needs at least two classes, got {num_classes}")
    in_channels = in_channels or 3
    return dict(arch=arch, num_classes=int(num_classes), in_channels=int(in_channels),
                image_size=int(image_size or 32), mean=list(mean or [0.5] * in_channels),
                std=list(std or [0.25] * in_channels), **options)


def build_model(arch: str | dict = "small_cnn", data=None, *, seed: int | None = None, **kwargs) -> Classifier:
    """Build a freshly initialised model.

    ``arch``: ``small_cnn``, ``resnet18``, ``vit`` or ``vit_b16``, or a config dict (as
    ``model.config``). ``data``: a :class:`~megu_lib.data.Dataset` to take the number of
    classes (at ``level``), channels, image size and normalisation from; or give
    ``num_classes``, ``in_channels``, ``image_size``, ``mean``, ``std`` explicitly.
    ``seed``: seeds the initialisation. Other keywords are architecture knobs
    (``width``, ``depth``, ``dim``, ``patch``, ``heads``, ``weights``...).
    """
    if isinstance(arch, dict):
        config = dict(arch)
        check(config.get("arch") in ARCHITECTURES,
              f"unknown model {config.get('arch')!r}: use one of {', '.join(ARCHITECTURES)}")
    else:
        config = model_config(arch, data, **kwargs)
    if seed is None:
        return ARCHITECTURES[config["arch"]](config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[config["arch"]](config)


def rebuild(model: Classifier) -> Classifier:
    """A freshly initialised model of the same configuration (random weights)."""
    return ARCHITECTURES[model.config["arch"]](model.config)


def clone_model(model: Classifier) -> Classifier:
    """A deep copy on the same device (the original is never touched)."""
    import copy
    return copy.deepcopy(model)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's config and weights (its identity in cache keys)."""
    import hashlib
    import json
    h = hashlib.sha256(json.dumps(getattr(model, "config", {}), sort_keys=True, default=str).encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
