"""Profiles: what an experiment is, and every value that follows from it.

A profile (YAML in ``params/``, or any YAML path) names the data set, model, training
schedule, seeds, scenarios with their forget targets, methods, per-method hyperparameters
and the notebooks' options. :func:`load_config` checks all of it at load time — each
problem one line naming the file and the key, before any training — and returns an
:class:`ExperimentConfig`, the one owner of what the profile means:

* ``method_hp(method)`` / ``full_hp(method)``: a method's hyperparameters (the profile's
  ``judge`` given to every method that declares one);
* ``original_model(data, seed)``: the model every method of the profile starts from;
* ``results_folder()``, ``record_name(...)``, ``record_files(data)``: where the runner
  writes, and which records belong to the profile (a run on another data set gets a
  folder of its own, ``results/<name>@<data set>``);
* ``for_data(data)`` and ``forget_class(data)``: the one policy for forget targets — a
  target the data set lacks is an error naming its classes, unless the profile runs on
  another data set than its own, where the first suitable class is used and a note says so.

:func:`chapter_setup` and :func:`check_parameter` are the chapters' common start.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    import pandas as pd

from .errors import MeguError, check
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
    "notebook": "options of the notebooks (see NOTEBOOK_KEYS)",
    "tuning": "the tuning protocol: one Optuna study per method and scenario (see megu_lib.tuning.TUNING_KEYS)",
    "tuned_from": "run methods at a setting another profile's studies chose: {profile: P, methods: [...]}, with "
                  "method: M (each takes M's study, as MeGU's ablations take MeGU's; default: its own) and "
                  "replicate: R (a committed repeat's choice) and where_better: true (with replicate: run each "
                  "method only in the scenarios where the repeat found the lower best gap on the tuning task)",
    "privacy": "the per-example privacy run: shadow models on halves of a pool (see megu_lib.shadows.PRIVACY_KEYS)",
}
#: Every key the profile's ``notebook`` section may hold, and what it means.
NOTEBOOK_KEYS = {
    "forget_class": "the class the analysis chapters (00-04) forget; default: the class scenario's first target",
    "sensitivity": "MeGU's one-factor sensitivity sweep in the ablations chapter: {hyperparameter: [values]}",
    "ablations": "the profile whose records the ablations chapter shows (default: this one)",
    "better_search": "the profile that runs this grid again at a repeated study's choice where the repeat won "
                     "(tuned_from.where_better): once all its records are committed, the chapters' tables and "
                     "verdicts read every method at the better of its two searches",
}
REQUIRED = ("dataset", "model", "train", "seeds", "scenarios", "methods")
EVAL_KEYS = ("max_retain",)
DEVICE_PATTERN = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def results_dir() -> Path:
    # an empty MEGU_RESULTS_DIR counts as unset (else results would land in the working directory)
    return Path(os.environ.get("MEGU_RESULTS_DIR") or Path(__file__).resolve().parents[1] / "results").expanduser()


def shown_path(path) -> str:
    """``path`` relative to the working directory where it lies below it, else below the
    results folder as ``<results folder's name>/…`` (what a page shows says nothing of the
    machine it was built on)."""
    path = Path(path).resolve()
    for base, prefix in ((Path.cwd().resolve(), None), (results_dir().resolve(), results_dir().resolve().name)):
        try:
            rel = path.relative_to(base)
        except ValueError:
            continue
        return str(Path(prefix, rel) if prefix else rel)
    return str(path)


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
    tuning: dict | None = None
    tuned_from: dict | None = None
    privacy: dict | None = None
    description: str = ""
    path: str = ""
    profile_dataset: str = ""  # the data set the YAML names (``dataset`` may be overridden)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path")
        d.pop("profile_dataset")
        d.pop("privacy")  # its own records carry its own keys; the grid's hash stays as it was
        return d

    def hash(self) -> str:
        return config_hash(self.to_dict())

    # ----------------------------------------------------------------- what follows from it
    @property
    def own_data(self) -> bool:
        """True when the profile runs on the data set it names (not an override)."""
        return not self.profile_dataset or self.dataset == self.profile_dataset

    @property
    def where(self) -> str:
        """The profile's file name, for messages."""
        return Path(self.path).name if self.path else self.name

    def tuning_section(self) -> dict:
        """The ``tuning:`` section with its defaults (:data:`megu_lib.tuning.TUNING_DEFAULTS`);
        an error when the profile has none."""
        check(self.tuning is not None, f"{self.where}: the profile has no tuning section")
        from .tuning import check_tuning_section
        return check_tuning_section(self.tuning, self.where, methods=self.methods, scenarios=self.scenarios)

    def tuned(self, method: str) -> bool:
        """True when ``method`` runs at the setting its tuning study chose."""
        if self.tuning is None:
            return False
        t = self.tuning_section()
        return t["use"] and method in t["methods"]

    def method_hp(self, method: str, scenario: str | None = None) -> dict:
        """The profile's overrides for ``method`` (its ``hp:`` entry), with the profile's
        ``judge`` for a method that declares a ``judge`` hyperparameter and was given none.
        With ``scenario``, a tuned method (:meth:`tuned`) gets the setting its study chose for
        that scenario (:func:`megu_lib.tuning.chosen_for`; missing: an error naming the command)."""
        from .methods import get_method
        hp = dict(self.hp.get(method, {}))
        if "judge" in get_method(method).params:
            hp.setdefault("judge", self.judge)
        if scenario is not None and self.tuned(method):
            from .tuning import chosen_for
            hp.update(chosen_for(self, method, scenario))
        elif scenario is not None and self.tuned_from and method in self.tuned_from["methods"]:
            from .tuning import chosen_for
            source = _source_config(self.tuned_from["profile"])
            fixed = _fixed_values(method)  # what makes an ablation an ablation stays
            # the named method's study (an ablation takes MeGU's), else each method's own
            chosen = chosen_for(source, self.tuned_from.get("method") or method, scenario,
                                replicate=self.tuned_from.get("replicate"))
            params = get_method(method).params
            hp.update({k: v for k, v in chosen.items() if k in params and k not in fixed})
        return hp

    def runs(self, method: str, scenario: str) -> bool:
        """Whether the profile runs ``method`` in ``scenario``: always, except for a method of a
        ``tuned_from`` with ``where_better: true`` in a scenario where the source profile's own
        study found the lower best gap on the tuning task (its committed records stand there;
        :func:`megu_lib.tuning.repeat_is_better`)."""
        tf = self.tuned_from
        if not (tf and tf.get("where_better") and method in tf["methods"]):
            return True
        from .tuning import repeat_is_better
        return repeat_is_better(_source_config(tf["profile"]), tf.get("method") or method, scenario,
                                tf["replicate"])

    def at_repeat(self, method: str, scenario: str) -> bool:
        """Whether this ``tuned_from.where_better`` profile runs ``method`` in ``scenario`` at the
        repeated study's choice (its repeat won there; :meth:`runs`); False for a method it
        does not take from the source profile, or a profile of another kind."""
        tf = self.tuned_from
        return bool(tf and tf.get("where_better") and method in tf["methods"] and scenario in self.scenarios
                    and self.runs(method, scenario))

    def jobs(self, data) -> list:
        """Every (seed, request, method) the profile runs on ``data`` (:meth:`runs`), in the
        runner's order: the one list the runner, the record names and the chapters share."""
        return [(seed, request, method) for seed, request in self.originals(data)
                for method in self.methods if self.runs(method, request.scenario)]

    def originals(self, data) -> list:
        """Every (seed, request) whose original model gets a record of its own (the do-nothing
        row of the tables): the one list the runner and the record names share, beside
        :meth:`jobs`."""
        return [(seed, request) for seed in self.seeds for request in build_requests(self, data, seed)]

    def full_hp(self, method: str, scenario: str | None = None) -> dict:
        """Every hyperparameter of ``method`` as the profile runs it (defaults filled in)."""
        from .methods import get_method
        return {**get_method(method).defaults, **self.method_hp(method, scenario)}

    def exemplar_needs(self, methods=None, scenario: str | None = None) -> dict:
        """{method: images per class its judge draws} for the methods (default: the profile's)
        that declare ``n_exemplars`` (MeGU and its variants), as the profile runs them; the
        callers check their data holds that many of every class before any work."""
        needs = {m: self.full_hp(m, scenario).get("n_exemplars") for m in (methods or self.methods)}
        return {m: n for m, n in needs.items() if isinstance(n, int)}

    def check_exemplars(self, labels: dict, names, *, where: str, fix: str, methods=None,
                        scenario: str | None = None) -> None:
        """A one-line error when a judge (:meth:`exemplar_needs`) would draw more images of a
        class than one of the sets in ``labels`` ({what the set is: its integer labels}) holds;
        ``names``: the class names, ``where`` starts the message, ``fix`` precedes the
        suggested smaller ``n_exemplars``."""
        import numpy as np
        needs = self.exemplar_needs(methods, scenario)
        if not needs:
            return
        counts = {holder: np.bincount(np.asarray(y), minlength=len(names)) for holder, y in labels.items()}
        holder = min(counts, key=lambda h: counts[h].min())
        cls = int(counts[holder].argmin())
        fewest = int(counts[holder][cls])
        for m, n in needs.items():
            check(n <= fewest, f"{where}: {m} draws n_exemplars={n} images per class but {holder} holds only "
                  f"{fewest} of {names[cls]!r}; {fix}hp.{m}.n_exemplars <= {fewest}")

    def run_key(self, data, request, method: str, seed: int) -> dict:
        """Everything that determines one record (its file name is this key's hash)."""
        return dict(data=data.fingerprint(), model=self.model, train=self.train, request=request.key(),
                    method=method, hp=self.full_hp(method, request.scenario), seed=seed, eval=self.eval)

    def record_name(self, data, request, method: str, seed: int) -> str:
        """The file name of a record; ``method="original"`` names the original model's record."""
        if method == "original":
            return f"original-{config_hash(dict(self.run_key(data, request, 'retrain', seed), method='original'))}.json"
        return f"{config_hash(self.run_key(data, request, method, seed))}.json"

    def record_files(self, data) -> list[str]:
        """The file names of every record the profile's run writes on ``data`` (methods and
        originals): the records that belong to the profile, for the chapters, the CLI and the
        tables alike."""
        originals = [(seed, request, "original") for seed, request in self.originals(data)]
        return [self.record_name(data, request, method, seed) for seed, request, method in self.jobs(data) + originals]

    def results_folder(self) -> Path:
        """``results/<name>`` on the profile's own data set; ``results/<name>@<data set>``
        when it runs on another one, so that two data sets never share a folder."""
        name = self.name if self.own_data else f"{self.name}@{dataset_slug(self.dataset)}"
        return results_dir() / name

    def records_folder(self, out_dir=None) -> Path:
        return (Path(out_dir) if out_dir is not None else self.results_folder()) / "records"

    def original_model(self, data, seed: int, level: str | None = None, *, cache=None, device=None, progress=None):
        """The model every method of the profile starts from, for ``seed`` at label ``level``
        (trained once, then from the cache)."""
        from .checkpoints import fit_model
        from .training import train_config
        options = {k: v for k, v in self.model.items() if k != "arch"}
        return fit_model(data, arch=self.model["arch"], train=train_config(dict(self.train)), seed=seed,
                         level=level or data.label_level, cache=cache,
                         device=self.device if device is None else device, progress=progress, **options)

    def for_data(self, data) -> tuple["ExperimentConfig", list[str]]:
        """The profile with forget targets ``data`` has, and notes on what changed.

        On the profile's own data set a target the data lacks is an error naming its
        classes. On another data set (``--dataset``, ``make book DATASET=...``) such a target
        is replaced by the data set's first class (first fine class with siblings, for the
        subclass scenario), and the subclass scenario is dropped when the data has no coarse
        labels; each change is a note."""
        notes, scenarios = [], {}
        for scenario, spec in self.scenarios.items():
            if scenario == "random":
                scenarios[scenario] = spec
                continue
            if scenario == "subclass" and not data.has_coarse:
                check(not self.own_data, f"{self.where}: scenarios.subclass: {data.name} has no coarse labels")
                notes.append(f"subclass scenario left out: {data.name} has no coarse labels")
                continue
            keep = []
            for target in spec["forget"]:
                if self._has_target(data, scenario, target):
                    keep.append(target)
                    continue
                check(not self.own_data, f"{self.where}: scenarios.{scenario}.forget: {target!r} is not a class of "
                      f"{data.name}; its classes: {', '.join(map(str, data.class_names()))}")
                notes.append(f"{scenario} scenario: {target!r} is not a class of {data.name}")
            if not keep:
                fallback = _fallback_target(data, scenario)
                if fallback is None:
                    notes.append(f"{scenario} scenario left out: no class of {data.name} can be forgotten that way")
                    continue
                keep = [fallback]
                notes.append(f"{scenario} scenario: forgetting {fallback!r} instead (the data set's first such class)")
            scenarios[scenario] = {**spec, "forget": keep}
        check(scenarios, f"no scenario of profile {self.name!r} applies to data set {data.name}")
        train = dict(self.train)
        if not self.own_data and not train.get("min_steps"):
            steps = self.own_steps()
            if steps:
                train["min_steps"] = steps
                notes.append(f"training: at least {steps} optimiser steps, as many as the profile's schedule makes "
                             f"on its own data ({self.profile_dataset}), however small {data.name} is")
        return dataclasses.replace(self, scenarios=scenarios, train=train), notes

    def own_steps(self) -> int:
        """Optimiser steps the profile's schedule makes on its own data set (0 when that data
        set cannot be loaded): what a run on another data set keeps, as ``min_steps``."""
        import math

        from .training import train_config
        cfg = train_config(dict(self.train))
        n = (self.subset or {}).get("train")
        if not n:
            try:
                from .data import load_dataset
                n = len(load_dataset(self.profile_dataset).train_y)
            except MeguError:
                return 0
        return max(cfg.min_steps, math.ceil(cfg.epochs * math.ceil(n / cfg.batch_size)))

    def forget_class(self, data, requested: str | None = None) -> tuple[str, str | None]:
        """The class the analysis chapters forget, and a note when it was substituted.

        ``requested`` (a notebook parameter) wins and must exist; else the profile's
        ``notebook.forget_class``, else the class scenario's first target, else the data
        set's first class. A named class ``data`` lacks is an error naming its classes —
        unless the profile runs on another data set than its own, where the first class is
        used and the note says so."""
        names = [str(c) for c in data.class_names()]
        if requested is not None:
            check(str(requested) in names, f"forget class {requested!r} is not a class of {data.name}; "
                  f"its classes: {', '.join(names)}")
            return str(requested), None
        if "forget_class" in self.notebook:
            name, key = self.notebook["forget_class"], "notebook.forget_class"
        elif "class" in self.scenarios:
            name, key = self.scenarios["class"]["forget"][0], "scenarios.class.forget"
        else:
            return names[0], f"the profile names no class to forget: the chapters forget {names[0]!r}"
        if str(name) in names:
            return str(name), None
        check(not self.own_data, f"{self.where}: {key}: {name!r} is not a class of {data.name}; "
              f"its classes: {', '.join(names)}")
        return names[0], f"{name!r} is not a class of {data.name}: the chapters forget {names[0]!r} instead"

    @staticmethod
    def _has_target(data, scenario: str, target) -> bool:
        try:
            make_request(data, scenario, forget=target)
            return True
        except MeguError:
            return False


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
    from .judges import list_judges
    from .methods import list_methods

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
    own_dataset = raw.get("dataset")
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
    check(model["arch"] in ARCHITECTURES,
          f"{where}: unknown model {model['arch']!r}; use one of {', '.join(ARCHITECTURES)}")
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
        check(isinstance(values, dict), f"{where}: hp.{m} must be a mapping of hyperparameters, got {values!r}")
        get_method(m).check_hp(values, where=f"{where}: hp.{m}.")
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
    _check_notebook_section(notebook, where, scen)
    tuned_from = raw.get("tuned_from")
    if tuned_from is not None:
        check(isinstance(tuned_from, dict) and {"profile", "methods"} <= set(tuned_from)
              <= {"profile", "method", "methods", "replicate", "where_better"},
              f"{where}: tuned_from must be {{profile: <name>, methods: [...]}}, optionally with method: <the tuned "
              f"method whose study every one of them takes; default: each its own> and replicate: <a committed "
              f"repeat of the studies> and where_better: <true: only where the repeat's study is the better>, "
              f"got {tuned_from!r}")
        check(isinstance(tuned_from["methods"], list) and all(m in methods for m in tuned_from["methods"]),
              f"{where}: tuned_from.methods must list methods of the profile, got {tuned_from['methods']!r}")
        check(tuned_from.get("method") is None or tuned_from["method"] in known,
              f"{where}: tuned_from.method: unknown method {tuned_from.get('method')!r}")
        check(tuned_from.get("replicate") is None or (isinstance(tuned_from["replicate"], str)
                                                      and NAME_PATTERN.fullmatch(tuned_from["replicate"])),
              f"{where}: tuned_from.replicate must be the name of a folder under tuning/replicates/, "
              f"got {tuned_from.get('replicate')!r}")
        check(tuned_from.get("where_better") in (None, True, False)
              and (not tuned_from.get("where_better") or tuned_from.get("replicate") is not None),
              f"{where}: tuned_from.where_better must be true or false, and true only with replicate: <a committed "
              f"repeat> (the studies it compares with the source profile's own), got {tuned_from!r}")
        check(config_path(tuned_from["profile"]).is_file(),
              f"{where}: tuned_from.profile: unknown profile {tuned_from['profile']!r}")
    tuning = raw.get("tuning")
    if tuning is not None:
        from .tuning import check_tuning_section
        check_tuning_section(tuning, where, methods=methods, scenarios=scen)
    privacy = raw.get("privacy")
    if privacy is not None:
        from .shadows import check_privacy_section
        check_privacy_section(privacy, where, methods=methods)
    return ExperimentConfig(name=name, dataset=raw["dataset"], model=model, train=train,
                            seeds=seeds, scenarios=scen, methods=methods, subset=subset,
                            device=device, judge=judge, eval=ev, hp=hp,
                            notebook=notebook, tuning=tuning, tuned_from=tuned_from, privacy=privacy,
                            description=raw.get("description", ""),
                            path=str(path),
                            profile_dataset=str(own_dataset))


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




_SOURCES: dict = {}


def _source_config(name: str) -> "ExperimentConfig":
    """The profile a ``tuned_from`` names, loaded once per version of its file (record names
    ask for it once per run)."""
    path = config_path(name)
    stamp = (str(path), path.stat().st_mtime_ns if path.exists() else None)
    if stamp not in _SOURCES:
        _SOURCES[stamp] = load_config(name)
    return _SOURCES[stamp]


def _fixed_values(method: str) -> dict:
    """The hyperparameters a MeGU variant fixes (what makes it that variant); {} otherwise."""
    from .methods import get_method
    get_method(method)  # registers the variants
    from .methods.megu import VARIANTS
    return VARIANTS.get(method, {})


def _check_notebook_section(notebook: dict, where: str, scenarios: dict) -> None:
    """The ``notebook:`` section's schema: known keys, each of its type."""
    for key in notebook:
        check(key in NOTEBOOK_KEYS, f"{where}: notebook has unknown key {key!r}; known keys: "
              f"{', '.join(NOTEBOOK_KEYS)}")
    for key in ("ablations", "better_search"):
        named = notebook.get(key)
        check(named is None or isinstance(named, str) and config_path(named).is_file(),
              f"{where}: notebook.{key} must name a profile, got {named!r}")
    fc = notebook.get("forget_class")
    check(fc is None or isinstance(fc, (str, int)) and not isinstance(fc, bool),
          f"{where}: notebook.forget_class must be a class name, got {fc!r}")
    if "sensitivity" in notebook:
        from .tuning import check_sensitivity_axes
        check_sensitivity_axes(notebook["sensitivity"], f"{where}: notebook.sensitivity")


def dataset_slug(dataset: str) -> str:
    """A folder-name-safe name for a data set: its name, or an image folder's name and a
    short hash of its absolute path."""
    text = str(dataset)
    if re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        return text
    path = Path(text).expanduser().resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', path.name) or 'data'}-{digest}"


def _fallback_target(data, scenario: str):
    if scenario == "class":
        return data.class_names()[0]
    coarse = data.coarse_of_fine()
    for i, name in enumerate(data.classes):
        if int((coarse == coarse[i]).sum()) > 1:
            return name
    return None


# --------------------------------------------------------------------------- the chapters' start
def chapter_setup(profile: str = "default", *, dataset=None, device=None, seed=None, forget_class=None, log=print):
    """The common start of the analysis chapters (00–04): the profile, its data, the seed
    (the profile's first when None), a class request for the forget class
    (:meth:`ExperimentConfig.forget_class`; a substitution is logged) and the profile's
    original model for that seed. Returns a namespace with ``cfg, seed, data, request,
    forget_name, forget_index, original``."""
    from types import SimpleNamespace

    from .training import seed_everything
    cfg = load_config(profile, dataset=dataset, device=device)
    seed = cfg.seeds[0] if seed is None else seed
    seed_everything(seed)
    data = load_data(cfg)
    cfg, notes = cfg.for_data(data)  # the same schedule as the runner's (min_steps on other data)
    for n in notes:
        if n.startswith("training:"):
            log(f"note: {n}")
    name, note = cfg.forget_class(data, forget_class)
    if note:
        log(f"note: {note}")
    request = make_request(data, "class", forget=name)
    original = cfg.original_model(data, seed)
    from .metrics import accuracy, chance_note
    from .training import predict_logits
    warning = chance_note(accuracy(predict_logits(original, data.test_x), data.test_y), data.num_classes())
    if warning:
        log(f"WARNING: {warning}")
    return SimpleNamespace(cfg=cfg, seed=seed, data=data, request=request, forget_name=request.forget[0],
                           forget_index=int(request.forget_classes[0]), original=original, warning=warning)


def records_setup(profile: str = "default", *, dataset=None, device=None, run: bool = True, log=print):
    """The common start of the result chapters (05–07): the profile fitted to its data
    (:meth:`ExperimentConfig.for_data`), the data, and its records
    (:func:`megu_lib.experiments.profile_records`, running what is missing when ``run``);
    logs what the records are (:func:`describe`). Returns ``(cfg, data, records)``."""
    from .experiments import profile_records
    cfg = load_config(profile, dataset=dataset, device=device)
    data = load_data(cfg)
    cfg, notes = cfg.for_data(data)
    df = profile_records(cfg, data, run=run, log=log)
    from .tables import original_chance_note
    warning = original_chance_note(df)
    if warning:
        log(f"WARNING: {warning}")
    log(describe(cfg, data, df, notes))
    return cfg, data, df

def describe(cfg: ExperimentConfig, data, df: pd.DataFrame, notes=()) -> str:
    """Two lines on what the records are, plus the notes of :meth:`ExperimentConfig.for_data`."""
    skipped = [(s, m) for s in cfg.scenarios for m in cfg.methods if not cfg.runs(m, s)]
    lines = [f"profile {cfg.name!r}: {data.name}, {cfg.model['arch']}, seeds {cfg.seeds}",
             f"{len(df)} records: {df.request.nunique()} request(s) x {len(cfg.seeds)} seed(s) x "
             f"({'up to ' if skipped else ''}{len(cfg.methods)} methods + the original model)"]
    if skipped:  # where_better: the source profile's own study was the better there
        lines.append("not run (the source profile's own study is the better there): "
                     + ", ".join(f"{m} in {s}" for s, m in skipped))
    return "\n".join(lines + [f"note: {n}" for n in notes])


def check_parameter(name: str, value, kinds, what: str) -> None:
    """Stop a notebook at its first cell with one line when a papermill parameter has the
    wrong type (``kinds``: a type or tuple of types; bools are never numbers)."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    check(ok, f"parameter {name} must be {what}, got {value!r}")
