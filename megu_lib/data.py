"""Data sets as tensors: Fashion-MNIST (embedded default), CIFAR-10/20/100, image folders.

Every loader returns a :class:`Dataset` holding uint8 image tensors (N x C x H x W)
and int64 labels. Images stay uint8 until a batch is drawn (the training loop turns
them into floats in [0, 1] on the device), so a whole data set fits on a GPU and the
CPU copy stays small. Normalisation lives in the model (see :mod:`megu_lib.models`).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from .errors import MeguError, check

# --------------------------------------------------------------------------- facts
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: Our own coarse grouping of Fashion-MNIST for the subclass scenario (the data set has none; the book page *The
#: method, and our reading of it*, *The setting*): upper-body garments, bottoms & dresses, footwear, bags.
FASHION_MNIST_COARSE = {
    "tops": ("T-shirt/top", "Pullover", "Coat", "Shirt"),
    "bottoms & dresses": ("Trouser", "Dress"),
    "footwear": ("Sandal", "Sneaker", "Ankle boot"),
    "bags": ("Bag",),
}
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
#: The CIFAR-100 superclasses (Krizhevsky 2009), in the order of the data set's coarse
#: label ids; each lists its five fine classes.
CIFAR100_COARSE = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR100_CLASSES = tuple(sorted(c for group in CIFAR100_COARSE.values() for c in group))
#: Short superclass names used by the SSD benchmark line of work for CIFAR-20 targets.
CIFAR20_ALIASES = {
    "vehicle2": "vehicles_2", "vehicle1": "vehicles_1", "veg": "fruit_and_vegetables",
    "electrical_devices": "household_electrical_devices",
    "natural_scenes": "large_natural_outdoor_scenes",
}

KNOWN_DATASETS = ("fashion_mnist", "cifar10", "cifar100", "cifar20")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
)


def data_dir() -> Path:
    """The user data directory: ``$MEGU_DATA_DIR`` or ``~/.local/share/megu_lib``."""
    return Path(os.environ.get("MEGU_DATA_DIR", Path.home() / ".local" / "share" / "megu_lib"))


# --------------------------------------------------------------------------- Dataset
@dataclasses.dataclass
class Dataset:
    """A labelled image data set as tensors.

    ``train_x``/``test_x``: uint8, N x C x H x W. ``train_y``/``test_y``: int64 labels
    indexing ``classes``. ``coarse_*``: optional coarser labels (a superclass per sample)
    indexing ``coarse_classes``, for the subclass scenario. ``label_level`` says which
    labels a model predicts in the class and random scenarios (``"coarse"`` for CIFAR-20).
    ``mean``/``std``: per-channel statistics of the training images in [0, 1], used by
    the model's normalisation layer. ``hflip``: whether horizontal flips are a
    label-preserving augmentation here.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple
    coarse_train: torch.Tensor | None = None
    coarse_test: torch.Tensor | None = None
    coarse_classes: tuple | None = None
    label_level: str = "fine"
    hflip: bool = True
    source: str = ""
    mean: tuple = ()
    std: tuple = ()

    def __post_init__(self):
        self.classes = tuple(self.classes)
        if self.coarse_classes is not None:
            self.coarse_classes = tuple(self.coarse_classes)
        if not self.mean:
            x = self.train_x[: 10000].float() / 255
            self.mean = tuple(round(float(v), 4) for v in x.mean(dim=(0, 2, 3)))
            self.std = tuple(round(max(float(v), 1e-3), 4) for v in x.std(dim=(0, 2, 3)))

    # -- shapes
    @property
    def image_shape(self) -> tuple:
        """(C, H, W) of one image."""
        return tuple(self.train_x.shape[1:])

    @property
    def has_coarse(self) -> bool:
        return self.coarse_classes is not None

    def _level(self, level: str | None) -> str:
        level = level or self.label_level
        check(level in ("fine", "coarse"), f"label level must be 'fine' or 'coarse', got {level!r}")
        return level

    def targets(self, split: str = "train", level: str | None = None) -> torch.Tensor:
        """Labels of ``split`` ("train"/"test") at ``level`` ("fine"/"coarse", default ``label_level``)."""
        check(split in ("train", "test"), f"split must be 'train' or 'test', got {split!r}")
        level = self._level(level)
        if level == "fine":
            return self.train_y if split == "train" else self.test_y
        check(self.has_coarse, f"data set {self.name!r} has no coarse labels; use level='fine'")
        return self.coarse_train if split == "train" else self.coarse_test

    def class_names(self, level: str | None = None) -> tuple:
        """Names of the labels at ``level`` (default ``label_level``)."""
        level = self._level(level)
        if level == "fine":
            return self.classes
        check(self.has_coarse, f"data set {self.name!r} has no coarse labels; use level='fine'")
        return self.coarse_classes

    def num_classes(self, level: str | None = None) -> int:
        return len(self.class_names(level))

    def coarse_of_fine(self) -> torch.Tensor:
        """For each fine class, its coarse label (K_fine,), from the training labels."""
        check(self.has_coarse, f"data set {self.name!r} has no coarse labels")
        out = torch.full((len(self.classes),), -1, dtype=torch.long)
        out[self.train_y] = self.coarse_train
        return out

    def fingerprint(self) -> str:
        """A short hash of images, labels and class names: the data set's identity in cache keys."""
        if not hasattr(self, "_fingerprint"):
            h = hashlib.sha256()
            for t in (self.train_x, self.train_y, self.test_x, self.test_y,
                      self.coarse_train, self.coarse_test):
                if t is not None:
                    h.update(str(tuple(t.shape)).encode())
                    h.update(t.contiguous().numpy().tobytes())
            h.update(repr((self.classes, self.coarse_classes, self.label_level)).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "Dataset":
        """A stratified random subset (for quick profiles and tests); class structure kept."""
        for n in (n_train, n_test):
            check(n is None or (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0),
                  f"subset sizes must be positive ints (or None for all), got {n!r}")

        def pick(y, n):
            if n is None or n >= len(y):
                return torch.arange(len(y))
            g = torch.Generator().manual_seed(seed)
            order = torch.randperm(len(y), generator=g)
            # stratify: round-robin over classes in a random order
            ranks = torch.empty_like(order)
            ys = y[order]
            for c in ys.unique():
                pos = (ys == c).nonzero().squeeze(1)
                ranks[pos] = torch.arange(len(pos))
            keep = order[torch.argsort(ranks * (len(y) + 1) + torch.arange(len(y)), stable=True)[:n]]
            return keep.sort().values

        tr, te = pick(self.train_y, n_train), pick(self.test_y, n_test)
        out = dataclasses.replace(
            self, train_x=self.train_x[tr], train_y=self.train_y[tr],
            test_x=self.test_x[te], test_y=self.test_y[te],
            coarse_train=None if self.coarse_train is None else self.coarse_train[tr],
            coarse_test=None if self.coarse_test is None else self.coarse_test[te],
            name=f"{self.name}[{len(tr)}/{len(te)}]",
        )
        return out

    def validation_split(self, fraction: float = 0.1, seed: int = 0) -> "Dataset":
        """A data set whose *test* part is a stratified ``fraction`` held out of the training
        data, and whose training part is the rest: for choosing hyperparameters without
        ever looking at the real test set."""
        check(isinstance(fraction, (int, float)) and 0 < fraction < 1,
              f"validation fraction must be in (0, 1), got {fraction!r}")
        g = torch.Generator().manual_seed(seed)
        val = torch.zeros(len(self.train_y), dtype=torch.bool)
        for c in self.train_y.unique():
            idx = (self.train_y == c).nonzero().squeeze(1)
            val[idx[torch.randperm(len(idx), generator=g)[: max(1, int(round(fraction * len(idx))))]]] = True
        pick = lambda t, m: None if t is None else t[m]
        return dataclasses.replace(
            self, name=f"{self.name}/val{fraction:g}s{seed}", train_x=self.train_x[~val], train_y=self.train_y[~val],
            test_x=self.train_x[val], test_y=self.train_y[val], coarse_train=pick(self.coarse_train, ~val),
            coarse_test=pick(self.coarse_train, val))

    def __repr__(self) -> str:
        coarse = f", {len(self.coarse_classes)} coarse" if self.has_coarse else ""
        return (f"Dataset({self.name!r}: train {tuple(self.train_x.shape)}, test "
                f"{tuple(self.test_x.shape)}, {len(self.classes)} classes{coarse}, "
                f"label_level={self.label_level!r})")


def _coarse_labels(fine_y: torch.Tensor, classes, grouping: dict) -> tuple[torch.Tensor, tuple]:
    names = tuple(grouping)
    lookup = {c: i for i, group in enumerate(grouping.values()) for c in group}
    table = torch.tensor([lookup[c] for c in classes])
    return table[fine_y], names


# --------------------------------------------------------------------------- loaders
def load_dataset(name_or_path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                 download: bool = True, image_size: int | None = None,
                 test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load a data set by name or from an image folder.

    ``name_or_path``: one of ``fashion_mnist``, ``cifar10``, ``cifar100``, ``cifar20``
    (CIFAR-100 images, models predict the 20 superclasses; the 100 classes are the fine
    labels), or a folder with one sub-folder per class (``train/`` and ``test/``
    sub-folders when present, else a seeded split with ``test_fraction``).
    ``root``: where CIFAR / Fashion-MNIST files live (default: the user data directory).
    ``download``: let torchvision's downloader try when files are missing.
    ``image_size``: resize folder images to this square size (default: keep; mixed
    sizes are resized to the most common size).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise MeguError(f"data set must be a name or a folder path, got {type(name_or_path).__name__}")
    key = str(name_or_path).strip()
    check(key != "",
          f"the data set name is empty: use one of {', '.join(KNOWN_DATASETS)} or the path of an image folder")
    norm = key.lower().replace("-", "_")
    if norm in ("fashion_mnist", "fashionmnist", "fmnist"):
        return _load_fashion_mnist(root, download)
    if norm in ("cifar10", "cifar100", "cifar20"):
        return _load_cifar(norm, root, download)
    path = Path(key).expanduser()
    if path.is_dir():
        return load_image_folder(path, image_size=image_size, test_fraction=test_fraction, seed=seed)
    raise MeguError(
        f"unknown data set {key!r}: use one of {', '.join(KNOWN_DATASETS)} "
        f"or the path of a folder with one sub-folder of images per class")


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    check(len(raw) >= 8, f"{path} is not an IDX file (too short); re-install the data")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    check(data.size == int(np.prod(dims)), f"{path} is truncated; re-install the data")
    return data.reshape(dims)


def _find_fashion_mnist(root) -> Path | None:
    candidates = [Path(root).expanduser()] if root else []
    candidates += [FASHION_MNIST_SYSTEM_DIR, data_dir() / "fashion_mnist",
                   data_dir() / "fashion_mnist" / "FashionMNIST" / "raw"]
    for d in candidates:
        for suffix in ("", ".gz"):
            names = [f[:-3] + suffix for f in FASHION_MNIST_FILES]
            if all((d / n).is_file() for n in names):
                return d
    return None


def _load_fashion_mnist(root, download: bool) -> Dataset:
    folder = _find_fashion_mnist(root)
    if folder is None and download:
        try:  # torchvision's downloader, for users who are online
            import torchvision
            target = data_dir() / "fashion_mnist"
            torchvision.datasets.FashionMNIST(str(target), train=True, download=True)
            torchvision.datasets.FashionMNIST(str(target), train=False, download=True)
        except Exception:  # offline: fall through to the clear error below
            pass
        folder = _find_fashion_mnist(root)
    if folder is None:
        raise MeguError(
            f"Fashion-MNIST not found in {FASHION_MNIST_SYSTEM_DIR} or {data_dir() / 'fashion_mnist'} and "
            "it cannot be downloaded: install it with `apt-get install dataset-fashion-mnist` "
            "(or `make data`), or put the four IDX files in one of those folders")

    def read(stem):
        p = folder / stem
        return _read_idx(p if p.is_file() else folder / (stem[:-3]))

    tr_x, tr_y, te_x, te_y = (read(f) for f in FASHION_MNIST_FILES)
    train_y = torch.from_numpy(tr_y.astype(np.int64))
    test_y = torch.from_numpy(te_y.astype(np.int64))
    coarse_train, coarse_names = _coarse_labels(train_y, FASHION_MNIST_CLASSES, FASHION_MNIST_COARSE)
    coarse_test, _ = _coarse_labels(test_y, FASHION_MNIST_CLASSES, FASHION_MNIST_COARSE)
    return Dataset(
        name="fashion_mnist",
        train_x=torch.from_numpy(tr_x.copy()).unsqueeze(1), train_y=train_y,
        test_x=torch.from_numpy(te_x.copy()).unsqueeze(1), test_y=test_y,
        classes=FASHION_MNIST_CLASSES, coarse_train=coarse_train, coarse_test=coarse_test,
        coarse_classes=coarse_names, hflip=True, source=str(folder),
    )


def _cifar_folder(name: str) -> str:
    return "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"


def _read_cifar_pickles(folder: Path, names) -> dict:
    """Concatenate CIFAR's python pickles (``data`` rows of 3072 bytes, label lists)."""
    parts = {}
    for n in names:
        with open(folder / n, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        for k, v in entry.items():
            if k in ("data", "labels", "fine_labels", "coarse_labels"):
                parts.setdefault(k, []).append(np.asarray(v))
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["x"] = torch.from_numpy(out.pop("data").reshape(-1, 3, 32, 32).copy())
    return out


def _load_cifar(name: str, root, download: bool) -> Dataset:
    base = Path(root).expanduser() if root else data_dir() / "cifar"
    folder = base / _cifar_folder(name)
    train_names = [f"data_batch_{i}" for i in range(1, 6)] if name == "cifar10" else ["train"]
    test_names = ["test_batch"] if name == "cifar10" else ["test"]
    missing = lambda: not all((folder / n).is_file() for n in train_names + test_names)
    if missing() and download:
        try:  # torchvision's downloader (verifies checksums), for users who are online
            import torchvision
            cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            cls(str(base), train=True, download=True)
        except Exception:  # offline: fall through to the clear error below
            pass
    if missing():
        raise MeguError(f"{name} not found in {folder} and it could not be downloaded; run once with "
                        f"network access, or copy torchvision's {folder.name} folder there (or pass root=)")
    try:
        tr, te = _read_cifar_pickles(folder, train_names), _read_cifar_pickles(folder, test_names)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
        raise MeguError(f"{folder} is damaged ({type(e).__name__}); delete it and download again") from None
    if name == "cifar10":
        return Dataset(name=name, train_x=tr["x"], train_y=torch.from_numpy(tr["labels"]).long(),
                       test_x=te["x"], test_y=torch.from_numpy(te["labels"]).long(),
                       classes=CIFAR10_CLASSES, hflip=True, source=str(folder))
    return Dataset(
        name=name, train_x=tr["x"], train_y=torch.from_numpy(tr["fine_labels"]).long(),
        test_x=te["x"], test_y=torch.from_numpy(te["fine_labels"]).long(), classes=CIFAR100_CLASSES,
        coarse_train=torch.from_numpy(tr["coarse_labels"]).long(),
        coarse_test=torch.from_numpy(te["coarse_labels"]).long(),
        coarse_classes=tuple(CIFAR100_COARSE), label_level="coarse" if name == "cifar20" else "fine",
        hflip=True, source=str(folder),
    )


def load_image_folder(path: str | os.PathLike, *, image_size: int | None = None,
                      test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A folder of images, one sub-folder per class (``train/``+``test/`` inside, optionally).

    Grayscale folders give 1 channel, anything else RGB. Images of mixed sizes are
    resized to ``image_size`` (default: the most common size). Without train/test
    sub-folders, a stratified split with ``test_fraction`` is drawn with ``seed``.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    check(path.is_dir(), f"image folder {path} does not exist")
    check(isinstance(test_fraction, (int, float)) and not isinstance(test_fraction, bool) and 0 < test_fraction < 1,
          f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    check(image_size is None or (isinstance(image_size, int) and not isinstance(image_size, bool) and image_size > 0),
          f"image_size must be a positive int or None, got {image_size!r}")
    split_dirs = (path / "train").is_dir() and (path / "test").is_dir()
    roots = {"train": path / "train", "test": path / "test"} if split_dirs else {"all": path}

    def class_dirs(d: Path):
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))

    classes = [p.name for p in class_dirs(roots.get("train", path))]
    check(len(classes) >= 2, f"image folder {path} has {len(classes)} class sub-folder(s); "
          "put the images of each class in its own sub-folder (at least two)")
    files = {}
    for split, d in roots.items():
        found = {p.name for p in class_dirs(d)}
        check(found <= set(classes), f"{d} has class folders {sorted(found - set(classes))} "
              "that the training folder lacks")
        items = []
        for ci, c in enumerate(classes):
            for f in sorted((d / c).rglob("*")) if (d / c).is_dir() else []:
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    items.append((f, ci))
        check(len(items) > 0, f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {d}")
        files[split] = items

    images, modes = {}, set()
    for split, items in files.items():
        loaded = []
        for f, ci in items:
            try:
                with Image.open(f) as im:
                    im.load()
                    modes.add(im.mode)
                    loaded.append((im.copy(), ci))
            except (UnidentifiedImageError, OSError) as e:
                raise MeguError(f"cannot read image {f} ({type(e).__name__}); remove or replace it") from None
        images[split] = loaded
    gray = modes <= {"L", "1", "I", "I;16", "LA"}
    sizes = [im.size for loaded in images.values() for im, _ in loaded]
    if image_size is not None:
        target = (image_size, image_size)
    else:
        target = max(set(sizes), key=sizes.count)

    def to_tensor(loaded):
        arrs = []
        for im, _ in loaded:
            im = im.convert("L" if gray else "RGB")
            if im.size != target:
                im = im.resize(target, Image.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
            arrs.append(a[None] if gray else a.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(arrs)), torch.tensor([ci for _, ci in loaded])

    if split_dirs:
        tr_x, tr_y = to_tensor(images["train"])
        te_x, te_y = to_tensor(images["test"])
    else:
        x, y = to_tensor(images["all"])
        g = torch.Generator().manual_seed(seed)
        test_mask = torch.zeros(len(y), dtype=torch.bool)
        for c in y.unique():
            idx = (y == c).nonzero().squeeze(1)
            idx = idx[torch.randperm(len(idx), generator=g)]
            n_test = int(round(len(idx) * test_fraction)) if len(idx) > 1 else 0
            test_mask[idx[:n_test]] = True
        check(test_mask.any() and (~test_mask).any(),
              f"image folder {path} is too small to split into train and test; add images")
        tr_x, tr_y, te_x, te_y = x[~test_mask], y[~test_mask], x[test_mask], y[test_mask]
    check(len(tr_y.unique()) >= 2, f"image folder {path} has images of fewer than two classes in its training part")
    return Dataset(name=path.name, train_x=tr_x, train_y=tr_y, test_x=te_x, test_y=te_y,
                   classes=tuple(classes), hflip=True, source=str(path))
