"""The cached and resumable runner, and the records it writes.

:func:`run_experiments` trains (or loads from the cache) the original model of each seed
and label level of a profile (:mod:`megu_lib.profile`), then runs every (seed, request,
method) through :func:`run_one` and writes one JSON record per run — config hash, seed,
git commit, package versions, device, metrics, per-class accuracy, seconds and how they
were counted — atomically, named by the hash of everything that determines it. A run that
is interrupted and started again skips the records that exist. :func:`profile_records`
loads exactly a profile's records (the chapters, the CLI and the tables use it);
:func:`load_records` loads every record of a folder.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import atomic_write_bytes, check_writable, remove_stale_temp_files
from .errors import check
from .metrics import GAP_KEYS, gap_to_reference
from .profile import ExperimentConfig, load_data, shown_path

RESULT_KEYS = ("retain_acc", "forget_acc", "test_acc", "test_retain_acc", "test_forget_acc", "mia", "mia_loss")


def _environment() -> dict:
    import torch

    from .training import uses_bf16
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1], timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import numpy
    import sklearn
    return dict(git_commit=commit, python=platform.python_version(), torch=torch.__version__,
                numpy=numpy.__version__, sklearn=sklearn.__version__, platform=platform.platform(),
                threads=torch.get_num_threads(), cpu_bf16=uses_bf16(torch.device("cpu")))


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def run_one(cfg: ExperimentConfig, data, request, method: str, seed: int, *, original=None, cache=None,
            device=None, progress=None, environment: dict | None = None):
    """One run of the profile: ``method`` on ``request`` from the profile's original model for
    ``seed``, seeded as the runner seeds it, evaluated as the runner evaluates it.

    Returns ``(result, record)``: the :class:`~megu_lib.methods.UnlearnResult` (the model
    included) and the record the runner writes for it. A chapter that shows a method's model
    calls this, so its numbers are the record's."""
    from .methods import unlearn
    from .metrics import evaluate
    from .training import resolve_device, seed_everything
    device = resolve_device(cfg.device if device is None else device)
    if original is None:
        original = cfg.original_model(data, seed, request.level, cache=cache, device=device, progress=progress)
    seed_everything(seed)
    result = unlearn(method, original, data, request, device=device, seed=seed, cache=cache, progress=progress,
                     **cfg.method_hp(method, request.scenario))
    key = cfg.run_key(data, request, method, seed)
    metrics = evaluate(result.model, data, request, max_retain=cfg.eval.get("max_retain"), seed=seed, device=device,
                       per_class=True)
    per_class = metrics.pop("per_class")
    record = dict(config=cfg.name, config_hash=cfg.hash(), key_hash=cfg.record_name(data, request, method, seed)[:-5],
                  dataset=data.name, arch=cfg.model["arch"], scenario=request.scenario,
                  forget=list(map(str, request.forget)), request=request.label(), method=method, seed=seed,
                  hp=key["hp"], metrics=metrics,
                  per_class=per_class,
                  seconds=result.seconds, timing=result.timing.to_dict(), train_seconds=original.train_seconds,
                  details={k: v for k, v in result.details.items() if k != "hp"}, device=str(device),
                  environment=environment if environment is not None else _environment(), finished=_now())
    return result, record


def original_record(cfg: ExperimentConfig, data, request, seed: int, original, *, device=None,
                    environment: dict | None = None) -> dict:
    """The original model's own record for a request: the "before" of every comparison."""
    from .metrics import evaluate
    metrics = evaluate(original, data, request, max_retain=cfg.eval.get("max_retain"), seed=seed, device=device,
                       per_class=True)
    per_class = metrics.pop("per_class")
    return dict(config=cfg.name, config_hash=cfg.hash(), dataset=data.name, arch=cfg.model["arch"],
                scenario=request.scenario, forget=list(map(str, request.forget)), request=request.label(),
                method="original", seed=seed, hp={}, metrics=metrics, per_class=per_class,
                seconds=original.train_seconds, train_seconds=original.train_seconds, details={},
                device=str(device), environment=environment if environment is not None else _environment(),
                finished=_now())


def request_records(cfg: ExperimentConfig, data, request, methods, seed: int, *, original=None, run: bool = False,
                    device=None, out_dir=None) -> tuple[dict, bool]:
    """The records of ``methods`` on one request and seed, with the original's (key
    ``"original"``): the profile's committed records when every one of them exists and not
    ``run`` — the very runs the result chapters tabulate —, else made here as the runner makes
    them (:func:`run_one`, :func:`original_record`; ``original``: the profile's original for
    ``seed``, trained or loaded when None; ``out_dir``: the results folder, as for
    :func:`profile_records`). Returns ``(records, committed)``."""
    methods = list(methods)
    check(methods and all(isinstance(m, str) and m != "original" for m in methods),
          f"request_records needs method names (the original's record comes with them), got {methods!r}")
    if not run:
        folder = cfg.records_folder(out_dir)
        found = {m: _read_record(folder / cfg.record_name(data, request, m, seed)) for m in ["original", *methods]}
        if all(found.values()):
            return found, True
    if original is None:
        original = cfg.original_model(data, seed, request.level, device=device)
    made = {"original": original_record(cfg, data, request, seed, original, device=device)}
    for m in methods:
        made[m] = run_one(cfg, data, request, m, seed, original=original, device=device)[1]
    return made, False


def _write(path: Path, record: dict) -> None:
    atomic_write_bytes(path, json.dumps(record, indent=1, default=float).encode())


def run_experiments(cfg: ExperimentConfig, *, out_dir: str | os.PathLike | None = None, cache=None,
                    progress=None, log=print) -> Path:
    """Run every (seed, request, method) of ``cfg`` not yet recorded; returns the records folder
    (``cfg.records_folder(out_dir)``)."""
    from .training import progress_bar, resolve_device

    records = cfg.records_folder(out_dir)
    # before any work: a results folder that cannot take the records would lose every run
    check_writable(records, "results folder", "pass --out (out_dir) or set MEGU_RESULTS_DIR to a writable folder")
    remove_stale_temp_files(records)  # left by a run that was killed while writing a record
    data = load_data(cfg)
    cfg, notes = cfg.for_data(data)
    for note in notes:
        log(f"[run {cfg.name}] note: {note}")
    # a judge wanting more images of a class than the data holds: before any work
    cfg.check_exemplars({"the training split": data.targets("train").numpy()}, data.class_names(),
                        where=cfg.where, fix="set ")
    device = resolve_device(cfg.device)
    if cfg.tuning is not None and cfg.tuning_section()["use"]:  # the studies first: the runs use their choices
        from .tuning import tune_profile
        tune_profile(cfg, data, cache=cache, device=device, progress=progress, log=log)
    env = _environment()
    jobs = cfg.jobs(data)
    todo = [(s, r, m) for s, r, m in jobs if not _is_record(records / cfg.record_name(data, r, m, s))]
    log(f"[run {cfg.name}] {len(jobs)} runs, {len(jobs) - len(todo)} already recorded, {len(todo)} to do -> "
        f"{shown_path(records)}")
    started = time.perf_counter()
    originals = {}

    def original_for(seed, level):
        if (seed, level) not in originals:
            originals[(seed, level)] = cfg.original_model(data, seed, level, cache=cache, device=device,
                                                          progress=progress)
        return originals[(seed, level)]

    with progress_bar(len(todo), f"{cfg.name}", progress) as bar:
        for seed, request, method in todo:
            _, record = run_one(cfg, data, request, method, seed, original=original_for(seed, request.level),
                                cache=cache, device=device, progress=progress, environment=env)
            _write(records / cfg.record_name(data, request, method, seed), record)
            bar.update(1)
            bar.set_postfix(method=method, refresh=False)
    for seed, request in cfg.originals(data):
        path = records / cfg.record_name(data, request, "original", seed)
        if not _is_record(path):
            _write(path, original_record(cfg, data, request, seed, original_for(seed, request.level),
                                         device=device, environment=env))
    seconds = time.perf_counter() - started
    log(f"[run {cfg.name}] done in {seconds:.0f} s")
    if todo:  # a call that only loaded records (the book's chapters) cost nothing worth logging
        append_run_log(cfg.results_folder() if out_dir is None else Path(out_dir), "run", seconds=seconds,
                       runs=len(todo), of=len(jobs))
    return records


def append_run_log(folder: Path, command: str, **fields) -> None:
    """Add one entry (command, finish time, machine, ``fields``) to ``<folder>/run_log.json``:
    how long each run, tune or resume of a profile took, so the time a profile costs from
    empty caches can be added up across interrupted runs. Committed with the records."""
    path = Path(folder) / "run_log.json"
    try:
        entries = json.loads(path.read_text()) if path.exists() else []
    except ValueError:
        entries = []
    entries = entries if isinstance(entries, list) else []
    import torch
    entries.append(dict(command=command, finished=_now(), platform=platform.platform(),
                        threads=torch.get_num_threads(), **{k: round(v, 1) if isinstance(v, float) else v
                                                             for k, v in fields.items()}))
    atomic_write_bytes(path, json.dumps(entries, indent=1).encode())


def _read_record(path: Path) -> dict | None:
    """A record, or None when it is missing or damaged (not JSON, or without its metrics)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("metrics"), dict) else None


def _records_in(folder: Path) -> list[dict]:
    """Every whole record in ``folder`` (by file name; damaged ones left out); none when it is missing."""
    return [rec for rec in map(_read_record, sorted(folder.glob("*.json"))) if rec is not None] \
        if folder.is_dir() else []


def _is_record(path: Path) -> bool:
    """True when ``path`` holds a whole record: a damaged one (edited, truncated by a full
    disk...) is made again, by an atomic write over it."""
    return path.exists() and _read_record(path) is not None


# --------------------------------------------------------------------------- tables
def record_row(rec: dict) -> dict:
    """One record as a flat table row: its fields and metrics, ``per_class`` kept as a dict
    (the bulky ``details`` and ``environment`` left out)."""
    return {**{k: v for k, v in rec.items() if k not in ("metrics", "per_class", "details", "environment")},
            **rec["metrics"], "per_class": rec.get("per_class", {})}


def load_records(path: str | os.PathLike) -> pd.DataFrame:
    """Every record under ``path`` (a records folder or a results folder) as one flat
    DataFrame with gaps to retrain. For a profile's own records use :func:`profile_records`."""
    path = Path(path)
    if (path / "records").is_dir():
        path = path / "records"
    rows = [record_row(rec) for rec in _records_in(path)]
    check(rows, f"no records under {path}; run the experiments first (python -m megu_lib run <profile>)")
    return add_gaps(pd.DataFrame(rows))


def profile_records(cfg: ExperimentConfig, data, *, run: bool = False, out_dir=None, log=print,
                    partial: bool = False) -> pd.DataFrame:
    """The records of ``cfg`` on ``data`` (``cfg.record_files``) as one DataFrame with gaps to
    retrain, running what is missing when ``run``. Without ``run``, missing records stop with
    one line naming the command to run (``partial``: those that exist, with ``attrs["missing"]``
    counting the rest). Other records in the folder (an older config) are ignored. ``cfg``
    should be fitted to ``data`` (:meth:`megu_lib.profile.ExperimentConfig.for_data`)."""
    folder = cfg.records_folder(out_dir)
    if run:
        run_experiments(cfg, out_dir=folder.parent, log=lambda m: log(m.split(" -> ")[0]))
    rows, missing = [], 0
    for name in cfg.record_files(data):
        rec = _read_record(folder / name)
        if rec is None:
            missing += 1
            continue
        rows.append(record_row(rec))
    from .profile import PARAMS_DIR
    name = cfg.name if not cfg.path or Path(cfg.path).parent == PARAMS_DIR else cfg.path
    extra = "" if cfg.own_data else f" --dataset {cfg.dataset}"
    check(missing == 0 or (partial and rows), f"{missing} of {missing + len(rows)} record(s) of profile {cfg.name!r} "
          f"are missing under {shown_path(folder)}; run the experiments first (python -m megu_lib run {name}{extra})")
    df = add_gaps(pd.DataFrame(rows))
    df.attrs["missing"] = missing
    return df


def add_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """Each record's gap to the retrain record of the same request and seed (points): ``gap``
    (over :data:`~megu_lib.metrics.GAP_KEYS`), its parts ``gap_<metric>``, and ``gap_no_mia``
    (the accuracies only). Gaps already in ``df`` are computed again, not doubled."""
    df = df.drop(columns=[c for c in df.columns if c == "gap" or c.startswith("gap_")])
    ref = df[df.method == "retrain"].set_index(["request", "seed"])
    gaps = []
    for _, row in df.iterrows():
        key = (row["request"], row["seed"])
        if key in ref.index:
            r = ref.loc[key]
            gaps.append(gap_to_reference({k: row[k] for k in GAP_KEYS}, {k: r[k] for k in GAP_KEYS}))
        else:
            gaps.append({f"gap_{k}": np.nan for k in GAP_KEYS} | {"gap": np.nan})
    gaps = pd.DataFrame(gaps)
    # the gap without the MIA term, for where the attack has no power (mia_auc near 0.5)
    acc = [f"gap_{k}" for k in GAP_KEYS if k != "mia" and f"gap_{k}" in gaps]
    gaps["gap_no_mia"] = gaps[acc].mean(axis=1) if acc else np.nan
    return pd.concat([df.reset_index(drop=True), gaps], axis=1)


def committed_records(profile: str, data, *, partial: bool = False) -> tuple[pd.DataFrame | None, str]:
    """Exactly the records of another profile on ``data`` when all of them exist (never
    run here), else ``(None, why)`` — for a chapter that shows a second profile beside its own.
    With ``partial``, those that exist when some do, and ``why`` says how many are missing."""
    from .errors import MeguError
    from .profile import load_config
    try:
        cfg = load_config(profile)
        cfg = cfg.for_data(data)[0]
        df = profile_records(cfg, data, partial=partial)
        missing = df.attrs.get("missing", 0)
        return df, (f"{missing} of {missing + len(df)} records of profile {profile!r} are still to be made: "
                    f"python -m megu_lib run {profile}" if missing else "")
    except MeguError as e:
        return None, str(e)


def better_search_profile(cfg: ExperimentConfig) -> ExperimentConfig | None:
    """The profile ``cfg.notebook["better_search"]`` names (None without one): ``cfg``'s grid run
    again at a repeated study's choice where that repeat was the better of the two searches on
    the tuning task (``tuned_from: {profile: <cfg>, ..., replicate: R, where_better: true}``);
    one that is not such a profile is a one-line error."""
    from .profile import config_path, load_config
    name = cfg.notebook.get("better_search")
    if not name:
        return None
    rep = load_config(name)
    tf = rep.tuned_from or {}
    own = Path(cfg.path).resolve() if cfg.path else config_path(cfg.name).resolve()
    check(tf.get("where_better") is True and config_path(tf["profile"]).resolve() == own,
          f"{cfg.where}: notebook.better_search names profile {name!r}, which is not a repeat of {cfg.name!r}'s grid; "
          f"it needs tuned_from: {{profile: {cfg.name}, methods: [...], replicate: <a committed repeat>, "
          f"where_better: true}}")
    return rep


@dataclass(frozen=True)
class VerdictRecords:
    """What :func:`verdict_records` found: the records the verdicts read, and the repeat behind them."""
    records: pd.DataFrame  #: what every table and verdict reads
    better: ExperimentConfig | None  #: the repeat (fitted to the data) when ``records`` hold its rows, else None
    repeat: ExperimentConfig | None  #: the profile's ``notebook.better_search`` (None without one)
    at_repeat: pd.DataFrame | None  #: the repeat's records committed so far (None when it has none)
    missing: str  #: why the repeat is not complete ("" when it is, or when there is none)
    note: str  #: a Markdown sentence saying which records the verdicts read ("" without a repeat)


def verdict_records(cfg: ExperimentConfig, data, df: pd.DataFrame) -> VerdictRecords:
    """The records the book's verdicts stand on, from ``df`` (``cfg``'s own on ``data``).

    Where ``cfg`` names a :func:`better_search_profile` and every record of it on ``data`` is
    committed, each method at the better of its two searches
    (:func:`megu_lib.tables.at_better_search`: the repeat's rows in place of the committed ones
    where the repeat won, every gap against ``cfg``'s retrain runs); else ``df`` itself. The
    repeat's records are read once, as far as they are committed, and returned with them (for
    :func:`megu_lib.tables.repeat_effect`)."""
    from .tables import at_better_search, repeated_methods, scenarios_of
    rep_cfg = better_search_profile(cfg)
    if rep_cfg is None:
        return VerdictRecords(df, None, None, None, "", "")
    at_repeat, why = committed_records(rep_cfg.name, data, partial=True)
    if at_repeat is None or why:
        return VerdictRecords(df, None, rep_cfg, at_repeat, why, (
            f"*Every method at its committed search: the grid at the better of two searches "
            f"(profile `{rep_cfg.name}`) is not complete on these data ({why}).*"))
    moved = {s: repeated_methods(at_repeat, s) for s in scenarios_of(df)}
    moved = "; ".join(f"{s}: {', '.join(f'`{m}`' for m in ms)}" for s, ms in moved.items() if ms)
    return VerdictRecords(at_better_search(df, at_repeat), rep_cfg.for_data(data)[0], rep_cfg, at_repeat, "", (
        f"**Every method at the better of its two searches** on the tuning task: where a method's repeated "
        f"study found the lower best gap, its rows are its runs at the repeat's choice (profile `{rep_cfg.name}`"
        f"{'; ' + moved if moved else ''}); every gap is against the retrain runs of `{cfg.name}`, and those "
        f"rows' times, measured in `{rep_cfg.name}`'s own run (which may have had another machine), are put on "
        f"`{cfg.name}`'s machine by the ratio of the two runs' retraining times on the same request and seed."))



def beside_verdicts(cfg: ExperimentConfig, pairs, what: str) -> str:
    """A Markdown sentence for ``what`` (e.g. "The shadows' methods"), a run that takes for each
    (method, scenario) of ``pairs`` the setting ``cfg``'s own committed study chose: whether
    that is the setting the verdicts read, which is each method at the better of its two
    searches (:func:`verdict_records`). "" when ``cfg`` names no :func:`better_search_profile`."""
    from .tables import same_setting
    from .tuning import chosen_for
    better = better_search_profile(cfg)
    if better is None:
        return ""
    replicate = better.tuned_from["replicate"]
    moved = [(m, s) for m, s in pairs if cfg.tuned(m) and better.at_repeat(m, s)]
    other = [(m, s) for m, s in moved
             if not same_setting(chosen_for(cfg, m, s), chosen_for(cfg, m, s, replicate=replicate))]
    same = [p for p in moved if p not in other]

    def listed(ps):
        by = {}
        for m, s in ps:
            by.setdefault(s, []).append(f"`{m}`")
        return "; ".join(f"{', '.join(ms)} in {s} forgetting" for s, ms in by.items())
    if not other:
        return (f"{what} run at the committed search's setting, the one the verdicts read"
                + (f"; where a repeated study was the better search ({listed(same)}), it chose the very same "
                   f"setting" if same else "") + ".")
    return (f"{what} run at the committed search's setting. **That is not the setting the verdicts read** for "
            f"{listed(other)}: there the repeated study was the better search on the tuning task and chose "
            f"another setting, and chapter Experiments reads those methods at it."
            + (f" For {listed(same)} the repeat chose the very same setting." if same else ""))


# --------------------------------------------------------------------------- what a profile costs
def _probe_speed(seg: dict) -> float | None:
    """A clean-run segment's training throughput (images/s; the mean where it kept several probes)."""
    probes = seg.get("probes") or ([seg["probe"]] if seg.get("probe") else [])
    speeds = [p["train_images_per_s"] for p in probes if p.get("train_images_per_s")]
    return float(np.mean(speeds)) if speeds else None


def _machine(seg: dict) -> str:
    return str(seg.get("machine", "")).split("-x86_64")[0].removeprefix("Linux-")


def _timed_again(cfg: ExperimentConfig, summary: dict, budget_hours: float | None) -> str:
    """A sentence on the stages of the clean run timed again from nothing, in folders of their
    own (``results/<profile>/clean_run_again.json``: ``benchmarks/clean_run.py --no-export``):
    each beside its first measurement, and the whole profile measured on one machine type where
    the stages not timed again ran on the same type as those that were. Empty without one."""
    path = cfg.results_folder() / "clean_run_again.json"
    try:
        again = json.loads(path.read_text())
        done = {st: v["seconds"] / 3600 for st, v in again["stages"].items() if v["finished"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    if not done:
        return ""
    segs, first = again.get("segments") or [], summary["stages"]
    timed = "; ".join(
        f"the {st} stage took {h:.2f} h (first measurement {first[st]['seconds'] / 3600:.2f} h)" if st in first
        else f"the {st} stage took {h:.2f} h" for st, h in done.items())
    kinds = sorted({_machine(s) for s in segs if s["stage"] in done})
    speeds = [v for v in (_probe_speed(s) for s in segs if s["stage"] in done) if v]
    text = (f" Timed again from nothing in folders of their own (`{shown_path(path)}`; machine "
            f"{', '.join(kinds)}" + (f", probe {np.mean(speeds):.0f} images/s" if speeds else "") + f"): {timed}.")
    rest = [s for s in summary.get("segments") or [] if s["stage"] not in done]
    if summary.get("complete") and len(kinds) == 1 and rest and {_machine(s) for s in rest} == set(kinds):
        whole = sum(done.values()) + sum(v["seconds"] for st, v in first.items() if st not in done) / 3600
        text += (f" With the other stages' own times, measured on the same machine type, the whole profile takes "
                 f"**{whole:.2f} h** as measured on one machine type")
        if budget_hours is not None:
            text += (" — within our budget." if whole <= budget_hours else
                     f" — over our budget by {100 * (whole / budget_hours - 1):.0f} %.")
        else:
            text += "."
    return text


#: The profile's measurements from empty caches by ``benchmarks/clean_run.py``, by name: the first
#: (``clean_run``, float32 on the CPU, the committed records' numerics) and the whole profile again
#: once the CPU computed in bf16 autocast (``clean_run_bf16``: ``--results results/clean_run_bf16
#: --out results/<profile>/clean_run_bf16.json --no-export``).
CLEAN_RUNS = ("clean_run", "clean_run_bf16")


def clean_run_folder(cfg: ExperimentConfig, name: str = "clean_run") -> Path:
    """Where ``benchmarks/clean_run.py`` keeps the profile's run from empty caches (its records,
    studies and segments), beside the profile's own results: ``results/<name>/<profile>``."""
    check(name in CLEAN_RUNS, f"unknown clean run {name!r}: use one of {', '.join(CLEAN_RUNS)}")
    return cfg.results_folder().parent / name / cfg.name


def clean_run_records(cfg: ExperimentConfig, data, name: str = "clean_run") -> tuple[pd.DataFrame | None, str]:
    """The grid that the profile's clean run made from nothing (its own tuning studies, its own
    originals and retrained models, on its machines), as records with gaps to its own retrain
    runs, when its run stage finished with a record for every (seed, request, method) of the
    grid and every original; else ``(None, why)``. Its record files are named by its own
    tuned settings, so they are matched by run, not by name; anything else in the folder is
    left out. ``name``: which of :data:`CLEAN_RUNS`."""
    folder = clean_run_folder(cfg, name) / "records"
    summary = cfg.results_folder() / f"{name}.json"
    try:
        finished = json.loads(summary.read_text())["stages"]["run"]["finished"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, f"no finished run stage in {shown_path(summary)}"
    wanted = {(m, r.label(), s) for s, r, m in cfg.jobs(data)} | {("original", r.label(), s)
                                                                  for s, r in cfg.originals(data)}
    made = {}
    for rec in _records_in(folder):
        if (rec.get("method"), rec.get("request"), rec.get("seed")) in wanted:
            made[(rec["method"], rec["request"], rec["seed"])] = rec
    if not finished or len(made) != len(wanted):
        return None, (f"{len(made)} of the grid's {len(wanted)} runs in {shown_path(folder)}"
                      + ("" if finished else ", its run stage not finished"))
    return add_gaps(pd.DataFrame([record_row(rec) for rec in made.values()])), ""


def profile_cost(cfg: ExperimentConfig, data=None, *, budget_hours: float | None = None,
                 name: str = "clean_run") -> tuple[pd.DataFrame, str]:
    """What ``cfg`` costs from empty caches, as ``benchmarks/clean_run.py`` measured it
    (``results/<profile>/<name>.json``): one row per segment (stage, start, machine, its
    training-throughput probe, hours as measured and scaled to the fastest probe's machine) and a
    Markdown paragraph with the totals, set against ``budget_hours`` where given. Where ``cfg``
    names a :func:`better_search_profile` and ``data`` is given, the paragraph adds what the second
    search costs: its tuning stage once more, and the repeat's method runs, timed by their own
    records in the clean run (which runs every method at the repeat's choice). ``(empty, why)``
    when nothing is measured yet. ``name``: which of :data:`CLEAN_RUNS` (the stages timed again
    are the first measurement's, ``clean_run``, alone; a later run prices the second search by
    its own timings: the repeat profile's run stage timed the same way)."""
    folder = clean_run_folder(cfg, name)
    path = cfg.results_folder() / f"{name}.json"
    first = name == "clean_run"
    if not path.exists():
        return pd.DataFrame(), (f"*Not measured yet: `python benchmarks/clean_run.py {cfg.name}` times the profile "
                                f"from empty caches.*")
    summary = json.loads(path.read_text())
    segs = summary.get("segments") or []
    speeds = [s for s in map(_probe_speed, segs) if s]
    fastest = max(speeds) if speeds else None

    def scaled(seg):
        speed = _probe_speed(seg)
        return seg["seconds"] * speed / fastest if speed and fastest else np.nan
    rows = [dict(stage=s["stage"], started=str(s.get("at", ""))[:16].replace("T", " "),
                 machine=_machine(s),
                 segments=s.get("segments", 1), finished="yes" if s["finished"] else "no",
                 probe=_probe_speed(s), hours=s["seconds"] / 3600, hours_scaled=scaled(s) / 3600) for s in segs]
    table = pd.DataFrame(rows).rename(columns={"probe": "probe (images/s)",
                                               "hours_scaled": "hours at the fastest probe"})
    stages = summary["stages"]
    hours = {st: v["seconds"] / 3600 for st, v in stages.items()}
    at_fastest = {st: sum(scaled(s) for s in segs if s["stage"] == st) / 3600 for st in stages}
    total = (sum(hours.values()), sum(at_fastest.values()))  # hours as measured, and at the fastest probe
    parts = ", ".join(f"{st} {h:.2f} h" + ("" if stages[st]["finished"] else " so far") for st, h in hours.items())
    state = "From empty caches" if summary.get("complete") else "**Not finished yet**; so far, from empty caches"
    text = (f"{state}, profile `{cfg.name}` took **{total[0]:.2f} h** on 2 cores as measured ({parts}), "
            f"on the machines below; with each segment's time scaled by its training-throughput probe to the "
            f"fastest of them ({fastest:.0f} images/s), {total[1]:.2f} h."
            if fastest else f"{state}, profile `{cfg.name}` took {total[0]:.2f} h ({parts}).")
    if budget_hours is not None and summary.get("complete"):
        over = [f"{100 * (h / budget_hours - 1):.0f} %" for h in total]
        text += (f" Our budget is {budget_hours:g} h: " + (
            "within it as measured." if total[0] <= budget_hours else
            f"within it at the fastest probe's speed, over it on the slower machines (by {over[0]} as measured)."
            if total[1] <= budget_hours else
            f"**over it**, by {over[0]} as measured and by {over[1]} at the fastest probe's speed."))
    text += _timed_again(cfg, summary, budget_hours) if first else ""
    noted = sum(bool(s.get("note")) for s in segs)
    if noted:  # what was cut, removed or made again: the reader can check the accounting
        text += (f" {noted} of the {len(segs)} segments carry a note on what was cut, removed or made again "
                 f"(`{shown_path(folder / 'segments.json')}`, the table's rows in order).")
    runs = folder / "records"
    made = _records_in(runs)
    own = {}  # the run stage's records: each method's own time (training and unlearning; evaluation aside)
    for rec in made:
        if rec["method"] != "original":  # the original's record carries its training time, once per request
            own[rec["method"]] = own.get(rec["method"], 0.0) + rec["seconds"] / 3600
    if own:
        top = sorted(own.items(), key=lambda kv: -kv[1])
        text += (f" Where the run stage's time goes ({len(made)} records"
                 f"{'' if stages.get('run', {}).get('finished') else ' so far'}): the methods' own times sum to "
                 f"{sum(own.values()):.2f} h — " + ", ".join(f"`{m}` {h:.2f} h" for m, h in top)
                 + "; the rest is the originals and the evaluation of every run.")
    better = better_search_profile(cfg)
    if better is not None and first and data is not None and "tune" in stages and made:
        better = better.for_data(data)[0]
        wanted = {(m, r.label(), s) for s, r, m in better.jobs(data)
                  if better.at_repeat(m, r.scenario)}
        got = [rec for rec in made if (rec["method"], rec["request"], rec["seed"]) in wanted]
        tune_h = at_fastest["tune"] if fastest else hours["tune"]
        whole = total[1] if fastest else total[0]
        if len(got) == len(wanted):
            extra = sum(r["seconds"] for r in got) / 3600
            text += (f" The verdicts read every method at the better of two searches: the second search costs the "
                     f"tuning stage once more ({tune_h:.2f} h) and the {len(wanted)} runs of profile `{better.name}` "
                     f"(their unlearning times in this clean run's own records, which ran every method at the "
                     f"repeat's choice: {extra:.2f} h; the originals and retrained models are shared), so the "
                     f"verdicts' whole pipeline from nothing is about {whole + tune_h + extra:.2f} h "
                     f"at the fastest probe's speed.")
    if better is not None and not first and "tune" in stages and summary.get("complete"):
        text += _second_search_timed(better, name, hours["tune"], total[0], budget_hours)
    return table, text


def _second_search_timed(better: ExperimentConfig, name: str, tune_hours: float, profile_hours: float,
                         budget_hours: float | None) -> str:
    """A sentence on the verdicts' whole pipeline as measured in the clean run ``name``: the
    profile (``profile_hours``), its tuning stage once more (``tune_hours``, as this run timed it)
    and the repeat profile ``better``'s run stage timed by ``benchmarks/clean_run.py`` from the
    same cache of originals and retrained models (``results/<repeat>/<name>.json``). Empty
    until that summary exists."""
    path = better.results_folder() / f"{name}.json"
    try:
        run = json.loads(path.read_text())["stages"]["run"]
        repeat_hours, finished = run["seconds"] / 3600, bool(run["finished"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    whole = profile_hours + tune_hours + repeat_hours
    text = (f" The verdicts read every method at the better of two searches; measured the same way, the second "
            f"search costs the tuning stage once more ({tune_hours:.2f} h, as timed here) and the run stage of "
            f"profile `{better.name}` from this run's originals and retrained models (`{shown_path(path)}`: "
            f"{repeat_hours:.2f} h{'' if finished else ' so far, not finished'}), so the verdicts' whole pipeline "
            f"from nothing takes **{whole:.2f} h**" + ("" if finished else " so far"))
    if budget_hours is not None and finished:
        text += (" — within our budget." if whole <= budget_hours else
                 f" — over our budget by {100 * (whole / budget_hours - 1):.0f} %.")
    else:
        text += "."
    return text
