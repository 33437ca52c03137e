"""Execute the book's notebooks with papermill on a profile: ``python -m megu_lib.book``.

Each ``notebooks/*.py`` (jupytext percent format) is converted to a notebook, executed
with the profile's parameters (only those the notebook declares in its ``parameters``
cell) and written to a staging folder. Only when every notebook ran does the staging
folder replace the output folder, so a failed run never leaves a half-built book
behind in place of a good one. Bad input stops the run before any notebook starts.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .errors import MeguError


def execute_notebooks(notebooks, out_dir, profile: str = "default", dataset: str | None = None,
                      kernel: str = "python3", log=print) -> dict:
    """Execute ``notebooks`` (.py) into ``out_dir`` on ``profile``; returns seconds per notebook."""
    import jupytext
    import papermill as pm

    from .experiments import load_config, load_data
    cfg = load_config(profile, dataset=dataset)  # bad input stops here, before any notebook runs
    if dataset is not None:
        load_data(cfg)
    params = {"profile": cfg.path if Path(str(profile)).suffix in (".yaml", ".yml") else cfg.name,
              "dataset": dataset}
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    seconds = {}
    for src in map(Path, notebooks):
        nb = jupytext.read(src)
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
        raw = staging / f"{src.stem}.source.ipynb"
        jupytext.write(nb, raw)
        declared = pm.inspect_notebook(str(raw))
        use = {k: v for k, v in params.items() if k in declared}
        log(f"[book] {src.name}: {use}")
        start = time.perf_counter()
        try:
            pm.execute_notebook(str(raw), str(staging / f"{src.stem}.ipynb"), parameters=use,
                                kernel_name=kernel, progress_bar=False, cwd=str(src.parent))
        except pm.PapermillExecutionError as e:
            raise MeguError(f"notebook {src.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}") from None
        finally:
            raw.unlink(missing_ok=True)
        seconds[src.stem] = round(time.perf_counter() - start, 1)
        log(f"[book] {src.name}: {seconds[src.stem]} s")
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out_dir)
    return seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m megu_lib.book", description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", help="jupytext .py notebooks, in book order")
    ap.add_argument("--profile", default="default", help="profile name in params/ or a YAML path")
    ap.add_argument("--dataset", default=None, help="override the profile's data set (name or image folder)")
    ap.add_argument("--out", default="book/_executed", help="folder for the executed notebooks")
    args = ap.parse_args(argv)
    try:
        secs = execute_notebooks(args.notebooks, args.out, args.profile, args.dataset)
    except MeguError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[book] executed {len(secs)} notebook(s) in {sum(secs.values()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
