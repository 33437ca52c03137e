"""A profile's runs one after another on all cores, against two worker processes of one thread
each; prints JSON.

    python benchmarks/parallel_jobs.py main                                  # 6 class runs of seed 0
    python benchmarks/parallel_jobs.py main --request class:Shirt --methods retrain finetune scrub

The lever this measures: small convolutional networks use two cores poorly within one
process, so two single-threaded processes may get more done than one process with two
threads. It times the same jobs (``--methods`` on ``--request`` for ``--seed``, through
``experiments.run_one``: unlearning and evaluation, as the runner does them) twice, in one
run: serially in one process at the default thread count, then split across two processes
at one thread each (jobs dealt out longest first by their serial times, so the two halves
take about as long). The originals come from ``--cache`` (trained there first if absent);
the methods run uncached, so retraining and MeGU's noises are made in the timed call. Besides
the wall-clock ratio it reports each run's own ``seconds`` in both modes: with a neighbour on
the other core, the time a record reports changes too (a caveat for the time column and for
the tuning cap, which compares a setting's time with retraining's).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_jobs(profile: str, request: str, seed: int, methods: list, cache: str) -> dict:
    """Run ``methods`` one after another in this process: {method: {reported seconds, wall seconds,
    the gap's metrics}}, and the thread count under ``_threads``."""
    import torch

    from megu_lib.experiments import run_one
    from megu_lib.metrics import GAP_KEYS
    from megu_lib.profile import load_config, load_data
    cfg = load_config(profile)
    data = load_data(cfg)
    cfg, _ = cfg.for_data(data)
    requests = {r.label(): r for s, r in cfg.originals(data) if s == seed}
    if request not in requests:
        sys.exit(f"--request {request!r} is not a request of profile {profile} for seed {seed}; "
                 f"choose one of: {', '.join(requests)}")
    req = requests[request]
    original = cfg.original_model(data, seed, req.level, cache=cache, device="cpu", progress=False)
    out = {}
    for m in methods:
        t = time.perf_counter()
        _, rec = run_one(cfg, data, req, m, seed, original=original, cache=False, device="cpu", progress=False,
                         environment={})
        out[m] = dict(reported=rec["seconds"], wall=time.perf_counter() - t,
                      metrics={k: rec["metrics"][k] for k in GAP_KEYS})
    out["_threads"] = torch.get_num_threads()
    return out


def spawn(args, methods, threads: int | None):
    env = dict(os.environ, MEGU_PROGRESS="0", HF_HUB_OFFLINE="1")
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, __file__, args.profile, "--worker", "--request", args.request, "--seed", str(args.seed),
           "--cache", args.cache, "--methods", *methods]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def collect(proc) -> dict:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"a worker stopped (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--request", default="class:Shirt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="*", default=["retrain", "finetune", "scrub", "salun", "ssd", "megu"])
    ap.add_argument("--cache", default=str(ROOT / ".cache" / "megu"),
                    help="where the originals are (or are trained); the methods run uncached")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run_jobs(args.profile, args.request, args.seed, args.methods, args.cache)), flush=True)
        return
    if not args.methods:
        sys.exit("--methods: name at least one method of the profile")
    collect(spawn(args, [], None))  # the original trained (or found) in --cache before anything is timed
    t = time.perf_counter()
    serial = collect(spawn(args, args.methods, None))
    serial_wall = time.perf_counter() - t
    halves, load = ([], []), [0.0, 0.0]
    for m in sorted(args.methods, key=lambda m: -serial[m]["wall"]):  # longest first, to the lighter half
        i = load.index(min(load))
        halves[i].append(m)
        load[i] += serial[m]["wall"]
    t = time.perf_counter()
    procs = [spawn(args, h, 1) for h in halves if h]
    parallel = {}
    for p in procs:
        parallel.update(collect(p))
    parallel_wall = time.perf_counter() - t
    print(json.dumps(dict(
        profile=args.profile, request=args.request, seed=args.seed, platform=platform.platform(),
        serial=dict(threads=serial["_threads"], wall=round(serial_wall, 1)),
        two_workers=dict(threads=1, wall=round(parallel_wall, 1), halves=halves),
        speedup=round(serial_wall / parallel_wall, 3),
        runs={m: dict(serial_reported=round(serial[m]["reported"], 1),
                      parallel_reported=round(parallel[m]["reported"], 1),
                      reported_ratio=round(parallel[m]["reported"] / serial[m]["reported"], 2),
                      max_metric_diff=round(max(abs(serial[m]["metrics"][k] - parallel[m]["metrics"][k])
                                                for k in serial[m]["metrics"]), 2))
              for m in args.methods}), indent=1))


if __name__ == "__main__":
    main()
