import pytest
import torch

from megu_lib import (
    MeguError,
    build_model,
    count_parameters,
    predict_logits,
    seed_everything,
    train_config,
    train_model,
)
from megu_lib.models import model_config
from megu_lib.training import augment_batch


@pytest.mark.parametrize("arch,opts,shape", [
    ("small_cnn", {}, (1, 28, 28)),
    ("resnet18", {"width": 8}, (3, 32, 32)),
    ("vit", {"dim": 32, "depth": 2, "heads": 2}, (3, 32, 32)),
    ("vit", {"dim": 32, "depth": 1, "heads": 2, "patch": 7}, (1, 28, 28)),
])
def test_output_and_feature_shapes(arch, opts, shape):
    m = build_model(arch, num_classes=7, in_channels=shape[0], image_size=shape[1], **opts).eval()
    x = torch.rand(5, *shape)
    assert m(x).shape == (5, 7)
    f = m.features(x)
    assert f.shape == (5, m.feature_dim) and m.head(f).shape == (5, 7)


def test_small_cnn_size_and_seeded_init(small):
    a, b = build_model("small_cnn", small, seed=1), build_model("small_cnn", small, seed=1)
    assert 50_000 < count_parameters(a) < 1_000_000
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert build_model(a.config).config == a.config


def test_bad_model_inputs():
    with pytest.raises(MeguError, match="small_cnn, resnet18"):
        build_model("alexnet", num_classes=3)
    with pytest.raises(MeguError, match="two classes"):
        model_config("small_cnn", num_classes=1)
    with pytest.raises(MeguError, match="multiple of the patch"):
        build_model("vit", num_classes=3, image_size=30, patch=4)


def test_augmentation_keeps_shape_and_content():
    x = torch.rand(16, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    y = augment_batch(x, 2, True, g)
    assert y.shape == x.shape
    # a crop with padding 0 and no flip is the identity
    assert torch.equal(augment_batch(x, 0, False, g), x)
    # every output is a shifted (maybe flipped) copy: its non-zero mass cannot exceed the input's
    assert (y.sum(dim=(1, 2, 3)) <= x.sum(dim=(1, 2, 3)) + 1e-4).all()


def test_short_training_clearly_learns(small, tiny_train):
    seed_everything(0)
    m = build_model("small_cnn", small, seed=0, width=12)
    before = (predict_logits(m, small.test_x).argmax(1) == small.test_y).float().mean()
    hist = []
    train_model(m, small.train_x, small.train_y, tiny_train, seed=0, history=hist)
    after = (predict_logits(m, small.test_x).argmax(1) == small.test_y).float().mean()
    assert after > 0.65 and after > before + 0.4
    assert hist[-1][1] < hist[0][1]


def test_same_seed_identical_results(small):
    cfg = train_config("fast", epochs=0.5, batch_size=64)
    outs = []
    for _ in range(2):
        m = build_model("small_cnn", small, seed=0, width=8)
        train_model(m, small.train_x, small.train_y, cfg, seed=5)
        outs.append(predict_logits(m, small.test_x[:200]))
    assert torch.equal(outs[0], outs[1])


def test_cpu_channels_last_changes_rounding_only(small, monkeypatch):
    """The CPU's channels_last layout (benchmarks/cpu_layout.py) gives the same logits up to float
    rounding, and a model it converted inside predict_logits' inference mode still trains."""
    from megu_lib import training
    monkeypatch.setattr(training, "CPU_BF16", False)  # float32: bf16 would round the two layouts apart
    monkeypatch.delenv("MEGU_CPU_BF16", raising=False)
    m = build_model("small_cnn", small, seed=0, width=8)
    monkeypatch.setattr(training, "CPU_CHANNELS_LAST", False)
    nchw = predict_logits(m, small.test_x[:300])
    assert m.net[0][0].weight.is_contiguous()
    monkeypatch.setattr(training, "CPU_CHANNELS_LAST", True)
    nhwc = predict_logits(m, small.test_x[:300])
    assert m.net[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(nchw, nhwc, atol=1e-4) and not torch.equal(nchw, torch.zeros_like(nchw))
    assert not any(p.is_inference() for p in m.parameters())
    train_model(m, small.train_x[:256], small.train_y[:256], train_config("fast", epochs=1, batch_size=64))
    assert not torch.allclose(predict_logits(m, small.test_x[:300]), nhwc)


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_schedules_and_optimizers_run(small, schedule, optimizer):
    cfg = train_config("fast", epochs=0.2, schedule=schedule, optimizer=optimizer, milestones=(0.1,),
                       lr=0.01 if optimizer == "adam" else 0.05)
    m = build_model("small_cnn", small, seed=0, width=4)
    train_model(m, small.train_x, small.train_y, cfg)
    assert torch.isfinite(predict_logits(m, small.test_x[:10])).all()


def test_presets_and_bad_configs():
    ssd = train_config("ssd_cifar100")
    assert (ssd.lr, ssd.momentum, ssd.weight_decay, ssd.batch_size, ssd.gamma) == (0.1, 0.9, 5e-4, 64, 0.2)
    assert ssd.milestones == (60, 120, 160) and ssd.epochs == 200
    with pytest.raises(MeguError, match="unknown training preset"):
        train_config("warp-speed")
    with pytest.raises(MeguError, match="positive number"):
        train_config("fast", lr=float("nan"))
    with pytest.raises(MeguError, match="positive number"):
        train_config("fast", epochs=-1)
    with pytest.raises(MeguError, match="unknown training option"):
        train_config("fast", learning_rate=0.1)
    with pytest.raises(MeguError, match="unknown schedule"):
        train_config("fast", schedule="zigzag")


def test_min_steps_gives_a_small_data_set_enough_steps(small):
    x, y = small.train_x[:256], small.train_y[:256]  # 2 steps per epoch at batch 128
    counted = []
    m = build_model("small_cnn", small, seed=0, width=4)
    train_model(m, x, y, train_config("fast", epochs=1), seed=0, loss_fn=lambda mod, xb, yb, ex: (
        counted.append(1), torch.nn.functional.cross_entropy(mod(xb), yb))[1])
    assert len(counted) == 2
    counted.clear()
    train_model(m, x, y, train_config("fast", epochs=1, min_steps=7), seed=0, loss_fn=lambda mod, xb, yb, ex: (
        counted.append(1), torch.nn.functional.cross_entropy(mod(xb), yb))[1])
    assert len(counted) == 7
    assert "min_steps" not in train_config("fast").to_dict()  # off: cache keys of earlier models unchanged
    assert train_config("fast", min_steps=5).to_dict()["min_steps"] == 5
    with pytest.raises(MeguError, match="min_steps must be an int >= 0"):
        train_config("fast", min_steps=-1)


def test_cpu_precision_switch(small, monkeypatch):
    """bf16 autocast on the CPU where ``uses_bf16`` says so: same model, logits close to the float32
    ones but not equal; ``$MEGU_CPU_BF16`` overrides the constant and a bad value is a one-line error."""
    from megu_lib import training
    monkeypatch.delenv("MEGU_CPU_BF16", raising=False)
    cpu = torch.device("cpu")
    monkeypatch.setattr(training, "CPU_BF16", False)
    assert not training.uses_bf16(cpu) and training.precision(cpu) == "float32"
    m = build_model("small_cnn", small, seed=0, width=8)
    fp32 = predict_logits(m, small.test_x[:300])
    monkeypatch.setattr(training, "CPU_BF16", True)
    assert training.uses_bf16(cpu) and training.precision(cpu) == "bf16"
    bf16 = predict_logits(m, small.test_x[:300])
    assert bf16.dtype == torch.float32 and not torch.equal(fp32, bf16)
    assert torch.allclose(fp32, bf16, atol=0.1)
    assert (fp32.argmax(1) == bf16.argmax(1)).float().mean() > 0.9
    monkeypatch.setenv("MEGU_CPU_BF16", "0")
    assert not training.uses_bf16(cpu)
    monkeypatch.setattr(training, "CPU_BF16", False)
    monkeypatch.setenv("MEGU_CPU_BF16", "1")
    assert training.uses_bf16(cpu)
    monkeypatch.setenv("MEGU_CPU_BF16", "yes")
    with pytest.raises(MeguError, match="MEGU_CPU_BF16='yes'"):
        training.uses_bf16(cpu)
    monkeypatch.setattr(training, "CPU_BF16", "native")
    monkeypatch.delenv("MEGU_CPU_BF16")
    assert training.uses_bf16(cpu) == training.cpu_bf16_native()
