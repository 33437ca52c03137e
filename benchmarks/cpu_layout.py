"""Channels-last (NHWC) against the default NCHW layout on the CPU, in one run; prints JSON.

    python benchmarks/cpu_layout.py                    # small_cnn on Fashion-MNIST, 2 repeats
    python benchmarks/cpu_layout.py --arch vit --repeats 3

``megu_lib.training.CPU_CHANNELS_LAST`` switches the layout of the one training loop,
``predict_logits`` and the gradient helpers. For each layout, interleaved so that the load of a
shared machine falls on both alike, this times ``train_model`` on the real data path (the
profile's ``fast`` preset at batch 64 and 128, the batch sizes the tuned methods use) and
``predict_logits`` (the evaluation's forward pass), and reports images per second and the
ratio channels_last / NCHW. It also trains two models from one seed, one per layout, and
reports how far their test accuracies lie apart after a short training (half an epoch, or 4x
--images if less): float rounding, not a different method.
"""
import argparse
import json
import platform
import statistics
import time

import torch

import megu_lib as ml
from megu_lib import training


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="small_cnn")
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--images", type=int, default=8192, help="images per timed training run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--width", type=int, default=16, help="small_cnn's width (the main profile's: 16)")
    args = ap.parse_args()
    opts = {"width": args.width} if args.arch == "small_cnn" else {}
    data = ml.load_dataset(args.dataset)
    x, y = data.train_x, data.train_y
    n = args.images
    results = {}
    layouts = {"nchw": False, "channels_last": True}
    for rep in range(args.repeats + 1):  # the first round warms up and is not counted
        for name, flag in layouts.items():
            training.CPU_CHANNELS_LAST = flag
            for bs in (64, 128):
                cfg = ml.train_config("fast", batch_size=bs, epochs=n / len(x), augment=False)
                model = ml.build_model(args.arch, data, seed=0, **opts)
                s = timed(ml.train_model, model, x, y, cfg, seed=rep, device="cpu", progress=False)
                if rep:
                    results.setdefault(f"train_b{bs}", {}).setdefault(name, []).append(n / s)
            for bs in (128, 256, 512):
                s = timed(training.predict_logits, model, data.test_x, batch_size=bs, device="cpu")
                if rep:
                    results.setdefault(f"predict_b{bs}", {}).setdefault(name, []).append(len(data.test_x) / s)
    out = {}
    for key, per in results.items():
        med = {name: round(statistics.median(v)) for name, v in per.items()}
        out[key] = dict(images_per_s=med, ratio=round(med["channels_last"] / med["nchw"], 2))
    # one seed, both layouts: the same model up to float rounding
    accs = {}
    for name, flag in layouts.items():
        training.CPU_CHANNELS_LAST = flag
        model = ml.build_model(args.arch, data, seed=0, **opts)
        short = ml.train_config("fast", epochs=min(0.5, 4 * n / len(x)), augment=False)
        ml.train_model(model, x, y, short, seed=0, device="cpu", progress=False)
        pred = training.predict_logits(model, data.test_x, device="cpu").argmax(1)
        accs[name] = round(100 * (pred == data.test_y).float().mean().item(), 2)
    training.CPU_CHANNELS_LAST = True
    print(json.dumps(dict(arch=args.arch, dataset=args.dataset, threads=torch.get_num_threads(),
                          torch=torch.__version__, machine=platform.processor() or platform.machine(),
                          **out, short_training_test_acc=accs)))


if __name__ == "__main__":
    main()
