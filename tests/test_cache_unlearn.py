import json
import os
import stat

import pytest
import torch

from megu_lib import Cache, MeguError, evaluate, fit_model, list_methods, make_request, unlearn
from megu_lib.cache import as_cache


def test_cache_round_trip_and_damage(tmp_path):
    c = Cache(tmp_path)
    calls = []
    make = lambda: calls.append(1) or {"w": torch.arange(5)}
    key = {"a": 1}
    assert torch.equal(c.get_or_make("t", key, make)["w"], torch.arange(5))
    assert torch.equal(c.get_or_make("t", key, make)["w"], torch.arange(5))
    assert len(calls) == 1
    payload = next((tmp_path / "t").glob("*.pt"))
    payload.write_bytes(payload.read_bytes()[:-20])  # truncate: damaged
    assert c.load("t", key) is None and not payload.exists()
    c.get_or_make("t", key, make)
    assert len(calls) == 2
    blob = bytearray(payload.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size, one corrupted byte
    payload.write_bytes(bytes(blob))
    assert c.load("t", key) is None
    assert not list((tmp_path / "t").glob("*.tmp"))


def test_cache_bypass(tmp_path, monkeypatch):
    c = Cache(tmp_path, enabled=False)
    c.get_or_make("t", {"a": 1}, lambda: 1)
    assert not (tmp_path / "t").exists()
    monkeypatch.setenv("MEGU_NO_CACHE", "1")
    assert not as_cache(tmp_path).enabled


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_cache(tmp_path):
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(MeguError, match="not writable"):
            Cache(tmp_path / "c").store("t", {"a": 1}, 1)
    finally:
        tmp_path.chmod(stat.S_IRWXU)


def test_fit_model_uses_cache(small, tiny_train, tmp_path):
    a = fit_model(small, train=tiny_train.replace(epochs=0.3), seed=0, width=4, cache=tmp_path)
    metas = [json.loads(p.read_text()) for p in (tmp_path / "models").glob("*.json")]
    assert len(metas) == 1 and metas[0]["purpose"] == "original"
    b = fit_model(small, train=tiny_train.replace(epochs=0.3), seed=0, width=4, cache=tmp_path)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert a.train_seconds == b.train_seconds
    fit_model(small, train=tiny_train.replace(epochs=0.3), seed=1, width=4, cache=tmp_path)
    assert len(list((tmp_path / "models").glob("*.json"))) == 2


def test_retrain_registered_and_model_untouched(small, trained_small, tmp_path):
    assert list_methods()[0] == "retrain"
    r = make_request(small, "class", forget="Trouser")
    before = {k: v.clone() for k, v in trained_small.state_dict().items()}
    new, seconds, details = unlearn("retrain", trained_small, small, r, cache=tmp_path)
    assert new is not trained_small and seconds > 0 and details["method"] == "retrain"
    assert all(torch.equal(before[k], v) for k, v in trained_small.state_dict().items())
    after = evaluate(new, small, r)
    assert after["forget_acc"] == 0.0 and after["test_forget_acc"] == 0.0
    assert after["test_retain_acc"] > 60
    # every layer re-initialised: the retrained first conv differs from the original's
    assert not torch.allclose(new.net[0][0].weight, trained_small.net[0][0].weight.to(new.net[0][0].weight.device))


def test_unlearn_bad_input(small, trained_small):
    r = make_request(small, "class", forget="Trouser")
    with pytest.raises(MeguError, match="use one of retrain"):
        unlearn("forget-it-all", trained_small, small, r)
    with pytest.raises(MeguError, match="no hyperparameter"):
        unlearn("retrain", trained_small, small, r, learning_rate=3)
    with pytest.raises(MeguError, match="level 'coarse'"):
        unlearn("retrain", trained_small, small, make_request(small, "subclass", forget="Shirt"))
    with pytest.raises(MeguError, match="another data set"):
        unlearn("retrain", trained_small, small.subset(2000, 500), r)
