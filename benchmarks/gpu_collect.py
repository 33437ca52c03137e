"""Join what a GPU run brought back (benchmarks/gpu_run.sh) into the records the README and the book cite.

    python benchmarks/gpu_collect.py results/gpu_h200 --date 2026-12-04

Reads, in FOLDER, the logs the run wrote (``throughput_*.log``: one JSON line each;
``megu_vs_all*.log``: the JSON rows ``benchmarks/megu_vs_retrain.py`` prints as it goes, so a
run stopped at its time limit still has every row it finished) and writes

* ``FOLDER/throughput.json``: the throughput lines (when the run measured throughput);
* ``FOLDER/megu_vs_all.json``: every (forget, method) row once, the first log's row where two
  logs have one (logs are read in name order: ``megu_vs_all.log`` before
  ``megu_vs_all_<rest>.log``, the run that finished what the first one left). Where two runs
  share the ``original`` or ``retrain`` row of a request, the largest difference between their
  metrics is kept as ``repeat_check`` (two machines, same seed: how far CUDA runs repeat).
  Each row gains ``gap``: its mean absolute difference to the same request's ``retrain`` row
  (``megu_lib.gap_to_reference``: retain, forget and test accuracy, MIA), as the book's tables.
  The original's model and schedule come from ``gpu_megu_vs_all.json`` (the record
  ``megu_vs_retrain.py`` wrote there) when the folder has it;
* ``FOLDER/megu_vs_all.md``: the table the book's *Reproduce* page includes — per forget class,
  each method's gap, retained test accuracy and time as a multiple of retraining's, the
  original first as "do nothing" (written by :func:`markdown_table` from the rows, never by hand).
"""
import argparse
import json
from pathlib import Path

from megu_lib import gap_to_reference
from megu_lib.tables import ABLATIONS

METRICS = ("retain_acc", "forget_acc", "test_acc", "test_forget_acc", "test_retain_acc", "mia", "mia_loss")


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def join_rows(logs: list[Path]) -> tuple[list[dict], dict]:
    """Rows of every log, each (forget, method) once (the first log's); and for the rows that
    two logs share, the largest metric difference between them, by (forget, method)."""
    rows, seen, repeat = [], {}, {}
    for log in logs:
        for row in json_lines(log):
            key = (row["forget"], row["method"])
            if key in seen:
                first = seen[key]
                repeat[f"{key[0]}/{key[1]}"] = max(abs(first[m] - row[m]) for m in METRICS if m in row)
                continue
            seen[key] = row
            rows.append(dict(row, log=log.name))
    ref = {r["forget"]: r for r in rows if r["method"] == "retrain"}
    for r in rows:
        if r["forget"] in ref:
            r["gap"] = round(gap_to_reference(r, ref[r["forget"]])["gap"], 2)
    return rows, repeat


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table: one line per method (do nothing, retrain, then by name; MeGU in
    bold, its variants as code), three columns per forget class; below it, MeGU's place by gap
    among the methods compared (every method but its ablations, the original and retrain)."""
    classes = list(dict.fromkeys(r["forget"] for r in rows))
    by = {(r["forget"], r["method"]): r for r in rows}
    others = sorted({r["method"] for r in rows} - {"original", "retrain"})
    head = "| method | " + " | ".join(f"{c}: gap | retained | time" for c in classes) + " |"
    lines = [head, "|---|" + "---:|" * 3 * len(classes)]
    for method in ["original", "retrain", *others]:
        cells = []
        for c in classes:
            r = by.get((c, method))
            if r is None:
                cells += ["—"] * 3
                continue
            time = "—" if method == "original" else "×1" if method == "retrain" else f"×{r['time_ratio']:.2f}"
            cells += [f"{r['gap']:.2f}", f"{r['test_retain_acc']:.2f}", time]
        name = {"original": "do nothing", "megu": "**MeGU**"}.get(method,
                                                                  f"`{method}`" if "megu_" in method else method)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    compared = [m for m in others if m not in ABLATIONS]
    places = []
    for c in classes:
        gaps = sorted((by[(c, m)]["gap"], m) for m in compared if (c, m) in by)
        if (c, "megu") in by:
            places.append(f"{1 + [m for _, m in gaps].index('megu')} of {len(gaps)} on {c}")
    if places:
        lines += ["", f"MeGU's place by gap among the {len(compared)} methods compared (its ablations apart): "
                  + ", ".join(places) + " (one seed, no interval)."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--date", required=True, help="the day the run was made (YYYY-MM-DD)")
    ap.add_argument("--hp-source", default="main profile's verdicts, class scenario, Shirt, seed 0 "
                    "(benchmarks/gpu_prepare.py -> .gpu/tuned_class_hp.json)")
    args = ap.parse_args()
    folder = Path(args.folder)
    tp = [line for p in sorted(folder.glob("throughput_*.log")) for line in json_lines(p)]
    if tp:
        (folder / "throughput.json").write_text(json.dumps(dict(date=args.date, runs=tp), indent=1) + "\n")
    logs = sorted(folder.glob("megu_vs_all*.log"), key=lambda p: (p.name != "megu_vs_all.log", p.name))
    rows, repeat = join_rows(logs)
    run = folder / "gpu_megu_vs_all.json"  # the run's own record: its original's model and schedule
    meta = json.loads(run.read_text()) if run.exists() else {}
    out = dict(date=args.date, arch=meta.get("arch", "resnet18"), preset=meta.get("preset", "gpu"),
               profile=meta.get("profile"), seed=meta.get("seed", 0), hp=args.hp_source,
               logs=[p.name for p in logs], repeat_check=repeat, rows=rows)
    (folder / "megu_vs_all.json").write_text(json.dumps(out, indent=1) + "\n")
    (folder / "megu_vs_all.md").write_text(markdown_table(rows))
    print(f"{len(tp)} throughput runs, {len(rows)} rows from {len(logs)} logs; repeated rows: {repeat}")


if __name__ == "__main__":
    main()
