"""Execute the book's notebooks with papermill on a profile: ``python -m megu_lib.book``.

Each ``notebooks/*.py`` (jupytext percent format) is converted to a notebook, executed
with the profile's parameters (only those the notebook declares in its ``parameters``
cell) and written to a staging folder. Only when every notebook ran does the staging
folder replace the output folder, so a failed run never leaves a half-built book
behind in place of a good one. Bad input stops the run before any notebook starts.

After a successful run the output folder also holds ``run_times.json`` (seconds per
notebook, total, profile, data set, date, machine) and ``run_times.md``, the table the
book's *Reproduce* page includes; ``--times-log FILE`` keeps the latest run of every
profile in FILE and renders them all. ``--strict`` fails a notebook that prints a
warning, shows an empty output or has no figure (``make test`` uses it).
"""
from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from .errors import MeguError, check


def execute_notebooks(notebooks, out_dir, profile: str = "main", dataset: str | None = None,
                      kernel: str = "python3", log=print, params: dict | None = None, strict: bool = False,
                      times_log: str | os.PathLike | None = None) -> dict:
    """Execute ``notebooks`` (.py) into ``out_dir`` on ``profile``; returns seconds per notebook.

    ``params``: extra papermill parameters, given to the notebooks that declare them (each
    must be declared by one notebook at least, with a default of a compatible type);
    ``strict``: stop at the first notebook that prints a warning, shows an empty output or
    has no figure (:func:`check_notebook`); ``times_log``: a JSON file that keeps the latest
    run times of every profile (see :func:`write_run_times`).
    """
    import jupytext
    import nbformat
    import papermill as pm

    from .profile import load_config, load_data
    # bad input stops here, before any notebook runs and before the output folder is touched
    notebooks = [notebooks] if isinstance(notebooks, (str, Path)) else list(notebooks or [])
    check(notebooks, "no notebooks to execute; pass the notebooks/*.py files of the book")
    for src in notebooks:
        check(isinstance(src, (str, Path)) and Path(src).is_file(), f"notebook {src!r} does not exist")
    check(dataset is None or (isinstance(dataset, str) and dataset.strip()),
          f"dataset must be a name or an image folder, got {dataset!r}")
    cfg = load_config(profile, dataset=dataset)
    # the forget class of the chapters, by the profile's one policy (the chapters apply the same)
    data = load_data(cfg)
    forget, note = cfg.forget_class(data, (params or {}).get("forget_class"))
    cfg.for_data(data)  # a forget target the profile's own data lacks stops here too
    log(f"[book] the chapters forget {forget!r}" + (f" ({note})" if note else ""))
    from jupyter_client.kernelspec import find_kernel_specs
    kernels = find_kernel_specs()
    check(kernel in kernels, f"no Jupyter kernel {kernel!r}; use one of {', '.join(sorted(kernels)) or 'none'} "
          "(python -m ipykernel install --user installs python3)")
    out_dir = Path(out_dir)
    check(not out_dir.exists() or out_dir.is_dir(), f"output folder {out_dir} is a file; pass a folder")
    extra = dict(params or {})
    check(all(isinstance(k, str) and k.isidentifier() for k in extra),
          f"parameter names must be identifiers: {list(extra)}")
    check(not {"profile", "dataset"} & set(extra), "pass the profile and data set with --profile / --dataset")
    _check_parameters(notebooks, extra)
    params = {"profile": cfg.path if Path(str(profile)).suffix in (".yaml", ".yml") else cfg.name,
              "dataset": dataset, **extra}
    staging = out_dir.with_name(out_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    seconds = {}
    cold = caches_empty(cfg)
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
        executed = staging / f"{src.stem}.ipynb"
        nbformat.write(show_parameters_used(nbformat.read(str(executed), as_version=4)), str(executed))
        seconds[src.stem] = round(time.perf_counter() - start, 1)
        log(f"[book] {src.name}: {seconds[src.stem]} s")
        if strict:
            problems = check_notebook(staging / f"{src.stem}.ipynb")
            check(not problems, f"notebook {src.name}: {'; '.join(problems)}")
    write_glance(staging)
    from .training import resolve_device
    write_run_times(staging, seconds, profile=cfg.name, dataset=dataset or cfg.dataset,
                    device=str(resolve_device(cfg.device)), times_log=times_log, cold=cold)
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out_dir)
    return seconds


def _check_parameters(notebooks, extra: dict) -> None:
    """Every extra parameter is declared by some notebook, with a value of its default's type."""
    if not extra:
        return
    import tempfile

    import jupytext
    import papermill as pm
    declared = {}
    with tempfile.TemporaryDirectory() as tmp:
        for src in map(Path, notebooks):
            raw = Path(tmp) / f"{src.stem}.ipynb"
            nb = jupytext.read(src)
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            jupytext.write(nb, raw)
            for name, spec in pm.inspect_notebook(str(raw)).items():
                try:
                    declared.setdefault(name, ast.literal_eval(spec["default"]))
                except (ValueError, SyntaxError):
                    declared.setdefault(name, None)
    for name, value in extra.items():
        check(name in declared, f"no notebook has a parameter {name!r}; parameters: {', '.join(sorted(declared))}")
        default = declared[name]
        if default is None or value is None:
            continue
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and (isinstance(default, float) or isinstance(value, int))
        else:
            ok = isinstance(value, type(default))
        check(ok, f"parameter {name} must be of type {type(default).__name__} (default {default!r}), got {value!r}")


#: The glue key under which a chapter leaves the results at a glance for the book's first page.
GLANCE_KEY = "book_glance"


def write_glance(folder) -> str:
    """Write ``glance.md`` into ``folder`` (the executed notebooks): the Markdown chapters glued
    under :data:`GLANCE_KEY` (the claims chapter) or a name that extends it (``book_glance_privacy``,
    the privacy chapter's line), in chapter order, which the book's first page includes;
    a note saying where it comes from when no chapter glued it. Returns the text written."""
    import nbformat
    parts = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                name = out.get("metadata", {}).get("scrapbook", {}).get("name") or ""
                if name == GLANCE_KEY or name.startswith(GLANCE_KEY + "_"):  # the claims', then later chapters' lines
                    part = data.get("application/papermill.record/text/markdown")
                    if part:
                        parts.append(part.rstrip())
    text = "\n".join(parts) or "*No results yet: the claims chapter writes this summary when the book is built.*"
    (Path(folder) / "glance.md").write_text(text.rstrip() + "\n")
    return text


#: The line the book puts above every page's parameters cell.
PARAMETERS_NOTE = ("**This page's parameters**, with the values it ran with. To run it on another profile or data "
                   "set: `make book PROFILE=<name> DATASET=<name or folder>`, or papermill's `-p name value` "
                   "(see {doc}`Reproduce <../reproduce>`).")


def show_parameters_used(nb):
    """The executed notebook ``nb`` as the book shows it: its ``parameters`` cell carries the
    values the page ran with (each line keeps its comment), papermill's injected cell is
    folded into it and removed, and a line above it says how to change them. Returns ``nb``."""
    import re

    import nbformat
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if not tagged:
        return nb
    params = nb.cells[tagged[0]]
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.metadata.get("tags", [])]
    if injected:
        source = nb.cells[injected[0]].source
        values = {node.targets[0].id: ast.get_source_segment(source, node.value)
                  for node in ast.parse(source).body
                  if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}
        lines = []
        for line in params.source.splitlines():
            m = re.match(r"^(\w+)\s*=\s*(.*?)(\s+#.*)?$", line)
            if m and m.group(1) in values:
                line = f"{m.group(1)} = {values.pop(m.group(1))}{m.group(3) or ''}"
            lines.append(line)
        lines += [f"{name} = {value}" for name, value in values.items()]
        params.source = "\n".join(lines)
        del nb.cells[injected[0]]
    at = nb.cells.index(params)
    if at == 0 or nb.cells[at - 1].source != PARAMETERS_NOTE:
        nb.cells.insert(at, nbformat.v4.new_markdown_cell(PARAMETERS_NOTE))
    return nb


def check_notebook(path) -> list[str]:
    """What a reader should not see in an executed notebook: warnings printed by a cell, an
    empty output, no figure at all. Returns the problems found (empty when none)."""
    import nbformat
    nb = nbformat.read(str(path), as_version=4)
    problems, figures = [], 0
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        i = cell.get("execution_count") or k + 1  # as papermill counts cells in its errors
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text = out.get("text", "")
                if out.get("name") == "stderr" and "warn" in text.lower():
                    problems.append(f"cell {i} prints a warning: {text.strip().splitlines()[0][:160]}")
                elif not text.strip():
                    problems.append(f"cell {i} has an empty output")
            elif out.output_type in ("display_data", "execute_result"):
                data = out.get("data", {})
                # a figure shown, or glued for a glue:figure directive (myst-nb's papermill-record keys)
                figures += any(k.split("application/papermill.record/")[-1].startswith("image/") for k in data)
                shown = {k: v for k, v in data.items() if not k.startswith("application/papermill")}
                if shown and not any(str(v).strip() for v in shown.values()):
                    problems.append(f"cell {i} has an empty output")
            elif out.output_type == "error":
                problems.append(f"cell {i} raised {out.get('ename')}")
    if figures == 0:
        problems.append("no figure")
    return problems


def _machine() -> dict:
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return dict(platform=platform.platform(), python=platform.python_version(), cpus=os.cpu_count(), gpu=gpu,
                torch=torch.__version__)


def caches_empty(cfg) -> bool:
    """Whether this run starts from nothing: no cached model, noise or matrix in the cache
    folder and no record of the profile ``cfg`` in its results folder (a *cold* run, whose
    time is the one worth publishing; a warm run only loads)."""
    from .cache import cache_disabled_by_env, default_cache_dir
    cache = default_cache_dir()
    cached = (not cache_disabled_by_env()) and cache.is_dir() and any(p.is_file() for p in cache.rglob("*"))
    records = cfg.records_folder()
    return not cached and not (records.is_dir() and any(records.glob("*.json")))


def write_run_times(folder, seconds: dict, *, profile: str, dataset: str, device: str = "auto",
                    times_log=None, cold: bool = True) -> dict:
    """Write ``run_times.json`` (this run) and ``run_times.md`` (a table for the book) into
    ``folder``. With ``times_log`` (a JSON file), this run replaces the profile's entry there
    and the table shows every profile of the log — except that a warm run (``cold=False``:
    the caches held results already) never replaces a cold run of the same profile and data
    set, whose times are the ones a reader needs. Returns this run's entry."""
    folder = Path(folder)
    entry = dict(profile=profile, dataset=str(dataset), device=str(device),
                 date=datetime.datetime.now().isoformat(timespec="seconds"), seconds=dict(seconds),
                 total=round(sum(seconds.values()), 1), cold=bool(cold), machine=_machine())
    (folder / "run_times.json").write_text(json.dumps(entry, indent=1))
    runs = {profile: entry}
    if times_log is not None:
        log_path = Path(times_log)
        try:
            logged = json.loads(log_path.read_text()) if log_path.exists() else {}
        except ValueError:
            logged = {}
        logged = logged if isinstance(logged, dict) else {}
        previous = logged.get(profile)
        keep = (not cold and isinstance(previous, dict) and previous.get("cold", True)
                and previous.get("dataset") == entry["dataset"] and previous.get("device") == entry["device"])
        if not keep:
            logged[profile] = entry
        tmp = log_path.with_name(log_path.name + ".tmp")
        tmp.write_text(json.dumps(logged, indent=1, sort_keys=True))
        tmp.replace(log_path)
        runs = logged
    (folder / "run_times.md").write_text(run_times_markdown(runs))
    return entry


def run_times_markdown(runs: dict) -> str:
    """A Markdown table of measured run times: notebooks as rows, one column per profile."""
    profiles = sorted(runs, key=lambda p: (p != "smoke", p != "default", p))
    stems = sorted({s for r in runs.values() for s in r.get("seconds", {})})

    def cell(value):
        return "–" if value is None else f"{value:,.0f} s" if value >= 10 else f"{value:.1f} s"
    head = "| notebook | " + " | ".join(f"`{p}`" for p in profiles) + " |"
    lines = [head, "|---|" + "---:|" * len(profiles)]
    for stem in stems:
        lines.append(f"| {stem} | " + " | ".join(cell(runs[p]["seconds"].get(stem)) for p in profiles) + " |")
    lines.append("| **total** | " + " | ".join(f"**{cell(runs[p]['total'])}**" for p in profiles) + " |")
    for label, get in (("data set", lambda r: f"`{r['dataset']}`"), ("device", lambda r: r["device"]),
                       ("caches at start", lambda r: "empty" if r.get("cold", True) else "warm (only loads)"),
                       ("machine", lambda r: f"{r['machine']['cpus']} CPU cores"
                        + (f", {r['machine']['gpu']}" if r["machine"].get("gpu") else ", no GPU")),
                       ("date", lambda r: r["date"].replace("T", " "))):
        lines.append(f"| {label} | " + " | ".join(get(runs[p]) for p in profiles) + " |")
    return "\n".join(lines) + "\n"


def _parse_param(text: str):
    import yaml
    check("=" in text, f"--param takes NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise MeguError(f"--param {name}: {value!r} is not a value (YAML: 3, 0.5, true, [a, b], text)") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m megu_lib.book", description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", help="jupytext .py notebooks, in book order")
    ap.add_argument("--profile", default="main", help="profile name in params/ or a YAML path")
    ap.add_argument("--dataset", default=None, help="override the profile's data set (name or image folder)")
    ap.add_argument("--out", default="book/_executed", help="folder for the executed notebooks")
    ap.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                    help="a notebook parameter (YAML value), for the notebooks that declare it; repeatable")
    ap.add_argument("--strict", action="store_true",
                    help="fail on a notebook that prints a warning, shows an empty output or has no figure")
    ap.add_argument("--times-log", default=None, metavar="FILE",
                    help="JSON file keeping the latest run times of every profile (rendered in run_times.md)")
    args = ap.parse_args(argv)
    try:
        extra = dict(_parse_param(p) for p in args.param)
        secs = execute_notebooks(args.notebooks, args.out, args.profile, args.dataset, params=extra,
                                 strict=args.strict, times_log=args.times_log)
    except MeguError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[book] executed {len(secs)} notebook(s) in {sum(secs.values()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
