"""Two ways of computing on the CPU against each other, in one run; prints JSON.

    python benchmarks/cpu_layout.py                        # channels_last against NCHW (float32)
    python benchmarks/cpu_layout.py --compare precision    # bf16 autocast against float32 (channels_last)
    python benchmarks/cpu_layout.py --arch vit --repeats 3

``megu_lib.training.CPU_CHANNELS_LAST`` switches the layout and ``CPU_BF16`` the precision of
the one training loop, ``predict_logits`` and the gradient helpers. For each variant,
interleaved so that the load of a shared machine falls on both alike, this times
``train_model`` on the real data path (the profile's ``fast`` preset at batch 64 and 128, the
batch sizes the tuned methods use) and ``predict_logits`` (the evaluation's forward pass), and
reports images per second and the ratio of the second variant to the first. It also trains two
models from one seed, one per variant, and reports their test accuracies after a short training
(half an epoch, or 4x --images if less): for the layout float rounding, for the precision
another trajectory of the same training. ``--compare precision`` on a CPU without bf16
instructions times bf16 as emulated (``training.cpu_bf16_native`` is reported).
"""
import argparse
import json
import os
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


#: per comparison, its two variants: name -> (CPU_CHANNELS_LAST, CPU_BF16); the ratio is second / first
COMPARISONS = {"layout": {"nchw": (False, False), "channels_last": (True, False)},
               "precision": {"float32": (True, False), "bf16": (True, True)}}


def use(flags) -> None:
    training.CPU_CHANNELS_LAST, training.CPU_BF16 = flags


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="small_cnn")
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--images", type=int, default=8192, help="images per timed training run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--width", type=int, default=16, help="small_cnn's width (the main profile's: 16)")
    ap.add_argument("--compare", choices=sorted(COMPARISONS), default="layout")
    args = ap.parse_args()
    opts = {"width": args.width} if args.arch == "small_cnn" else {}
    data = ml.load_dataset(args.dataset)
    x, y = data.train_x, data.train_y
    n = args.images
    results = {}
    variants = COMPARISONS[args.compare]
    first, second = variants
    os.environ.pop("MEGU_CPU_BF16", None)  # the variants set the precision
    for rep in range(args.repeats + 1):  # the first round warms up and is not counted
        for name, flags in variants.items():
            use(flags)
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
        out[key] = dict(images_per_s=med, ratio=round(med[second] / med[first], 2))
    # one seed, both variants: the same training
    accs = {}
    for name, flags in variants.items():
        use(flags)
        model = ml.build_model(args.arch, data, seed=0, **opts)
        short = ml.train_config("fast", epochs=min(0.5, 4 * n / len(x)), augment=False)
        ml.train_model(model, x, y, short, seed=0, device="cpu", progress=False)
        pred = training.predict_logits(model, data.test_x, device="cpu").argmax(1)
        accs[name] = round(100 * (pred == data.test_y).float().mean().item(), 2)
    use((True, "native"))
    print(json.dumps(dict(compare=args.compare, arch=args.arch, dataset=args.dataset, threads=torch.get_num_threads(),
                          cpu_bf16_native=training.cpu_bf16_native(),
                          torch=torch.__version__, machine=platform.processor() or platform.machine(),
                          **out, short_training_test_acc=accs)))


if __name__ == "__main__":
    main()
