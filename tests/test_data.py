import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import megu_lib.data as D
from megu_lib import MeguError, load_dataset


def test_fashion_mnist_real_files(fmnist):
    assert fmnist.train_x.shape == (60000, 1, 28, 28) and fmnist.train_x.dtype == torch.uint8
    assert fmnist.test_x.shape == (10000, 1, 28, 28)
    assert fmnist.classes[6] == "Shirt" and len(fmnist.classes) == 10
    assert torch.bincount(fmnist.train_y).tolist() == [6000] * 10
    # the documented coarse grouping: Shirt is a top, Sneaker is footwear
    assert fmnist.coarse_classes[fmnist.coarse_of_fine()[6]] == "tops"
    assert fmnist.coarse_classes[fmnist.coarse_of_fine()[7]] == "footwear"
    assert len(fmnist.coarse_classes) == 4
    assert 0.2 < fmnist.mean[0] < 0.4


def test_fingerprint_is_stable_and_sensitive(small, fmnist):
    assert small.fingerprint() == fmnist.subset(3000, 1000, seed=0).fingerprint()
    assert small.fingerprint() != fmnist.subset(3000, 1000, seed=1).fingerprint()


def test_subset_is_stratified(small):
    counts = torch.bincount(small.train_y)
    assert counts.min() >= 299 and counts.max() <= 301


def _write_folder(root: Path, classes=("cat", "dog", "fox"), n=6, size=(12, 12), mode="RGB"):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")


def test_image_folder_seeded_split(tmp_path):
    _write_folder(tmp_path / "imgs")
    d = load_dataset(tmp_path / "imgs", seed=3)
    assert d.classes == ("cat", "dog", "fox")
    assert d.train_x.shape[1:] == (3, 12, 12)
    assert len(d.train_y) + len(d.test_y) == 18 and len(d.test_y) > 0
    d2 = load_dataset(str(tmp_path / "imgs"), seed=3)
    assert torch.equal(d.test_x, d2.test_x)


def test_image_folder_train_test_and_grayscale_mixed_sizes(tmp_path):
    _write_folder(tmp_path / "ds" / "train", ("a", "b"), n=4, size=(10, 10), mode="L")
    _write_folder(tmp_path / "ds" / "test", ("a", "b"), n=2, size=(10, 10), mode="L")
    Image.fromarray(np.zeros((7, 9), np.uint8), "L").save(tmp_path / "ds" / "train" / "a" / "odd.png")
    d = load_dataset(tmp_path / "ds")
    assert d.train_x.shape == (9, 1, 10, 10) and d.test_x.shape == (4, 1, 10, 10)
    d = load_dataset(tmp_path / "ds", image_size=8)
    assert d.train_x.shape[-2:] == (8, 8)


def _write_cifar(root: Path, which: str):
    """Real CIFAR images shipped by foolbox, written in torchvision's on-disk format."""
    import foolbox
    files = sorted((Path(foolbox.__file__).parent / "data").glob(f"{which}_*.png"))
    assert len(files) >= 10
    imgs = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    labels = [int(f.stem.split("_")[-1]) for f in files]
    flat = imgs.transpose(0, 3, 1, 2).reshape(len(imgs), -1)
    if which == "cifar10":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        entry = {"data": flat, "labels": labels}
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            pickle.dump(entry, open(folder / name, "wb"))
        pickle.dump({"label_names": list(D.CIFAR10_CLASSES)}, open(folder / "batches.meta", "wb"))
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True)
        fine = list(D.CIFAR100_CLASSES)
        coarse_of = {c: i for i, g in enumerate(D.CIFAR100_COARSE.values()) for c in g}
        entry = {"data": flat, "fine_labels": labels, "coarse_labels": [coarse_of[fine[lab]] for lab in labels]}
        for name in ("train", "test"):
            pickle.dump(entry, open(folder / name, "wb"))
        pickle.dump({"fine_label_names": fine}, open(folder / "meta", "wb"))
    return imgs, labels


def test_cifar10_offline_with_real_images(tmp_path):
    imgs, labels = _write_cifar(tmp_path, "cifar10")
    d = load_dataset("cifar10", root=tmp_path, download=False)
    assert d.train_x.shape == (5 * len(imgs), 3, 32, 32)  # five training batches
    assert d.test_x.shape == (len(imgs), 3, 32, 32)
    assert d.classes == D.CIFAR10_CLASSES and d.test_y.tolist() == labels
    assert torch.equal(d.train_x[0], torch.from_numpy(imgs[0]).permute(2, 0, 1))


@pytest.mark.parametrize("name", ["cifar100", "cifar20"])
def test_cifar100_and_20_offline(tmp_path, name):
    _, labels = _write_cifar(tmp_path, "cifar100")
    d = load_dataset(name, root=tmp_path, download=False)
    assert len(d.classes) == 100 and len(d.coarse_classes) == 20
    assert d.label_level == ("coarse" if name == "cifar20" else "fine")
    fine_names = [d.classes[i] for i in d.train_y]
    coarse_names = [d.coarse_classes[i] for i in d.coarse_train]
    for f, c in zip(fine_names, coarse_names):
        assert f in D.CIFAR100_COARSE[c]
    assert d.num_classes() == (20 if name == "cifar20" else 100)


# --------------------------------------------------------------------------- bad input
def test_unknown_name_lists_known():
    with pytest.raises(MeguError, match="fashion_mnist, cifar10"):
        load_dataset("imagenet-9000")


def test_folder_with_one_class(tmp_path):
    _write_folder(tmp_path / "one", ("only",))
    with pytest.raises(MeguError, match="at least two"):
        load_dataset(tmp_path / "one")


def test_folder_without_images(tmp_path):
    (tmp_path / "e" / "a").mkdir(parents=True)
    (tmp_path / "e" / "b").mkdir(parents=True)
    with pytest.raises(MeguError, match="no images"):
        load_dataset(tmp_path / "e")


def test_corrupt_image(tmp_path):
    _write_folder(tmp_path / "c", ("a", "b"), n=3)
    (tmp_path / "c" / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(MeguError, match="bad.png"):
        load_dataset(tmp_path / "c")


def test_missing_fashion_mnist_offline_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setenv("MEGU_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(MeguError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", download=False)


def test_missing_cifar_offline(tmp_path):
    with pytest.raises(MeguError, match="could not be downloaded"):
        load_dataset("cifar10", root=tmp_path, download=False)


def test_error_messages_are_one_line(tmp_path):
    with pytest.raises(MeguError) as e:
        load_dataset(tmp_path / "nothing-here")
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)


def test_another_data_set_keeps_the_profiles_optimiser_steps(tmp_path):
    """A user's small folder gets as many optimiser steps as the profile makes on its own data
    (a fixed number of epochs on 18 images would be a handful of steps: an untrained model)."""
    from megu_lib import profile as pf
    _write_folder(tmp_path / "imgs")
    folder = tmp_path / "imgs"
    cfg = pf.load_config("default", dataset=str(folder))
    fitted, notes = cfg.for_data(pf.load_data(cfg))
    assert fitted.train["min_steps"] == cfg.own_steps() == 3 * 157  # 3 epochs of 20,000 images at batch 128
    assert any(n.startswith("training: at least 471 optimiser steps") for n in notes)
    own = pf.load_config("default")
    assert own.for_data(pf.load_data(own))[0].train == own.train  # on its own data: unchanged
