"""Unlearning requests: which training samples to forget, in three scenarios.

* ``class``: every training sample of one (or more) classes;
* ``subclass``: the model predicts coarse labels; forget every sample of one fine class
  inside its superclass, keep the superclass's other fine classes;
* ``random``: a seeded random fraction (or count) of training samples of any class.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers

import torch

from .data import CIFAR20_ALIASES, Dataset
from .errors import MeguError, check

SCENARIOS = ("class", "subclass", "random")


@dataclasses.dataclass(frozen=True)
class Request:
    """A forget request on a data set.

    ``level``: the labels the model predicts ("fine" or "coarse"). ``forget_classes``:
    forgotten class ids at ``level`` (class scenario), fine class ids (subclass), or
    empty (random). ``forget_idx``/``retain_idx``: training-set indices (sorted).
    ``test_forget_mask``: test samples of the forgotten concept (None in the random scenario).
    """

    scenario: str
    forget: tuple
    level: str
    forget_classes: tuple
    forget_idx: torch.Tensor
    retain_idx: torch.Tensor
    test_forget_mask: torch.Tensor | None
    data_fingerprint: str
    seed: int = 0

    @property
    def forgets_classes(self) -> bool:
        """True where whole concepts are forgotten (class and subclass scenarios)."""
        return self.test_forget_mask is not None

    def key(self) -> dict:
        """What identifies the request in cache keys: scenario, targets and the forget indices' hash."""
        h = hashlib.sha256(self.forget_idx.numpy().tobytes()).hexdigest()[:16]
        return dict(scenario=self.scenario, forget=list(self.forget), level=self.level,
                    data=self.data_fingerprint, forget_idx=h, n_forget=len(self.forget_idx))

    def label(self) -> str:
        """A short human-readable name, e.g. ``class:Shirt`` or ``random:0.01``."""
        return f"{self.scenario}:{','.join(map(str, self.forget))}"

    def train_labels(self, data: Dataset) -> torch.Tensor:
        return data.targets("train", self.level)

    def test_labels(self, data: Dataset) -> torch.Tensor:
        return data.targets("test", self.level)

    def num_classes(self, data: Dataset) -> int:
        return data.num_classes(self.level)

    def retain_data(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the retain set, labels at the model's level."""
        return data.train_x[self.retain_idx], self.train_labels(data)[self.retain_idx]

    def forget_data(self, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the forget set, labels at the model's level."""
        return data.train_x[self.forget_idx], self.train_labels(data)[self.forget_idx]

    def __repr__(self) -> str:
        return (f"Request({self.label()}, level={self.level!r}, forget {len(self.forget_idx)}, "
                f"retain {len(self.retain_idx)})")


def check_compatible(model, data: Dataset, request: Request) -> None:
    """Model, data set and request must agree: the request was made from ``data``, and the
    model predicts as many classes as the request's label level has and takes images of
    the data set's channels. A mismatch is a one-line :class:`MeguError` (not an
    IndexError from inside torch)."""
    check(request.data_fingerprint == data.fingerprint(), "the request was made for another data set; "
          "build it with make_request on the same data")
    config = getattr(model, "config", None) or {}
    n_out, k = config.get("num_classes"), request.num_classes(data)
    check(n_out is None or n_out == k,
          f"the model predicts {n_out} classes but the request's {request.level!r} labels of {data.name} have {k}; "
          f"use a model trained at level {request.level!r} on this data set (fit_model(data, level={request.level!r}))")
    channels = config.get("in_channels")
    check(channels is None or channels == data.image_shape[0],
          f"the model takes {channels}-channel images but {data.name} has {data.image_shape[0]}; "
          "use a model trained on this data set")


def _resolve_class(name, names: tuple, what: str) -> int:
    if isinstance(name, bool):
        raise MeguError(f"{what} must be a class name or index, got {name!r}")
    if isinstance(name, int):
        check(0 <= name < len(names), f"{what} index {name} is out of range 0..{len(names) - 1}")
        return name
    text = str(name)
    text = CIFAR20_ALIASES.get(text, text)
    lowered = {n.lower(): i for i, n in enumerate(names)}
    if text.lower() in lowered:
        return lowered[text.lower()]
    raise MeguError(f"{what} {name!r} is not in the data set: choose from {', '.join(names)}")


def make_request(data: Dataset, scenario: str = "class", forget=None, *, fraction: float | None = None,
                 seed: int = 0) -> Request:
    """Build a forget request.

    ``scenario="class"``: ``forget`` names one class or a list of classes (names or ids
    of the labels the model predicts). ``scenario="subclass"``: ``forget`` names fine
    classes; the model predicts coarse labels (the data set must have them).
    ``scenario="random"``: forget a seeded random ``fraction`` in (0, 1) of the training
    set (``forget`` may give the fraction, or an int count).
    """
    check(isinstance(data, Dataset), f"make_request needs a Dataset (from load_dataset), got {type(data).__name__}")
    check(scenario in SCENARIOS, f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")
    check(isinstance(seed, numbers.Integral) and not isinstance(seed, bool), f"seed must be an int, got {seed!r}")
    n_train = len(data.train_y)
    check(n_train >= 2, f"data set {data.name!r} has {n_train} training sample(s); a request needs some to "
          "forget and some to retain")
    if scenario == "random":
        value = fraction if fraction is not None else forget
        value = value if value is not None else 0.01
        check(isinstance(value, (int, float)) and not isinstance(value, bool),
              f"random scenario: the forget fraction must be a number in (0, 1), got {value!r}")
        if isinstance(value, int) and value >= 1:
            check(value < n_train, f"random scenario: cannot forget {value} of {n_train} training samples; "
                  "leave some to retain")
            count = value
        else:
            check(0 < value < 1, f"random scenario: the forget fraction must be in (0, 1), got {value}")
            count = max(1, int(round(value * n_train)))
            check(count < n_train, f"random scenario: a fraction of {value} forgets all {n_train} training samples; "
                  "use a smaller fraction")
        g = torch.Generator().manual_seed(int(seed))
        forget_idx = torch.randperm(n_train, generator=g)[:count].sort().values
        mask = torch.zeros(n_train, dtype=torch.bool)
        mask[forget_idx] = True
        return Request("random", (value,), data.label_level, (), forget_idx,
                       (~mask).nonzero().squeeze(1), None, data.fingerprint(), int(seed))

    check(forget is not None, f"{scenario} scenario: name the class(es) to forget, e.g. forget={data.classes[0]!r}")
    targets = list(forget) if isinstance(forget, (list, tuple)) else [forget]
    check(len(targets) > 0, f"{scenario} scenario: name at least one class to forget")
    if scenario == "class":
        level = data.label_level
        names = data.class_names(level)
        ids = tuple(sorted({_resolve_class(t, names, "forget class") for t in targets}))
        train_labels, test_labels = data.targets("train", level), data.targets("test", level)
    else:
        check(data.has_coarse, f"the subclass scenario needs coarse labels, and data set {data.name!r} has none; "
              "use the class or random scenario, or a data set with a coarse grouping "
              "(fashion_mnist, cifar100, cifar20)")
        level = "coarse"
        ids = tuple(sorted({_resolve_class(t, data.classes, "forget subclass") for t in targets}))
        train_labels, test_labels = data.train_y, data.test_y
        coarse = data.coarse_of_fine()
        for i in ids:
            siblings = (coarse == coarse[i]).sum().item()
            check(siblings > 1, f"subclass {data.classes[i]!r} is the only fine class of its superclass "
                  f"{data.coarse_classes[coarse[i]]!r}: forgetting it is a class request; pick another")
    idset = torch.tensor(ids)
    mask = torch.isin(train_labels, idset)
    check(mask.any(), f"{scenario} scenario: no training samples of {targets} in {data.name!r}")
    check((~mask).any(), f"{scenario} scenario: forgetting {targets} would forget the whole training set; "
          "leave at least one class to retain")
    return Request(scenario, tuple(data.class_names(level)[i] if scenario == "class" else data.classes[i] for i in ids),
                   level, ids, mask.nonzero().squeeze(1), (~mask).nonzero().squeeze(1),
                   torch.isin(test_labels, idset), data.fingerprint(), int(seed))


def config_hash(obj) -> str:
    """A short stable hash of a JSON-able object (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
