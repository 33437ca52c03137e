"""Shared fixtures: a small real Fashion-MNIST problem and an isolated cache directory."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MEGU_PROGRESS", "0")

import pytest
import torch

# make test runs the unit tests on two xdist workers (one per core): one thread each
# (two threads per worker would oversubscribe the cores); a plain pytest run keeps two.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads()))


@pytest.fixture
def bench():
    """A loader of the scripts in benchmarks/ as modules: ``bench("gpu_collect").join_rows(...)``."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own cache and results directories: nothing leaks between tests."""
    monkeypatch.setenv("MEGU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MEGU_RESULTS_DIR", str(tmp_path / "results"))
    yield


@pytest.fixture(scope="session")
def fmnist():
    from megu_lib import load_dataset
    return load_dataset("fashion_mnist")


@pytest.fixture(scope="session")
def small(fmnist):
    """A stratified 3000/1000 subset of the real Fashion-MNIST."""
    return fmnist.subset(3000, 1000, seed=0)


@pytest.fixture(scope="session")
def tiny_train():
    """A short training schedule for tests (seconds on 2 cores)."""
    from megu_lib import train_config
    return train_config("fast", epochs=3, batch_size=64, lr=0.05)


@pytest.fixture(scope="session")
def trained_small(small, tiny_train, tmp_path_factory):
    """A small CNN trained on the small subset (cached for the session)."""
    from megu_lib import fit_model
    return fit_model(small, arch="small_cnn", train=tiny_train, seed=0, width=12,
                     cache=tmp_path_factory.mktemp("model_cache"))
