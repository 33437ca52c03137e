"""Prepare the one GPU run (benchmarks/gpu_run.sh) here, where the data and the judge's weights are.

    python benchmarks/gpu_prepare.py [--folder .gpu]

The lent GPU machine reaches nothing outside it and has its own Python packages (not this
project's lock file): no Fashion-MNIST, and no all-MiniLM-L6-v2 weights for the ``text``
judge. This puts into ``--folder`` (ignored by git, carried to the machine):

* ``data/fashion_mnist/``: the four Fashion-MNIST files (read there through ``MEGU_DATA_DIR``);
* ``cache/transition/``: the ``text`` judge's transition matrices for every request and seed of
  the ``full`` profile (and seed 0 of ``megu_vs_retrain.py``'s requests), read there through
  ``MEGU_CACHE_DIR``: the judge's scores depend on the class names only, so they are the same
  matrices the GPU would compute, and its weights need not travel;
* ``tuned_class_hp.json``: each method's hyperparameters in the main profile's verdicts (its
  better search), class scenario, forgetting Shirt, seed 0 — for ``megu_vs_retrain.py --hp``.
"""
import argparse
import json
import shutil
from pathlib import Path

import megu_lib as ml
from megu_lib import experiments as ex
from megu_lib import profile as pf
from megu_lib.data import FASHION_MNIST_FILES, _find_fashion_mnist
from megu_lib.methods import get_method
from megu_lib.methods.megu import transition_for

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", default=str(ROOT / ".gpu"))
    ap.add_argument("--profile", default="full")
    args = ap.parse_args()
    folder = Path(args.folder)
    data_dir = folder / "data" / "fashion_mnist"
    data_dir.mkdir(parents=True, exist_ok=True)
    source = _find_fashion_mnist(None)
    if source is None:
        raise SystemExit("error: Fashion-MNIST not found here; install it first (make data)")
    for name in FASHION_MNIST_FILES:
        shutil.copy2(source / name, data_dir / name)
    data = ml.load_dataset("fashion_mnist")

    cache = ml.Cache(folder / "cache")
    cfg, _ = pf.load_config(args.profile).for_data(data)
    judge = cfg.judge
    n_exemplars = get_method("megu").params["n_exemplars"].default  # MeGU's default, as the runs use it
    asks = list(cfg.originals(data))
    asks += [(0, ml.make_request(data, "class", forget=c)) for c in ("Shirt", "Trouser")]
    for seed, request in asks:
        transition_for(data, request, None, judge=judge, n_exemplars=n_exemplars, seed=seed, cache=cache,
                       device="cpu", progress=False)
    print(f"transition matrices for {len(asks)} (seed, request) pairs in {folder / 'cache'}")

    main_cfg, _ = pf.load_config("main").for_data(data)
    df, why = ex.committed_records("main", data)
    if df is None:
        raise SystemExit(f"error: main's records are not complete: {why}")
    rows = ex.verdict_records(main_cfg, data, df).records
    rows = rows[(rows.scenario == "class") & (rows.forget.map(tuple) == ("Shirt",)) & (rows.seed == 0)]
    hp = {m: dict(r.hp) for m, r in rows.set_index("method").iterrows()
          if m not in ("retrain", "original") and isinstance(r.hp, dict)}
    (folder / "tuned_class_hp.json").write_text(json.dumps(hp, indent=1, default=str))
    print(f"tuned class settings of {len(hp)} methods -> {folder / 'tuned_class_hp.json'}")


if __name__ == "__main__":
    main()
