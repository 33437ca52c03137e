"""Training and evaluation throughput of a model on the real data path; prints JSON.

    python benchmarks/throughput.py --arch small_cnn --dataset fashion_mnist          # CPU
    python benchmarks/throughput.py --arch resnet18 --dataset synthetic32 --device cuda

Training throughput is measured end to end through megu_lib.train_model (tensors on the
device, on-device augmentation, bf16 + channels_last on CUDA), after a warm-up run, as
images per second over whole timed runs. ``--dataset synthetic32`` uses random uint8
32x32 RGB images of CIFAR's size (50,000) when no CIFAR copy is at hand; the data path
is the same. ``--reach`` also trains the default schedule to report test accuracy.
"""
import argparse
import json
import platform
import time

import torch

import megu_lib as ml


def synthetic(n=50000, n_test=10000, size=32, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ml.Dataset(name="synthetic32",
                      train_x=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                      train_y=torch.randint(0, classes, (n,), generator=g),
                      test_x=torch.randint(0, 256, (n_test, 3, size, size), dtype=torch.uint8, generator=g),
                      test_y=torch.randint(0, classes, (n_test,), generator=g),
                      classes=[str(i) for i in range(classes)])


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="small_cnn")
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default=None, help="training preset (default: fast on CPU, gpu on CUDA)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--images", type=int, default=None, help="images per timed run (default: 8192 CPU, 100000 GPU)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reach", action="store_true", help="also train the preset fully and report test accuracy")
    args = ap.parse_args()
    device = ml.resolve_device(args.device)
    cuda = device.type == "cuda"
    if device.type == "cpu":
        torch.set_num_threads(torch.get_num_threads())
    data = synthetic() if args.dataset == "synthetic32" else ml.load_dataset(args.dataset)
    preset = args.preset or ("gpu" if cuda else "fast")
    cfg = ml.train_config(preset, **({"batch_size": args.batch_size} if args.batch_size else {}))
    n = args.images or (100_000 if cuda else 8192)
    x, y = data.train_x, data.train_y
    if cuda:
        x, y = x.to(device), y.to(device)  # once, as a run keeps its data on the device
    model = ml.build_model(args.arch, data, seed=0)
    epochs = n / len(x)
    ml.train_model(model, x, y, cfg.replace(epochs=min(epochs, 2000 / len(x) * 4)), device=device)  # warm-up
    rates = []
    for r in range(args.repeats):
        sync(device)
        t = time.perf_counter()
        ml.train_model(model, x, y, cfg.replace(epochs=epochs), device=device, seed=r)
        sync(device)
        rates.append(n / (time.perf_counter() - t))
    ml.predict_logits(model, data.test_x[:2048], device=device, batch_size=2048 if cuda else 512)
    eval_rates = []
    for _ in range(args.repeats):
        sync(device)
        t = time.perf_counter()
        ml.predict_logits(model, data.test_x, device=device, batch_size=2048 if cuda else 512)
        sync(device)
        eval_rates.append(len(data.test_x) / (time.perf_counter() - t))
    out = dict(arch=args.arch, dataset=data.name,
               device=torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
               threads=torch.get_num_threads(), preset=preset, batch_size=cfg.batch_size,
               params=ml.count_parameters(model), train_images_per_s=round(max(rates)),
               train_images_per_s_all=[round(v) for v in rates],
               eval_images_per_s=round(max(eval_rates)), precision=ml.training.precision(device),
               torch=torch.__version__)
    if args.reach:
        t = time.perf_counter()
        m = ml.fit_model(data, arch=args.arch, train=preset, seed=0, device=device, cache=False)
        out["reach_seconds"] = round(time.perf_counter() - t, 1)
        hits = ml.predict_logits(m, data.test_x).argmax(1) == data.test_y
        out["reach_test_acc"] = round(float(hits.float().mean() * 100), 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
