"""What a changed tuning protocol would cost the main profile's grid, estimated from measured runs; prints JSON.

    python benchmarks/budget_estimate.py results/budget_trial/studies --tune-seconds 2440

Issue 14 asks for the whole main profile (tune and grid, from empty caches) in at most 4 hours
on 2 cores; measured on one machine type it took 4.29 h (``results/main/clean_run*.json``). A
protocol change that shrinks it changes every study, so its tune stage can be timed directly
(``results/budget_trial``), but its grid only after a full run. Until then this script gives the
grid's time from what is measured:

* the clean run's grid (``results/clean_run/main/records``, the same profile from empty caches):
  each record's seconds, by method and scenario, and the stage's wall-clock time
  (``results/main/clean_run.json``), whose difference from the records' sum is the fixed part
  (originals, evaluation, writing) that no tuning changes;
* the studies that grid ran (``results/main/tuning/replicates/clean_run``) and the new ones
  (``STUDIES``): each study's chosen setting and what it cost on its tuning task.

A (method, scenario)'s grid seconds are scaled by the ratio of its new chosen setting's cost to
the old one's, each as a fraction of its own tuning task's cap (retraining's time on that task,
measured in the same run): so a smaller tuning pool, or studies timed on a slower machine, do
not enter the ratio; retraining and the fixed part stay. An estimate, not a measurement: it
assumes a method's time on the grid's requests moves as its time relative to retraining on the
tuning task.
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chosen_cost(folder: Path) -> dict:
    """``{(method, scenario): cost}`` of each study's chosen setting on its tuning task, as a
    fraction of the task's cap (None where no trial stayed within the cap: the method then runs
    at its defaults)."""
    out = {}
    for path in sorted(folder.glob("*-*.json")):
        rec = json.loads(path.read_text())
        if "method" in rec and "scenario" in rec:
            seconds = (rec.get("best") or {}).get("seconds")
            out[(rec["method"], rec["scenario"])] = None if seconds is None else seconds / rec["cap_seconds"]
    return out


def grid_seconds(records: Path) -> dict:
    """``{(method, scenario): seconds}`` summed over a grid's records (originals apart)."""
    out = defaultdict(float)
    for path in records.glob("*.json"):
        if path.name.startswith("original-"):
            continue
        rec = json.loads(path.read_text())
        out[(rec["method"], rec["scenario"])] += float(rec["seconds"])
    return dict(out)


def estimate(grid: dict, old: dict, new: dict, grid_wall: float) -> dict:
    """The grid's estimated seconds under the new studies, with each (method, scenario)'s ratio."""
    ratios, total_new = {}, 0.0
    for key, seconds in sorted(grid.items()):
        o, n = old.get(key), new.get(key)
        # retrain (no study) and a study without a setting within the cap: as measured
        ratio = 1.0 if o is None or n is None else n / o
        ratios["/".join(key)] = round(ratio, 3)
        total_new += seconds * ratio
    fixed = grid_wall - sum(grid.values())
    return dict(grid_records_seconds=round(sum(grid.values()), 1), fixed_seconds=round(fixed, 1),
                estimated_grid_seconds=round(total_new + fixed, 1),
                estimated_grid_hours=round((total_new + fixed) / 3600, 2), ratios=ratios)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("studies", help="the new protocol's study records (a folder of <method>-<scenario>.json)")
    ap.add_argument("--old-studies", default=str(ROOT / "results/main/tuning/replicates/clean_run"))
    ap.add_argument("--grid", default=str(ROOT / "results/clean_run/main/records"))
    ap.add_argument("--clean-run", default=str(ROOT / "results/main/clean_run.json"))
    ap.add_argument("--tune-seconds", type=float, default=None,
                    help="the new protocol's measured tune stage, added to the estimated grid for a total")
    args = ap.parse_args(argv)
    studies = Path(args.studies)
    if not any(studies.glob("*-*.json")):
        raise SystemExit(f"error: no study records (<method>-<scenario>.json) in {studies}")
    wall = json.loads(Path(args.clean_run).read_text())["stages"]["run"]["seconds"]
    out = estimate(grid_seconds(Path(args.grid)), chosen_cost(Path(args.old_studies)), chosen_cost(studies), wall)
    out["measured_grid_seconds"] = wall
    if args.tune_seconds is not None:
        out["tune_seconds"] = args.tune_seconds
        out["estimated_total_hours"] = round((args.tune_seconds + out["estimated_grid_seconds"]) / 3600, 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
