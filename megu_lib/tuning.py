"""Hyperparameter sweeps on a validation split (never on the test set), and the
one-factor sensitivity sweep the ablations chapter shows after the fact.

:func:`sweep` runs one method over a grid of hyperparameters for one request and
returns a tidy DataFrame (one row per setting: the hyperparameters, the metrics, the
gap to the retrained reference, seconds). Use it on ``data.validation_split()`` to
choose defaults, and on the real split only to *show* sensitivity.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MeguError, check
from .methods import get_method, unlearn
from .metrics import GAP_KEYS, evaluate, gap_to_reference


def grid(**axes) -> list[dict]:
    """The Cartesian product of the given lists: grid(lr=[0.1, 0.01], epochs=[1, 2]) -> 4 dicts."""
    for k, v in axes.items():
        check(isinstance(v, (list, tuple)) and len(v) > 0, f"grid axis {k!r} must be a non-empty list, got {v!r}")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def sweep(method: str, settings, model, data, request, *, reference: dict, base: dict | None = None,
          seed: int = 0, device=None, cache=None, max_retain: int | None = 10000, keys=GAP_KEYS,
          progress=None, log=None) -> pd.DataFrame:
    """Run ``method`` with each setting in ``settings`` (a list of dicts, e.g. from :func:`grid`).

    ``reference``: the retrained model's metrics on the same request; ``base``:
    hyperparameters shared by all settings. Returns one row per setting.
    """
    spec = get_method(method)
    base = dict(base or {})
    for setting in settings:  # every setting checked before the first runs
        spec.check_hp({**base, **setting}, where=f"sweep: {method}: ")
    rows = []
    for i, setting in enumerate(settings):
        hp = {**base, **setting}
        new, seconds, _ = unlearn(method, model, data, request, seed=seed, device=device, cache=cache,
                                  progress=progress, **hp)
        metrics = evaluate(new, data, request, max_retain=max_retain, seed=seed, device=device)
        row = {"method": method, **setting, **metrics, **gap_to_reference(metrics, reference, keys), "seconds": seconds}
        rows.append(row)
        if log:
            log(f"[sweep {i + 1}/{len(settings)}] {setting} gap={row['gap']:.2f} s={seconds:.1f}")
    return pd.DataFrame(rows)


def best_setting(table: pd.DataFrame, axes, *, by: str = "gap", max_seconds: float | None = None) -> dict:
    """The setting (values of ``axes``) with the smallest mean ``by`` over the table's requests,
    among those whose mean seconds stay within ``max_seconds``."""
    means = table.groupby(list(axes), dropna=False)[[by, "seconds"]].mean().reset_index()
    if max_seconds is not None:
        within = means[means["seconds"] <= max_seconds]
        means = within if len(within) else means
    best = means.sort_values(by).iloc[0]
    return {a: (best[a].item() if hasattr(best[a], "item") else best[a]) for a in axes}


#: The sweep's axes when a profile names none (``notebook.sensitivity``).
DEFAULT_SENSITIVITY = {"epochs": [0.5, 1.0, 2.0], "lr": [0.003, 0.01, 0.03], "retain_ratio": [0.5, 1.0, 2.0],
                       "noise_lambda": [0.01, 0.1, 1.0]}

def check_sensitivity_axes(axes, where: str, method: str = "megu") -> dict:
    """A sweep's axes {hyperparameter: [values]}: each a hyperparameter ``method`` declares,
    each value allowed by its declaration (one-line error naming ``where``)."""
    params = get_method(method).params
    check(isinstance(axes, dict) and axes, f"{where} must map hyperparameters to lists of values, got {axes!r}")
    for k, values in axes.items():
        check(k in params, f"{where}: {method} has no hyperparameter {k!r}; known: {', '.join(params)}")
        check(isinstance(values, list) and values, f"{where}.{k} must be a non-empty list of values, got {values!r}")
        for v in values:
            params[k].check(v, f"{where}.{k}: each value")
    return {k: list(v) for k, v in axes.items()}


def sensitivity_plan(cfg, method: str = "megu") -> dict:
    """The values to sweep: ``cfg.notebook["sensitivity"]`` (a mapping hyperparameter ->
    list of values) or :data:`DEFAULT_SENSITIVITY`, checked against ``method``'s declarations."""
    return check_sensitivity_axes(cfg.notebook.get("sensitivity", DEFAULT_SENSITIVITY),
                                  f"{cfg.where}: notebook.sensitivity", method)


def sensitivity(cfg, data, request, model, reference: dict, axes: dict, *, method: str = "megu",
                seed: int = 0, out_dir=None, device=None, log=print) -> pd.DataFrame:
    """One-factor-at-a-time sweep of ``method`` around the profile's hyperparameters on one
    request: for each axis, each value with the others at the profile's. Each setting's row
    is kept as JSON under ``<results folder>/sensitivity`` (named by the hash of the run's key,
    written atomically; re-runs load it). Returns one row per (axis, value): metrics, gaps to
    ``reference``, seconds, and ``default`` (the profile's value)."""
    import json

    import numpy as np

    from .cache import atomic_write_bytes
    from .requests import config_hash
    base = cfg.method_hp(method, request.scenario)
    hp = cfg.full_hp(method, request.scenario)
    folder = (Path(out_dir) if out_dir is not None else cfg.results_folder()) / "sensitivity"
    rows = []
    for axis, values in axes.items():
        for value in values:
            key = dict(cfg.run_key(data, request, method, seed), hp={**hp, axis: value})
            path = folder / f"{config_hash(key)}.json"
            row = None
            if path.exists():
                try:
                    row = json.loads(path.read_text())
                except ValueError:
                    row = None
            if row is None:
                t = sweep(method, [{axis: value}], model, data, request, reference=reference, base=base, seed=seed,
                          device=device, max_retain=cfg.eval.get("max_retain"))
                row = {k: (v.item() if hasattr(v, "item") else v) for k, v in t.iloc[0].items() if k != axis}
                atomic_write_bytes(path, json.dumps(row, default=float).encode())
                log(f"[sensitivity] {axis}={value}: gap {row['gap']:.2f} points, {row['seconds']:.1f} s")
            rows.append(dict(axis=axis, value=float(value), default=bool(np.isclose(float(value), float(hp[axis]))),
                             **{k: v for k, v in row.items() if k not in ("axis", "value", "default")}))
    return pd.DataFrame(rows)


# =========================================================================== the tuning protocol
# Every method of a profile is tuned the same way (issue: a fair benchmark): an Optuna study
# per (method, scenario) with a seeded TPE sampler, the same number of trials, search ranges
# from the method's declarations (narrowed by the profile where it says so), a time cap equal
# to retraining, and as objective the mean gap to a retrained model on a tuning task built
# from the training split alone (an original trained on the pool minus a validation split,
# metrics on that validation split). The real test split is never read.

#: Every key of a profile's ``tuning:`` section, and what it means.
TUNING_KEYS = {
    "trials": "trials per method and scenario (the same for every method)",
    "pool": "training images the tuning task draws on (a stratified subset of the training split; null: all)",
    "validation": "fraction of the pool held out as the tuning task's evaluation split, in (0, 0.5]",
    "seed": "the seed of the tuning task, of its runs and of every study's sampler",
    "requests": "the tuning requests of each scenario, a target or a list (the objective is their mean gap): "
                "{class: [Shirt, Trouser], subclass: Shirt, random: 0.1}",
    "methods": "the methods to tune (default: every method of the profile but retrain)",
    "space": "search ranges narrowed by the profile: {method: {hyperparameter: [lo, hi] or [choices]}}",
    "startup": "random trials before TPE models the results (default: a third of the trials, at least 2)",
    "use": "run the profile's methods at the chosen settings (default true; false: reference defaults)",
}
#: The values a profile's ``tuning:`` section gets for the keys it leaves out.
TUNING_DEFAULTS = {"trials": 12, "pool": None, "validation": 0.2, "seed": 0, "requests": {}, "methods": None,
                   "space": {}, "startup": None, "use": True}


_CHECKED = {}  # check_tuning_section's answers, by the whole of what it reads


def check_tuning_section(section, where: str, *, methods: list, scenarios: dict) -> dict:
    """The profile's ``tuning:`` section with its defaults filled in; each problem one line
    naming ``where`` and the key (before any work). Checked once per distinct input: the
    record names of a grid ask for it thousands of times."""
    key = repr((section, where, methods, scenarios))
    if key not in _CHECKED:
        _CHECKED[key] = _check_tuning_section(section, where, methods=methods, scenarios=scenarios)
    return dict(_CHECKED[key])


def _check_tuning_section(section, where: str, *, methods: list, scenarios: dict) -> dict:
    from .hparams import Search
    from .methods import get_method
    check(isinstance(section, dict), f"{where}: tuning must be a mapping (keys: {', '.join(TUNING_KEYS)}), "
          f"got {section!r}")
    for key in section:
        check(key in TUNING_KEYS, f"{where}: tuning has unknown key {key!r}; known keys: {', '.join(TUNING_KEYS)}")
    t = {**TUNING_DEFAULTS, **section}
    _int = lambda v, lo: isinstance(v, int) and not isinstance(v, bool) and v >= lo  # noqa: E731
    check(_int(t["trials"], 1), f"{where}: tuning.trials must be an int >= 1, got {t['trials']!r}")
    check(t["pool"] is None or _int(t["pool"], 20),
          f"{where}: tuning.pool must be an int >= 20 (training images) or null (all), got {t['pool']!r}")
    v = t["validation"]
    check(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 0.5,
          f"{where}: tuning.validation must be a fraction of the training split in (0, 0.5]: the tuning task is "
          f"built from the training split alone and never touches the test split, got {v!r}")
    check(_int(t["seed"], 0), f"{where}: tuning.seed must be an int >= 0, got {t['seed']!r}")
    check(t["startup"] is None or _int(t["startup"], 1),
          f"{where}: tuning.startup must be an int >= 1 or null, got {t['startup']!r}")
    check(isinstance(t["use"], bool), f"{where}: tuning.use must be true or false, got {t['use']!r}")
    tuned = t["methods"] if t["methods"] is not None else [m for m in methods if m != "retrain"]
    check(isinstance(tuned, list) and tuned, f"{where}: tuning.methods must be a non-empty list, got {tuned!r}")
    for m in tuned:
        check(m in methods and m != "retrain",
              f"{where}: tuning.methods: {m!r} is not a method of the profile (retrain is the reference, never tuned)")
    t["methods"] = list(tuned)
    req = t["requests"]
    check(isinstance(req, dict), f"{where}: tuning.requests must map a scenario to one target, got {req!r}")
    for s in req:
        check(s in scenarios, f"{where}: tuning.requests.{s}: the profile has no {s!r} scenario; "
              f"its scenarios: {', '.join(scenarios)}")
    t["requests"] = {s: req.get(s, _default_target(s, spec["forget"])) for s, spec in scenarios.items()}
    for s, targets in t["requests"].items():
        check(not isinstance(targets, list) or (targets and len(set(map(repr, targets))) == len(targets)),
              f"{where}: tuning.requests.{s} must be a target or a non-empty list of distinct targets, "
              f"got {targets!r}")
    space = t["space"]
    check(isinstance(space, dict), f"{where}: tuning.space must map a method to {{hyperparameter: range}}")
    out = {}
    for m, ranges in space.items():
        check(m in t["methods"], f"{where}: tuning.space.{m}: {m!r} is not among the tuned methods")
        check(isinstance(ranges, dict), f"{where}: tuning.space.{m} must map hyperparameters to ranges")
        params = get_method(m).params
        out[m] = {}
        for name, rng in ranges.items():
            key = f"{where}: tuning.space.{m}.{name}"
            check(name in params, f"{key}: {m} has no hyperparameter {name!r}; known: {', '.join(params)}")
            p = params[name]
            check(isinstance(rng, list) and rng, f"{key} must be [lo, hi] or a list of choices, got {rng!r}")
            for value in rng:  # every end or choice must be a value the method allows
                p.check(value, f"{key}: the range is outside what {m} allows: each end")
            declared = p.search
            if p.kind in ("float", "int") and len(rng) == 2 and (declared is None or declared.scale != "choice"):
                lo, hi = rng
                check(lo < hi, f"{key}: a range needs lo < hi, got {rng!r}")
                scale = declared.scale if declared is not None else "linear"
                check(scale != "log" or lo > 0, f"{key}: a log range needs lo > 0, got {rng!r}")
                out[m][name] = Search(scale, float(lo), float(hi), integer=p.kind == "int")
            else:
                out[m][name] = Search("choice", values=tuple(rng))
    t["space"] = out
    return t


def _key_target(targets):
    """A one-element list keys as its element (as the first, one-request studies were keyed)."""
    return targets[0] if isinstance(targets, list) and len(targets) == 1 else targets


def _default_target(scenario: str, targets: list):
    return max(targets) if scenario == "random" else targets[0]


def study_space(cfg, method: str) -> dict:
    """The search space of ``method`` in ``cfg``'s tuning: its declarations' spaces, with the
    profile's narrower ranges (``tuning.space``) in their place."""
    from .hparams import search_space
    from .methods import get_method
    space = search_space(get_method(method).params)
    space.update(cfg.tuning_section()["space"].get(method, {}))
    fixed = set(cfg.hp.get(method, {}))  # a value the profile fixes is not searched
    return {k: v for k, v in space.items() if k not in fixed}


@dataclasses.dataclass
class TuningTask:
    """What every study of one scenario is measured on: a data set whose training part is
    the pool minus the validation split and whose evaluation part is that validation split,
    the original trained on it, the scenario's tuning requests, the retrained references'
    metrics and the caps (each retrained model's training seconds)."""

    data: object
    original: object
    requests: list
    references: list
    caps: list
    seed: int

    @property
    def cap_seconds(self) -> float:
        """The time a setting may take over all the task's requests (retraining's, summed)."""
        return float(sum(self.caps))

    def label(self) -> str:
        return ", ".join(r.label() for r in self.requests)

    def key(self) -> dict:
        return _task_key(self.data, self.requests, self.seed)


def tuning_data(cfg, data):
    """The tuning task's data set: the profile's training split (or a stratified ``pool`` of
    it), with a stratified ``validation`` fraction held out as its evaluation split. Its
    evaluation split is drawn from the training split: the test split is never read."""
    t = cfg.tuning_section()
    pool = data.subset(t["pool"], None, seed=t["seed"]) if t["pool"] else data
    task = pool.validation_split(t["validation"], seed=t["seed"])
    # the guard the protocol rests on: nothing of the real test split in the tuning task
    check(task.test_x.data_ptr() != data.test_x.data_ptr() and "/val" in task.name,
          "the tuning task would evaluate on the test split; it must use a validation split of the training data")
    return task


def task_inputs(cfg, data, scenario: str):
    """The tuning task's data set and requests for ``scenario`` (cheap: nothing is trained)."""
    from .requests import make_request
    t = cfg.tuning_section()
    task_data = tuning_data(cfg, data)
    targets = t["requests"][scenario]
    requests = [make_request(task_data, "random", fraction=target, seed=t["seed"]) if scenario == "random"
                else make_request(task_data, scenario, forget=target, seed=t["seed"])
                for target in (targets if isinstance(targets, list) else [targets])]
    return task_data, requests


def _task_key(task_data, requests, seed: int) -> dict:
    if len(requests) == 1:  # the key of a one-request task, as the first studies were keyed
        return dict(data=task_data.fingerprint(), request=requests[0].key(), seed=seed)
    return dict(data=task_data.fingerprint(), requests=[r.key() for r in requests], seed=seed)


def tuning_task(cfg, data, scenario: str, *, cache=None, device=None, progress=None, log=print) -> TuningTask:
    """The tuning task of ``scenario`` (see :class:`TuningTask`); models come from the cache."""
    from .methods import unlearn
    from .metrics import evaluate
    t = cfg.tuning_section()
    task_data, requests = task_inputs(cfg, data, scenario)
    references, caps, original = [], [], None
    for request in requests:
        original = cfg.original_model(task_data, t["seed"], request.level, cache=cache, device=device,
                                      progress=progress)
        retrained = unlearn("retrain", original, task_data, request, seed=t["seed"], cache=cache, device=device,
                            progress=progress)
        references.append(evaluate(retrained.model, task_data, request, max_retain=cfg.eval.get("max_retain"),
                                   seed=t["seed"], device=device))
        caps.append(float(retrained.seconds))
    task = TuningTask(task_data, original, requests, references, caps, t["seed"])
    log(f"[tune] {scenario} task: {task.label()} on {len(task_data.train_y)} training / "
        f"{len(task_data.test_y)} validation images; retraining takes {task.cap_seconds:.0f} s (the cap)")
    return task


def _suggest(trial, name: str, s):
    if s.scale == "choice":
        return trial.suggest_categorical(name, list(s.values))
    if s.integer:
        return trial.suggest_int(name, int(s.lo), int(s.hi), log=s.scale == "log")
    return trial.suggest_float(name, s.lo, s.hi, log=s.scale == "log")


def tuning_folder(cfg) -> Path:
    return cfg.results_folder() / "tuning"


def study_key(cfg, method: str, scenario: str) -> dict:
    """Everything in the profile that determines a study (its record is reused, and its
    chosen setting run, only under the same key; the tuning data's fingerprint is checked
    apart when the study runs)."""
    t = cfg.tuning_section()
    return dict(profile=cfg.name, dataset=cfg.dataset, subset=cfg.subset, model=cfg.model, train=cfg.train,
                eval=cfg.eval, pool=t["pool"], validation=t["validation"], seed=t["seed"],
                target=_key_target(t["requests"][scenario]), method=method, scenario=scenario,
                base=cfg.method_hp(method),
                space={k: dataclasses.asdict(v) for k, v in sorted(study_space(cfg, method).items())},
                trials=t["trials"], startup=_startup(t))


def _startup(t: dict) -> int:
    return t["startup"] if t["startup"] is not None else max(2, t["trials"] // 3)


def _open_storage(path: Path):
    """Optuna's SQLite storage at ``path``; a file that is not one is a one-line error."""
    import optuna
    if path.exists():
        head = path.read_bytes()[:16]
        check(head == b"SQLite format 3\x00" or not head,
              f"{path} is not an Optuna SQLite storage (damaged or another file); delete it to start the studies again")
    try:
        return optuna.storages.RDBStorage(f"sqlite:///{path}")
    except Exception as e:  # noqa: BLE001 - any failure to open the storage is the same user error
        raise MeguError(f"{path}: cannot open the tuning storage ({type(e).__name__}); "
                        "delete it to start the studies again") from None


def study_path(cfg, method: str, scenario: str) -> Path:
    """Where the committed record of ``method``'s study on ``scenario`` lies."""
    return tuning_folder(cfg) / f"{method}-{scenario}.json"


def read_studies(cfg, methods=None, scenarios=None, *, folder: Path | None = None) -> dict:
    """{(method, scenario): record or None when missing} for the profile's studies (or those
    of ``methods`` on ``scenarios``; from ``folder`` instead of the profile's tuning folder,
    e.g. a repeat's), each checked against the profile's current key: a damaged record, or
    one made for another tuning task, is a one-line error."""
    from .requests import config_hash
    t = cfg.tuning_section()
    return {(m, sc): read_study(study_path(cfg, m, sc) if folder is None else folder / study_path(cfg, m, sc).name,
                                config_hash(study_key(cfg, m, sc)))
            for sc in (scenarios or t["requests"]) for m in (methods or t["methods"])}


def read_study(path: Path, key_hash: str | None = None) -> dict | None:
    """A study's committed record (JSON), None when missing; damaged or made for another
    tuning task (``key_hash`` differs) is a one-line error."""
    import json
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
    except ValueError:
        rec = None
    check(isinstance(rec, dict) and isinstance(rec.get("trials"), list) and "key_hash" in rec,
          f"{path} is not a study record (damaged); delete it to run the study again")
    check(key_hash is None or rec["key_hash"] == key_hash,
          f"{path} was made for another tuning task (another profile, model, space or trial count); "
          "delete it to run the study again")
    return rec


def run_study(cfg, task: TuningTask, method: str, scenario: str, *, cache=None, device=None, progress=None,
              log=print) -> dict:
    """Run (or resume, or load) the study of ``method`` on ``scenario``'s tuning task.

    The study lives in ``<results>/<profile>/tuning/optuna.sqlite3`` (resumable); when it
    has its trials, its record is written as JSON next to it (committed: the trials, the
    chosen setting and its cost) and later calls load that. Returns the record."""
    import json
    import warnings

    import optuna

    from .cache import atomic_write_bytes
    from .methods import get_method, unlearn
    from .metrics import evaluate
    from .requests import config_hash
    t = cfg.tuning_section()
    folder = tuning_folder(cfg)
    key = study_key(cfg, method, scenario)
    key_hash = config_hash(key)
    record_path = study_path(cfg, method, scenario)
    rec = read_study(record_path, key_hash)
    check(rec is None or rec.get("task") == task.key(),
          f"{record_path} was made on other tuning data (the data set changed); delete it to run the study again")
    if rec is not None and sum(tr["state"] == "COMPLETE" for tr in rec["trials"]) >= t["trials"]:
        return rec
    folder.mkdir(parents=True, exist_ok=True)
    storage = _open_storage(folder / "optuna.sqlite3")
    name = f"{method}-{scenario}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = cfg.method_hp(method)
    space = study_space(cfg, method)
    spec = get_method(method)
    cap = task.cap_seconds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # a trial over the cap is infeasible (its constraint, seconds - cap, is > 0): TPE learns to avoid it
        sampler = optuna.samplers.TPESampler(seed=t["seed"], n_startup_trials=_startup(t))
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction="minimize",
                                    load_if_exists=True)
    stored = study.user_attrs.get("key_hash")
    check(stored in (None, key_hash), f"{folder / 'optuna.sqlite3'}: study {name!r} was made for another tuning "
          "task (another profile, model, space or trial count); delete the file to start the studies again")
    study.set_user_attr("key_hash", key_hash)
    for tr in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(tr._trial_id, optuna.trial.TrialState.FAIL)  # killed mid-trial
    done = sum(tr.state == optuna.trial.TrialState.COMPLETE for tr in study.get_trials(deepcopy=False))

    def objective(trial):
        hp = {**base, **{k: _suggest(trial, k, s) for k, s in space.items()}}
        spec.check_hp(hp, where=f"tune: {method}: ")
        seconds, all_metrics, all_gaps = 0.0, [], []
        for request, reference in zip(task.requests, task.references):
            result = unlearn(method, task.original, task.data, request, seed=task.seed, cache=cache, device=device,
                             progress=progress, **hp)
            metrics = evaluate(result.model, task.data, request, max_retain=cfg.eval.get("max_retain"),
                               seed=task.seed, device=device)
            seconds += float(result.seconds)
            all_metrics.append(metrics)
            all_gaps.append(gap_to_reference(metrics, reference))
        # the mean over the task's requests of each metric and gap
        metrics = {k: float(np.mean([m[k] for m in all_metrics])) for k in all_metrics[0]}
        gaps = {k: float(np.mean([g[k] for g in all_gaps])) for k in all_gaps[0]}
        trial.set_user_attr("seconds", seconds)
        trial.set_user_attr("over_cap", seconds - cap)
        trial.set_constraint("seconds_over_cap", seconds - cap)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("gaps", gaps)
        if len(all_gaps) > 1:
            trial.set_user_attr("request_gaps", [g["gap"] for g in all_gaps])
        log(f"[tune {name}] trial {trial.number + 1}/{t['trials']}: gap {gaps['gap']:.2f}, "
            f"{seconds:.1f} s{' (over the cap)' if seconds > cap else ''}")
        return gaps["gap"]

    if done < t["trials"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=t["trials"] - done, catch=(FloatingPointError,))
    rec = study_record(study, key, key_hash, cap, base, method, scenario, task)
    atomic_write_bytes(record_path, json.dumps(rec, indent=1, default=float).encode())
    return rec


def study_record(study, key: dict, key_hash: str, cap: float, base: dict, method: str, scenario: str,
                 task: TuningTask) -> dict:
    """A study as a JSON-able record: its trials, the chosen setting (the best trial within
    the cap; the method's defaults when none is) and what that setting costs."""
    import math
    trials = []
    for tr in study.get_trials(deepcopy=False):
        trials.append(dict(number=tr.number, state=tr.state.name, params=tr.params,
                           gap=tr.value if tr.value is not None and math.isfinite(tr.value) else None,
                           seconds=tr.user_attrs.get("seconds"), within_cap=tr.user_attrs.get("over_cap", 1.0) <= 0,
                           metrics=tr.user_attrs.get("metrics"), gaps=tr.user_attrs.get("gaps"),
                           **({"request_gaps": tr.user_attrs["request_gaps"]} if "request_gaps" in tr.user_attrs
                              else {})))
    ok = [tr for tr in trials if tr["state"] == "COMPLETE" and tr["gap"] is not None and tr["within_cap"]]
    best = min(ok, key=lambda tr: (tr["gap"], tr["number"])) if ok else None
    references = task.references[0] if len(task.references) == 1 else dict(zip(task.label().split(", "),
                                                                                 task.references))
    return dict(method=method, scenario=scenario, key_hash=key_hash, key=key, task=task.key(),
                request=task.label(),
                cap_seconds=cap, reference=references, base=base, trials=trials,
                best=best, chosen={**base, **(best["params"] if best else {})},
                note=None if best else "no trial finished within the cap: the method runs at its defaults")


def tune_profile(cfg, data, *, methods=None, scenarios=None, cache=None, device=None, progress=None,
                 log=print) -> dict:
    """Run every study of ``cfg``'s tuning (or those of ``methods`` / ``scenarios``); returns
    the chosen settings {method: {scenario: hp}} (also written to ``chosen.json``)."""
    import json

    from .cache import atomic_write_bytes
    from .training import resolve_device
    t = cfg.tuning_section()
    methods = list(methods or t["methods"])
    for m in methods:
        check(m in t["methods"], f"{cfg.where}: {m!r} is not among the tuned methods: {', '.join(t['methods'])}")
    scenarios = list(scenarios or t["requests"])
    for s in scenarios:
        check(s in t["requests"], f"{cfg.where}: no tuning request for scenario {s!r}")
    # before any work: damaged or foreign records and storage are one-line errors
    records = read_studies(cfg, methods, scenarios)
    if (tuning_folder(cfg) / "optuna.sqlite3").exists():
        _open_storage(tuning_folder(cfg) / "optuna.sqlite3")
    device = resolve_device(cfg.device if device is None else device)
    import time
    started, ran = time.perf_counter(), 0
    for scenario in scenarios:
        task = None
        task_key = _task_key(*task_inputs(cfg, data, scenario), t["seed"])
        for method in methods:
            rec = records[(method, scenario)]  # read (and checked) above
            done = rec is not None and sum(tr["state"] == "COMPLETE" for tr in rec["trials"]) >= t["trials"]
            if done and rec.get("task") == task_key:
                continue  # a finished study on the same data: nothing to train
            if task is None:
                task = tuning_task(cfg, data, scenario, cache=cache, device=device, progress=progress, log=log)
            rec = run_study(cfg, task, method, scenario, cache=cache, device=device, progress=progress, log=log)
            ran += 1
            b = rec["best"]
            log(f"[tune] {method} on {scenario}: " + (f"gap {b['gap']:.2f} in {b['seconds']:.1f} s (cap "
                                                       f"{rec['cap_seconds']:.0f} s)" if b else rec["note"]))
    if ran:
        from .experiments import append_run_log
        append_run_log(cfg.results_folder(), "tune", seconds=time.perf_counter() - started, studies=ran)
    chosen = chosen_settings(cfg)
    atomic_write_bytes(tuning_folder(cfg) / "chosen.json", json.dumps(chosen, indent=1, sort_keys=True).encode())
    return chosen


_READ = {}


def committed_study(cfg, method: str, scenario: str, *, replicate: str | None = None) -> dict:
    """The committed study record of ``method`` on ``scenario`` (checked against the profile's
    study key; read once per version of the file). With ``replicate``, that committed repeat's
    record (``tuning/replicates/<replicate>/``)."""
    path = study_path(cfg, method, scenario)
    if replicate is not None:
        path = replicates_folder(cfg) / replicate / path.name
        check(path.exists(), f"{cfg.where}: the repeat {replicate!r} of profile {cfg.name}'s studies has no study of "
              f"{method} on {scenario} ({path}); python benchmarks/clean_run.py {cfg.name} makes the repeat "
              "clean_run")
    check(path.exists(), f"{cfg.where}: {method} runs at its tuned setting but the study of {method} on {scenario} "
          f"is missing ({path}); run python -m megu_lib tune {cfg.name} (or set tuning.use: false)")
    from .requests import config_hash
    key_hash = config_hash(study_key(cfg, method, scenario))
    stamp = (str(path), path.stat().st_mtime_ns, key_hash)
    if stamp not in _READ:
        _READ[stamp] = read_study(path, key_hash)
    rec = _READ[stamp]
    check(len(rec["trials"]) > 0 and rec.get("chosen") is not None,
          f"{path}: the study has no trials; run python -m megu_lib tune {cfg.name}")
    return rec


def chosen_for(cfg, method: str, scenario: str, *, replicate: str | None = None) -> dict:
    """The setting ``method``'s study chose for ``scenario`` (from its committed record; the
    tuning request of the random scenario serves every random request). With ``replicate``,
    the choice of that committed repeat of the study (``tuning/replicates/<replicate>/``)."""
    return dict(committed_study(cfg, method, scenario, replicate=replicate)["chosen"])


def repeat_is_better(cfg, method: str, scenario: str, replicate: str) -> bool:
    """True when the repeat ``replicate`` of ``method``'s study on ``scenario`` found a lower best
    gap on the tuning task (validation split) than the profile's own study: of two searches of
    the same budget, the one whose choice a method runs at when it gets the better of the two.
    A study with no setting within the cap loses; the own study wins a tie."""
    own, rep = (committed_study(cfg, method, scenario, replicate=r)["best"] for r in (None, replicate))
    return rep is not None and (own is None or rep["gap"] < own["gap"])


def chosen_settings(cfg, *, required: bool = False) -> dict:
    """{method: {scenario: hp}} from the committed study records of ``cfg``'s tuning (a record
    made for another tuning task is an error, as in :func:`read_studies`)."""
    out = {}
    for (method, scenario), rec in read_studies(cfg).items():
        if rec is None:
            check(not required, f"{cfg.where}: the tuning study of {method} on {scenario} is missing under "
                  f"{tuning_folder(cfg)}; run python -m megu_lib tune {cfg.name}")
            continue
        out.setdefault(method, {})[scenario] = rec["chosen"]
    return out


def study_records(cfg, better=None) -> list[dict]:
    """The committed study records of ``cfg``'s tuning, by scenario then method (missing ones
    left out; one made for another tuning task is an error, as in :func:`read_studies`).

    With ``better`` (a ``tuned_from.where_better`` profile of ``cfg``, as
    :func:`megu_lib.experiments.verdict_records` returns it): the study each method runs at,
    its repeat's record where ``better`` runs it, marked ``search: <the repeat's name>``."""
    out = []
    for (method, scenario), rec in read_studies(cfg).items():
        if rec is not None and better is not None and better.at_repeat(method, scenario):
            replicate = better.tuned_from["replicate"]
            rec = {**committed_study(cfg, method, scenario, replicate=replicate), "search": replicate}
        if rec is not None:
            out.append(rec)
    return out


def trials_frame(records) -> pd.DataFrame:
    """Every trial of the study records as one row: method, scenario, trial number, state,
    gap, seconds, whether it stayed within the cap, the cap, and the sampled values."""
    rows = []
    for rec in records:
        for tr in rec["trials"]:
            rows.append(dict(method=rec["method"], scenario=rec["scenario"], trial=tr["number"] + 1,
                             state=tr["state"], gap=tr["gap"], seconds=tr["seconds"], within_cap=tr["within_cap"],
                             cap_seconds=rec["cap_seconds"], params=tr["params"]))
    return pd.DataFrame(rows)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def chosen_table(records, *, fixed=("judge",)) -> pd.DataFrame:
    """One row per study: the tuning request, trials run and within the cap, the best gap
    on the validation split (two decimals), its seconds against the cap (retraining's; one
    decimal), and the chosen
    values that differ from the method's defaults (``fixed`` keys shown always); and, when a
    record is a repeat's (:func:`study_records` with ``better``), which ``search`` it is."""
    from .methods import get_method
    rows = []
    for rec in records:
        defaults = get_method(rec["method"]).defaults
        best = rec["best"]
        within = sum(tr["within_cap"] and tr["state"] == "COMPLETE" for tr in rec["trials"])
        changed = {k: v for k, v in rec["chosen"].items() if k in fixed or defaults.get(k) != v}
        rows.append({"method": rec["method"], "scenario": rec["scenario"], "trials": len(rec["trials"]),
                     "within cap": within,
                     "best gap": round(best["gap"], 2) if best else float("nan"),
                     "seconds": round(best["seconds"], 1) if best else float("nan"),
                     "cap (s)": round(rec["cap_seconds"], 1),
                     "chosen": ", ".join(f"{k}={_short(v)}" for k, v in sorted(changed.items())) or "defaults",
                     "search": rec.get("search", "committed")})
    table = pd.DataFrame(rows)
    return table if (table.get("search", pd.Series(dtype=str)) != "committed").any() else table.drop(
        columns="search", errors="ignore")


def chosen_markdown(records) -> str:
    """The chosen settings as a list a reader can take in at page width: per method, per
    scenario, the values that differ from the method's defaults (the judge always), and
    where the setting is a repeat's search (:func:`study_records` with ``better``), its name."""
    table = chosen_table(records)
    lines = []
    for method, rows in table.groupby("method", sort=False):
        parts = [f"{r.scenario}: {r.chosen}" + (f" (repeat `{r.search}`)" if getattr(r, "search", "committed")
                                                 != "committed" else "") for r in rows.itertuples()]
        lines.append(f"- **`{method}`** — " + "; ".join(parts))
    return "\n".join(lines)


# --------------------------------------------------------------------------- replicates
# The same studies run again — the same key, another machine (CPU float rounding parts the
# trajectories after a few trials) or another run — and committed beside the profile's own,
# under tuning/replicates/<name>/: how much of a study's choice is the luck of its search?
REPLICATES = "replicates"


def replicates_folder(cfg) -> Path:
    return tuning_folder(cfg) / REPLICATES


def save_replicate(cfg, name: str, source: str | os.PathLike, about: dict) -> list[Path]:
    """Copy the finished study records of ``cfg`` found in the tuning folder ``source`` (another
    results folder's ``<profile>/tuning``) to ``tuning/replicates/<name>/``, with ``about``
    (where they come from) as ``about.json``; each record is checked against the profile's
    current study key first. Returns the copied paths (unfinished studies are left out)."""
    import json

    from .cache import atomic_write_bytes
    from .profile import NAME_PATTERN  # the names profiles and tuned_from.replicate accept
    check(isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None,
          f"replicate name must be letters, digits, '_', '-' or '.', got {name!r}")
    source = Path(source)
    check(source.is_dir(), f"{source}: no such tuning folder; pass <results>/{cfg.name}/tuning of the other run")
    trials = cfg.tuning_section()["trials"]
    folder = replicates_folder(cfg) / name
    copied = []
    for (method, scenario), rec in read_studies(cfg, folder=source).items():
        if rec is None or sum(tr["state"] == "COMPLETE" for tr in rec["trials"]) < trials:
            continue
        path = source / study_path(cfg, method, scenario).name
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / path.name, path.read_bytes())
        copied.append(folder / path.name)
    if copied:
        atomic_write_bytes(folder / "about.json", json.dumps(about, indent=1, sort_keys=True).encode())
    return copied


def replicate_records(cfg) -> dict:
    """The committed replicates of ``cfg``'s studies, by name, each with its records and ``about``.

    Returns ``{name: {"records": {(method, scenario): record}, "about": dict}}``; each record is
    checked against the profile's current study key, as :func:`read_studies` does."""
    import json
    out = {}
    root = replicates_folder(cfg)
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        recs = {key: rec for key, rec in read_studies(cfg, folder=folder).items() if rec is not None}
        if recs:
            about = folder / "about.json"
            recs_about = json.loads(about.read_text()) if about.exists() else {}
            out[folder.name] = dict(records=recs, about=recs_about)
    return out


def replicate_sources(replicates: dict, n_studies: int, *, used: str | None = None) -> str:
    """A Markdown sentence naming each committed replicate (:func:`replicate_records`): how many
    of the ``n_studies`` studies it holds, when it began and the training-throughput probe of its
    machine (``about.json``), and, where ``used`` names the replicate the verdicts' better search
    reads, that the others are shown for the spread alone. "" without a replicate."""
    if not replicates:
        return ""
    parts = []
    for name, rep in replicates.items():
        about = rep["about"]
        text = f"`{name}`: {len(rep['records'])} of {n_studies} studies"
        if about.get("started"):
            text += f", made from nothing, begun {str(about['started'])[:10]}"
        speeds = sorted({p["train_images_per_s"] for p in about.get("probes") or [] if "train_images_per_s" in p})
        if len(speeds) == 1:
            text += f" (training probe {speeds[0]:,} images/s)"
        elif speeds:
            text += f" (training probes {speeds[0]:,}–{speeds[-1]:,} images/s)"
        parts.append(text)
    out = "Repeats: " + "; ".join(parts) + "."
    others = [n for n in replicates if n != used]
    if used in replicates and others:
        out += (f" The verdicts' second search is `{used}`'s; {', '.join(f'`{n}`' for n in others)} "
                f"{'is' if len(others) == 1 else 'are'} shown here for the spread of the search alone.")
    return out


def replicate_table(records, replicates: dict, *, moved: float = 1.0,
                    focus: str = "megu") -> tuple[pd.DataFrame, str]:
    """The profile's studies beside their replicates, as a table and a text.

    Per study (scenario, method), the table has the best gap on the validation split in the
    committed study and in each replicate, and the largest difference. The text says, per
    scenario and replicate, which methods' best gaps moved by more than ``moved`` points (largest
    move first), whether the best method on the tuning task is the same, and how many pairs of
    methods the two runs order alike, and which methods the two runs place on different sides
    of ``focus`` (MeGU). ``replicates`` is what :func:`replicate_records` returns.
    Empty table and text when there is none."""
    if not replicates:
        return pd.DataFrame(), ""

    def best(rec):
        return rec["best"]["gap"] if rec and rec.get("best") else float("nan")

    own = {(r["method"], r["scenario"]): r for r in records}
    rows = []
    for (method, scenario), rec in own.items():
        row = {"scenario": scenario, "method": method, "committed": best(rec)}
        for name, rep in replicates.items():
            if (method, scenario) in rep["records"]:
                row[name] = best(rep["records"][(method, scenario)])
        rows.append(row)
    table = pd.DataFrame(rows)
    names = [n for n in replicates if n in table.columns]
    if not names:
        return pd.DataFrame(), ""
    table = table.dropna(subset=names, how="all")  # studies no replicate has yet
    gaps = table[["committed", *names]]
    table["largest difference"] = gaps.max(axis=1) - gaps.min(axis=1)
    from .tables import SCENARIO_ORDER  # class, subclass, random: the book's order
    rank = {s: i for i, s in enumerate(SCENARIO_ORDER)}
    table = table.sort_values(["scenario", "committed"], kind="stable",
                              key=lambda c: c.map(rank) if c.name == "scenario" else c).reset_index(drop=True)
    lines = []
    for name in names:
        for scenario, part in table.dropna(subset=[name]).groupby("scenario", sort=False):
            diff = part[name] - part["committed"]
            big = diff[diff.abs() > moved].abs().sort_values(ascending=False, kind="stable").index
            pairs = list(itertools.combinations(part.index, 2))
            alike = sum(np.sign(part.at[a, "committed"] - part.at[b, "committed"])
                        == np.sign(part.at[a, name] - part.at[b, name]) for a, b in pairs)
            first_c = part.loc[part["committed"].idxmin(), "method"]
            first_r = part.loc[part[name].idxmin(), "method"]
            same = (f"the best method on the tuning task is `{first_c}` in both" if first_c == first_r else
                    f"the best method on the tuning task is `{first_c}` in the committed studies and "
                    f"`{first_r}` in `{name}`")
            order = f"; {same}; the two runs order {alike} of {len(pairs)} pairs of methods alike" if pairs else ""
            if focus in set(part.method):
                f = part.index[part.method == focus][0]
                ahead = [part.at[i, "method"] for i in part.index if i != f
                         and part.at[i, "committed"] > part.at[f, "committed"] and part.at[i, name] < part.at[f, name]]
                behind = [part.at[i, "method"] for i in part.index if i != f
                          and part.at[i, "committed"] < part.at[f, "committed"] and part.at[i, name] > part.at[f, name]]
                names = lambda ms: ", ".join(f"`{m}`" for m in ms)  # noqa: E731
                if ahead:
                    order += f"; ahead of `{focus}` in `{name}` but behind it in the committed studies: {names(ahead)}"
                if behind:
                    order += f"; behind `{focus}` in `{name}` but ahead of it in the committed studies: {names(behind)}"
            n = len(part)
            unit = f"{moved:g} point{'s' if moved != 1 else ''}"
            moves = ", ".join(f"`{part.at[i, 'method']}` {part.at[i, 'committed']:.2f} → {part.at[i, name]:.2f}"
                              for i in big)
            lines.append(f"- **{scenario}** (`{name}`, {n} stud{'ies' if n > 1 else 'y'}): the best gap moved by more "
                         f"than {unit} for {len(big)} of {n} methods" + (f" ({moves})" if moves else "")
                         + f"{order}.")
    return table, "\n".join(lines)
