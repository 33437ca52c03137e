"""Experiment configs, the cached and resumable runner, and tables built from its records.

A config (YAML in ``params/``) names the data set, model, training schedule, seeds,
scenarios with their forget targets, methods and per-method hyperparameters. The
runner trains (or loads from the cache) the original model of each seed and label
level, then runs every (seed, request, method) and writes one JSON record per run —
config hash, seed, git commit, package versions, device, metrics, per-class accuracy,
seconds — atomically, named by the hash of everything that determines it. A run that is
interrupted and started again skips the records that exist. Tables and figures are
built from records only.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import re
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .cache import atomic_write_bytes, check_writable, remove_stale_temp_files
from .errors import MeguError, check
from .metrics import GAP_KEYS, evaluate, gap_to_reference
from .requests import SCENARIOS, config_hash, make_request

PARAMS_DIR = Path(__file__).resolve().parents[1] / "params"
RESULT_KEYS = ("retain_acc", "forget_acc", "test_acc", "test_retain_acc", "test_forget_acc", "mia", "mia_loss")
CONFIG_KEYS = {
    "name": "the profile's name",
    "description": "one line on what the profile is for",
    "dataset": "data set name or image folder",
    "subset": "stratified subset sizes {train: N, test: M} or null",
    "model": "architecture and options, e.g. {arch: small_cnn, width: 16}",
    "train": "training preset and overrides, e.g. {preset: fast, epochs: 3}",
    "device": "cpu, cuda or auto",
    "seeds": "list of integer seeds",
    "judge": "concept judge for MeGU's transition matrix",
    "eval": "evaluation options, e.g. {max_retain: 5000}",
    "scenarios": "mapping scenario -> {forget: [targets]}",
    "methods": "list of method names",
    "hp": "per-method hyperparameter overrides {method: {name: value}}",
    "notebook": "extra parameters for the notebooks",
}
REQUIRED = ("dataset", "model", "train", "seeds", "scenarios", "methods")
EVAL_KEYS = ("max_retain",)
DEVICE_PATTERN = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def results_dir() -> Path:
    # an empty MEGU_RESULTS_DIR counts as unset (else results would land in the working directory)
    return Path(os.environ.get("MEGU_RESULTS_DIR") or Path(__file__).resolve().parents[1] / "results").expanduser()


def _check_hp_value(where: str, method: str, name: str, value, default) -> None:
    """Type and range checks that hold for every method's hyperparameters, made when the config
    is loaded (each method checks its own ranges again when it runs): a bool stays a bool, a
    number a finite number >= 0 (every numeric hyperparameter in the registry is a rate, a
    size, a count, a weight or a fraction), a string a string. None is left to the method."""
    if value is None or default is None:
        ok = value is None or not isinstance(value, float) or math.isfinite(value)
        want = "a finite number"
    elif isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        want = "a finite number >= 0"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "a string"
    else:
        ok, want = True, ""
    check(ok, f"{where}: hp.{method}.{name} must be {want}, got {value!r}")


@dataclasses.dataclass
class ExperimentConfig:
    """A validated experiment config (see :data:`CONFIG_KEYS`)."""

    name: str
    dataset: str
    model: dict
    train: dict
    seeds: list
    scenarios: dict
    methods: list
    subset: dict | None = None
    device: str = "auto"
    judge: str = "text"
    eval: dict = dataclasses.field(default_factory=dict)
    hp: dict = dataclasses.field(default_factory=dict)
    notebook: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    path: str = ""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d

    def hash(self) -> str:
        return config_hash(self.to_dict())


def config_path(name: str) -> Path:
    p = Path(str(name)).expanduser()
    if p.suffix in (".yaml", ".yml"):
        return p
    return PARAMS_DIR / f"{name}.yaml"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def load_config(name: str, **overrides) -> ExperimentConfig:
    """Load and validate a config: a profile name in ``params/`` or a YAML path.

    ``overrides`` replace top-level keys (None leaves a key as it is). Every problem is
    a one-line :class:`MeguError` naming the key and the file, before any work starts.
    """
    from .methods import list_methods
    from .concepts import list_judges

    path = config_path(name)
    check(path.is_file(), f"unknown profile {name!r} (no {path}): use one of {', '.join(available_profiles())} "
          "or the path of a YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MeguError(f"{path}: malformed YAML{where}; fix the file") from None
    check(isinstance(raw, dict), f"{path}: the config must be a mapping of keys to values")
    raw = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    for key in raw:
        check(key in CONFIG_KEYS, f"{path}: unknown key {key!r}; known keys: {', '.join(CONFIG_KEYS)}")
    for key in REQUIRED:
        check(key in raw and raw[key] is not None, f"{path}: missing key {key!r} ({CONFIG_KEYS[key]})")
    where = path.name
    name = raw.get("name", path.stem)
    check(isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None,
          f"{where}: name must be letters, digits, '_', '-' or '.' (it names the results folder), got {name!r}")
    check(isinstance(raw["dataset"], str) and raw["dataset"].strip(),
          f"{where}: dataset must be a name or a folder path, got {raw['dataset']!r}")
    model = raw["model"] if isinstance(raw["model"], dict) else {"arch": raw["model"]}
    check(isinstance(model.get("arch"), str), f"{where}: model must name an arch, e.g. {{arch: small_cnn}}")
    from .models import ARCHITECTURES
    check(model["arch"] in ARCHITECTURES, f"{where}: unknown model {model['arch']!r}; use one of {', '.join(ARCHITECTURES)}")
    train = raw["train"] if isinstance(raw["train"], dict) else {"preset": raw["train"]}
    from .training import train_config
    try:
        train_config(dict(train))
    except MeguError as e:
        raise MeguError(f"{where}: train: {e}") from None
    seeds = raw["seeds"] if isinstance(raw["seeds"], list) else [raw["seeds"]]
    check(len(seeds) > 0 and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds),
          f"{where}: seeds must be a list of integers, got {raw['seeds']!r}")
    check(len(set(seeds)) == len(seeds), f"{where}: seeds repeat: {seeds}")
    scen = raw["scenarios"]
    check(isinstance(scen, dict) and scen, f"{where}: scenarios must map a scenario to {{forget: [...]}}")
    for s, spec in scen.items():
        check(s in SCENARIOS, f"{where}: unknown scenario {s!r}; use one of {', '.join(SCENARIOS)}")
        check(isinstance(spec, dict) and "forget" in spec, f"{where}: scenarios.{s} needs a 'forget' list")
        check(set(spec) == {"forget"}, f"{where}: scenarios.{s} has unknown key(s) {sorted(set(spec) - {'forget'})}; "
              "it takes only 'forget'")
        if not isinstance(spec["forget"], list):
            spec["forget"] = [spec["forget"]]
        check(spec["forget"] and all(t is not None for t in spec["forget"]),
              f"{where}: scenarios.{s}.forget must list at least one target, got {spec['forget']!r}")
        check(len(set(map(repr, spec["forget"]))) == len(spec["forget"]),
              f"{where}: scenarios.{s}.forget repeats a target: {spec['forget']}")
    known = list_methods()
    methods = raw["methods"]
    check(isinstance(methods, list) and methods, f"{where}: methods must be a non-empty list")
    for m in methods:
        check(m in known, f"{where}: unknown method {m!r}; use one of {', '.join(known)}")
    check(len(set(methods)) == len(methods), f"{where}: methods repeat: {methods}")
    check("retrain" in methods, f"{where}: methods must include 'retrain' (the reference every gap is measured to)")
    hp = raw.get("hp") or {}
    check(isinstance(hp, dict), f"{where}: hp must map a method to its hyperparameters, got {hp!r}")
    from .methods import get_method
    for m, values in hp.items():
        check(m in known, f"{where}: hp for unknown method {m!r}; use one of {', '.join(known)}")
        check(isinstance(values, dict), f"{where}: hp.{m} must be a mapping of hyperparameters")
        defaults = get_method(m).defaults
        bad = set(values) - set(defaults)
        check(not bad, f"{where}: hp.{m} has unknown hyperparameter(s) {sorted(bad)}; "
              f"known: {', '.join(defaults)}")
        for k, v in values.items():
            _check_hp_value(where, m, k, v, defaults[k])
    judge = raw.get("judge", "text")
    check(judge in list_judges(), f"{where}: unknown judge {judge!r}; use one of {', '.join(list_judges())}")
    subset = raw.get("subset")
    check(subset is None or (isinstance(subset, dict) and set(subset) <= {"train", "test"}),
          f"{where}: subset must be null or {{train: N, test: M}}")
    for k, v in (subset or {}).items():
        check(v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0),
              f"{where}: subset.{k} must be a positive int (or null for all), got {v!r}")
    from .models import model_config
    try:  # option names and values; the data set's shape is not needed for that
        model_config(model["arch"], num_classes=2, **{k: v for k, v in model.items() if k != "arch"})
    except MeguError as e:
        raise MeguError(f"{where}: model: {e}") from None
    device = raw.get("device", "auto")
    check(isinstance(device, str) and DEVICE_PATTERN.fullmatch(device) is not None,
          f"{where}: device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    ev = raw.get("eval") or {}
    check(isinstance(ev, dict) and set(ev) <= set(EVAL_KEYS),
          f"{where}: eval must be a mapping with key(s) {', '.join(EVAL_KEYS)}, got {ev!r}")
    mr = ev.get("max_retain")
    check(mr is None or (isinstance(mr, int) and not isinstance(mr, bool) and mr > 0),
          f"{where}: eval.max_retain must be a positive int or null (all), got {mr!r}")
    notebook = raw.get("notebook") or {}
    check(isinstance(notebook, dict), f"{where}: notebook must be a mapping of notebook parameters, got {notebook!r}")
    return ExperimentConfig(name=name, dataset=raw["dataset"], model=model, train=train,
                            seeds=seeds, scenarios=scen, methods=methods, subset=subset,
                            device=device, judge=judge, eval=ev, hp=hp,
                            notebook=notebook, description=raw.get("description", ""), path=str(path))


def load_data(cfg: ExperimentConfig):
    """The config's data set (and stratified subset)."""
    from .data import load_dataset
    data = load_dataset(cfg.dataset)
    if cfg.subset:
        data = data.subset(cfg.subset.get("train"), cfg.subset.get("test"), seed=0)
    return data


def build_requests(cfg: ExperimentConfig, data, seed: int) -> list:
    """Every request of the config for one seed (random requests are drawn with the seed)."""
    out = []
    for scenario, spec in cfg.scenarios.items():
        for target in spec["forget"]:
            if scenario == "random":
                out.append(make_request(data, "random", fraction=target, seed=seed))
            else:
                out.append(make_request(data, scenario, forget=target, seed=seed))
    return out


def _environment() -> dict:
    import torch
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1], timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import numpy, sklearn
    return dict(git_commit=commit, python=platform.python_version(), torch=torch.__version__,
                numpy=numpy.__version__, sklearn=sklearn.__version__, platform=platform.platform(),
                threads=torch.get_num_threads())


def run_key(cfg: ExperimentConfig, data, request, method: str, seed: int) -> dict:
    """Everything that determines one record."""
    from .methods import get_method
    hp = {**get_method(method).defaults, **cfg.hp.get(method, {})}
    if method.startswith("megu") and "judge" in hp:
        hp["judge"] = cfg.hp.get(method, {}).get("judge", cfg.judge)
    return dict(data=data.fingerprint(), model=cfg.model, train=cfg.train, request=request.key(), method=method,
                hp=hp, seed=seed, eval=cfg.eval)


def run_experiments(cfg: ExperimentConfig, *, out_dir: str | os.PathLike | None = None, cache=None,
                    progress=None, log=print) -> Path:
    """Run every (seed, request, method) of ``cfg`` not yet recorded; returns the records folder."""
    from .methods import unlearn
    from .metrics import per_class_accuracy
    from .trained import fit_model
    from .training import resolve_device, seed_everything, train_config
    from .training import progress_bar

    out = Path(out_dir) if out_dir is not None else results_dir() / cfg.name
    records = out / "records"
    # before any work: a results folder that cannot take the records would lose every run
    check_writable(records, "results folder", "pass --out (out_dir) or set MEGU_RESULTS_DIR to a writable folder")
    remove_stale_temp_files(records)  # left by a run that was killed while writing a record
    data = load_data(cfg)
    device = resolve_device(cfg.device)
    env = _environment()
    schedule = train_config(dict(cfg.train))
    model_opts = {k: v for k, v in cfg.model.items() if k != "arch"}
    jobs = [(seed, r, m) for seed in cfg.seeds for r in build_requests(cfg, data, seed) for m in cfg.methods]
    todo = [(s, r, m) for s, r, m in jobs if not _is_record(records / f"{config_hash(run_key(cfg, data, r, m, s))}.json")]
    log(f"[run {cfg.name}] {len(jobs)} runs, {len(jobs) - len(todo)} already recorded, {len(todo)} to do -> {records}")
    started = time.perf_counter()
    originals = {}
    with progress_bar(len(todo), f"{cfg.name}", progress) as bar:
        for seed, request, method in todo:
            key = run_key(cfg, data, request, method, seed)
            if (seed, request.level) not in originals:
                originals[(seed, request.level)] = fit_model(
                    data, arch=cfg.model["arch"], train=schedule, seed=seed, level=request.level, cache=cache,
                    device=device, progress=progress, **model_opts)
            original = originals[(seed, request.level)]
            seed_everything(seed)
            hp = dict(cfg.hp.get(method, {}))
            if method.startswith("megu") and "judge" in key["hp"]:
                hp.setdefault("judge", cfg.judge)
            new, seconds, details = unlearn(method, original, data, request, device=device, seed=seed,
                                            cache=cache, progress=progress, **hp)
            metrics = evaluate(new, data, request, max_retain=cfg.eval.get("max_retain"), seed=seed, device=device)
            per_class = per_class_accuracy(new, data, level=request.level, device=device)
            record = dict(config=cfg.name, config_hash=cfg.hash(), key_hash=config_hash(key), dataset=data.name,
                          arch=cfg.model["arch"], scenario=request.scenario, forget=list(map(str, request.forget)),
                          request=request.label(), method=method, seed=seed, hp=key["hp"], metrics=metrics,
                          per_class=per_class, seconds=seconds, train_seconds=original.train_seconds,
                          details={k: v for k, v in details.items() if k != "hp"}, device=str(device),
                          environment=env, finished=datetime.datetime.now().isoformat(timespec="seconds"))
            atomic_write_bytes(records / f"{config_hash(key)}.json", json.dumps(record, indent=1, default=float).encode())
            bar.update(1)
            bar.set_postfix(method=method, refresh=False)
    # the original models' own metrics, once per (seed, request): the "before" of every comparison
    for seed in cfg.seeds:
        for request in build_requests(cfg, data, seed):
            path = records / f"original-{config_hash(dict(run_key(cfg, data, request, 'retrain', seed), method='original'))}.json"
            if _is_record(path):
                continue
            original = originals.get((seed, request.level)) or fit_model(
                data, arch=cfg.model["arch"], train=schedule, seed=seed, level=request.level, cache=cache,
                device=device, progress=progress, **model_opts)
            originals[(seed, request.level)] = original
            rec = dict(config=cfg.name, config_hash=cfg.hash(), dataset=data.name, arch=cfg.model["arch"],
                       scenario=request.scenario, forget=list(map(str, request.forget)), request=request.label(),
                       method="original", seed=seed, hp={},
                       metrics=evaluate(original, data, request, max_retain=cfg.eval.get("max_retain"), seed=seed,
                                        device=device),
                       per_class=per_class_accuracy(original, data, level=request.level, device=device),
                       seconds=original.train_seconds, train_seconds=original.train_seconds, details={},
                       device=str(device), environment=env,
                       finished=datetime.datetime.now().isoformat(timespec="seconds"))
            atomic_write_bytes(path, json.dumps(rec, indent=1, default=float).encode())
    log(f"[run {cfg.name}] done in {time.perf_counter() - started:.0f} s")
    return records


def _read_record(path: Path) -> dict | None:
    """A record, or None when it is missing or damaged (not JSON, or without its metrics)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("metrics"), dict) else None


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
    """All records under ``path`` (a records folder or a results folder) as one flat DataFrame."""
    path = Path(path)
    if (path / "records").is_dir():
        path = path / "records"
    rows = []
    for f in sorted(path.glob("*.json")):
        rec = _read_record(f)
        if rec is None:
            continue  # a damaged record is skipped (and re-made by the next run)
        rows.append(record_row(rec))
    check(rows, f"no records under {path}; run the experiments first (python -m megu_lib run <profile>)")
    df = pd.DataFrame(rows)
    return add_gaps(df)


def add_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """Each record's gap to the retrain record of the same request and seed (points)."""
    ref = df[df.method == "retrain"].set_index(["request", "seed"])
    gaps = []
    for _, row in df.iterrows():
        key = (row["request"], row["seed"])
        if key in ref.index:
            r = ref.loc[key]
            gaps.append(gap_to_reference({k: row[k] for k in GAP_KEYS}, {k: r[k] for k in GAP_KEYS}))
        else:
            gaps.append({f"gap_{k}": np.nan for k in GAP_KEYS} | {"gap": np.nan})
    return pd.concat([df.reset_index(drop=True), pd.DataFrame(gaps)], axis=1)


TABLE_COLUMNS = ("retain_acc", "forget_acc", "test_acc", "mia", "seconds", "gap")


def summary_table(df: pd.DataFrame, scenario: str, *, columns=TABLE_COLUMNS, order=None) -> pd.DataFrame:
    """The paper's layout for one scenario: methods as rows; mean and std over seeds (and
    forget targets) of each column. Returns a DataFrame with (column, 'mean'/'std') columns."""
    sub = df[df.scenario == scenario]
    check(len(sub), f"no records for scenario {scenario!r}")
    cols = [c for c in columns if c in sub and sub[c].notna().any()]
    g = sub.groupby("method")[cols]
    table = pd.concat({"mean": g.mean(), "std": g.std(ddof=0)}, axis=1).swaplevel(axis=1)[cols]
    methods = order or list(dict.fromkeys(["original", "retrain", *df.method]))
    return table.loc[[m for m in methods if m in table.index]]


def best_per_column(table: pd.DataFrame) -> dict:
    """The method to mark in each column: closest to retrain for the metrics, smallest
    for seconds and gap (retrain and the original excluded)."""
    cand = table.drop(index=[m for m in ("retrain", "original") if m in table.index])
    best = {}
    for col in table.columns.get_level_values(0).unique():
        vals = cand[(col, "mean")]
        if col in ("seconds", "gap"):
            best[col] = vals.idxmin()
        elif "retrain" in table.index:
            best[col] = (vals - table.loc["retrain", (col, "mean")]).abs().idxmin()
    return best


def collateral_table(df: pd.DataFrame, request: str) -> pd.DataFrame:
    """Per retained class, each method's test-accuracy change against the original
    (points, mean over seeds) for one request (e.g. ``class:Shirt``)."""
    sub = df[df.request == request]
    check(len(sub), f"no records for request {request!r}")
    check("original" in set(sub.method), f"no original-model record for {request!r}; re-run the experiments")
    forget = set(sub.iloc[0]["forget"])
    rows = {}
    for method, g in sub.groupby("method"):
        per = pd.DataFrame(list(g["per_class"])).mean()
        rows[method] = per
    table = pd.DataFrame(rows).T
    change = table - table.loc["original"]
    return change.drop(columns=[c for c in change.columns if c in forget])
