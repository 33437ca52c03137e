"""Per-example privacy on a profile: the shadow models :mod:`megu_lib.privacy` plans,
trained, cached and recorded, and the per-method summary the book shows.

A profile's ``privacy:`` section (:data:`PRIVACY_KEYS`) names a *pool* of the training
split, how many shadow models to train on random halves of it, and how many of each
shadow's members it forgets (random forgetting: per-example privacy is the question there).
For every shadow, :func:`run_privacy` trains the shadow original (from the cache when it
exists), retrains a reference without its forget set, and runs every method of the section
on the same request, at the setting the profile runs it with (a tuned method at its study's
choice for the random scenario). Two anchors run beside them: ``original`` (no unlearning:
the attack should find it) and ``retrain`` (a second retraining with another seed: the
attack should not tell it from the reference). Each (shadow, method) is one JSON record
under ``results/<profile>/privacy/records``, holding the model's logit-scaled confidence on
every target and its accuracies; a run that is stopped and started again skips them.

:func:`privacy_results` reads the records back into the layout of
:mod:`megu_lib.privacy`, and :func:`privacy_table` gives per method U-LiRA's AUC and TPR
at low FPR on the held-out shadows, the competition's forget quality and score, and what
the numbers rest on.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import check

#: The keys of a profile's ``privacy:`` section, and what each means.
PRIVACY_KEYS = {
    "pool": "training images (a stratified subset of the training split) the shadows train on halves of",
    "shadows": "shadow originals (even: they come in complementary twins)",
    "forget_size": "examples each shadow forgets (random forgetting), drawn from its own members",
    "seed": "seed of the pool, the plan and the shadows' training",
    "methods": "the methods attacked (default: the profile's, retrain aside); the anchors always run",
    "eval_size": "test and retain images each model's accuracies are measured on",
    "fprs": "false-positive rates the attack's TPR is reported at",
    "train": "changes to the profile's training schedule for the shadows (default none: the profile's recipe)",
    "variants": "further settings, each a name and changes to the keys above (e.g. a longer schedule under "
                "which the shadow originals memorise their images); each runs and is shown beside the first",
}
PRIVACY_DEFAULTS = dict(pool=10000, shadows=32, forget_size=125, seed=0, methods=None, eval_size=1000,
                        fprs=[0.01, 0.001], train={}, variants={})
#: The two ends of the scale, run for every shadow (no unlearning, and a second retraining).
ANCHORS = ("original", "retrain")
#: The retrained model every other model is compared with (recorded per shadow like a method).
REFERENCE = "reference"
#: Seed offset of the anchor retraining (another initialisation and batch order than the reference's).
ANCHOR_SEED_OFFSET = 10_000
#: The scenario whose tuned settings the methods run at.
SCENARIO = "random"


def check_privacy_section(section, where: str, *, methods: list, _name: str = "privacy") -> dict:
    """The profile's ``privacy:`` section with its defaults filled in; every problem one line
    naming ``where`` and the key, before any work (too few shadows for the FPRs included).
    Each variant is checked the same way, as the section with its changes."""
    from .privacy import shadow_plan
    check(isinstance(section, dict), f"{where}: {_name} must be a mapping (keys: {', '.join(PRIVACY_KEYS)}), "
          f"got {section!r}")
    for key in section:
        check(key in PRIVACY_KEYS, f"{where}: {_name} has unknown key {key!r}; known keys: {', '.join(PRIVACY_KEYS)}")
    p = {**PRIVACY_DEFAULTS, **section}
    variants = p.pop("variants")
    check(isinstance(variants, dict) and (_name == "privacy" or not variants),
          f"{where}: {_name}.variants must map a name to changes of the section (and variants have none), "
          f"got {variants!r}")
    _int = lambda v, lo: isinstance(v, int) and not isinstance(v, bool) and v >= lo  # noqa: E731
    for key, lo in (("pool", 4), ("shadows", 2), ("forget_size", 1), ("seed", 0), ("eval_size", 10)):
        check(_int(p[key], lo), f"{where}: {_name}.{key} must be an int >= {lo}, got {p[key]!r}")
    fprs = p["fprs"] if isinstance(p["fprs"], list) else [p["fprs"]]
    check(all(isinstance(a, (int, float)) and not isinstance(a, bool) and 0 < a < 1 for a in fprs) and fprs,
          f"{where}: {_name}.fprs must list false-positive rates in (0, 1), got {p['fprs']!r}")
    p["fprs"] = [float(a) for a in fprs]
    chosen = p["methods"] if p["methods"] is not None else [m for m in methods if m != "retrain"]
    check(isinstance(chosen, list) and chosen, f"{where}: {_name}.methods must be a non-empty list, got {chosen!r}")
    for m in chosen:
        check(m in methods and m != "retrain",
              f"{where}: {_name}.methods: {m!r} is not a method of the profile (retrain is the reference and an "
              "anchor; it always runs)")
    p["methods"] = list(chosen)
    from .errors import MeguError
    from .training import train_config
    check(isinstance(p["train"], dict),
          f"{where}: {_name}.train must map schedule fields to values, got {p['train']!r}")
    try:
        train_config(dict(p["train"]))
    except MeguError as e:
        raise MeguError(f"{where}: {_name}.train: {e}") from None
    try:  # sizes: a pool too small for the forget sets, too few shadows for the FPRs
        shadow_plan(p["pool"], p["shadows"], p["forget_size"], seed=p["seed"], fprs=p["fprs"])
    except MeguError as e:
        raise MeguError(f"{where}: {_name}: {e}") from None
    checked = {}
    for name, changes in variants.items():
        check(isinstance(name, str) and name.isidentifier(),
              f"{where}: privacy.variants: {name!r} is not a usable name (letters, digits and _)")
        check(isinstance(changes, dict) and changes,
              f"{where}: privacy.variants.{name} must map keys of the section to new values, got {changes!r}")
        base = {k: v for k, v in section.items() if k != "variants"}
        checked[name] = check_privacy_section({**base, **changes}, where, methods=methods,
                                              _name=f"privacy.variants.{name}")
    p["variants"] = checked
    return p


@dataclasses.dataclass
class PrivacySetup:
    """What every shadow of a profile shares: the section (defaults filled in), the pool
    (a data set whose training part is the pool, test part the profile's test split) and
    the plan."""

    section: dict
    pool: object
    plan: object
    variant: str | None = None

    def key(self) -> dict:
        s = self.section
        return dict(pool=self.pool.fingerprint(), shadows=s["shadows"], forget_size=s["forget_size"], seed=s["seed"])

    def shadow(self, index: int):
        """Shadow ``index``'s data set (training part: its members; the test part stays) and
        its request (its forget set, as positions in that training part)."""
        from .requests import Request
        plan = self.plan
        check(0 <= index < plan.n_shadows, f"shadow {index} is out of range 0..{plan.n_shadows - 1}")
        members = plan.member_indices(index)
        pool = self.pool
        data = dataclasses.replace(
            pool, name=f"{pool.name}/shadow{index}of{plan.n_shadows}s{self.section['seed']}",
            train_x=pool.train_x[members], train_y=pool.train_y[members],
            coarse_train=None if pool.coarse_train is None else pool.coarse_train[members])
        import torch
        forget = torch.from_numpy(np.searchsorted(members, plan.forget_indices(index)).astype(np.int64))
        mask = torch.zeros(len(members), dtype=torch.bool)
        mask[forget] = True
        request = Request("random", (plan.forget_size,), data.label_level, (), forget.sort().values,
                          (~mask).nonzero().squeeze(1), None, data.fingerprint(), self.shadow_seed(index))
        return data, request

    def shadow_seed(self, index: int) -> int:
        return self.section["seed"] * 1000 + index

    def shadow_config(self, cfg):
        """``cfg`` as its shadows train: its training schedule with the section's ``train``
        changes (none by default)."""
        changes = self.section["train"]
        return dataclasses.replace(cfg, train={**cfg.train, **changes}) if changes else cfg

    def target_data(self):
        """(x, y) of the targets, in the plan's column order."""
        import torch
        t = self.plan.targets
        t = torch.from_numpy(np.array(t))
        return self.pool.train_x[t], self.pool.train_y[t]


def privacy_variants(cfg) -> list:
    """The names of the profile's privacy variants (none without a privacy section)."""
    if getattr(cfg, "privacy", None) is None:
        return []
    return list(check_privacy_section(cfg.privacy, cfg.where, methods=cfg.methods)["variants"])


def privacy_setup(cfg, data, variant: str | None = None) -> PrivacySetup:
    """The profile's pool and plan (cheap: nothing is trained), for its privacy section or
    for one of its ``variants``. The pool is a stratified subset of the training split; its
    test part is the profile's test split."""
    from .privacy import shadow_plan
    check(getattr(cfg, "privacy", None) is not None,
          f"{cfg.where}: the profile has no privacy section; add one (keys: {', '.join(PRIVACY_KEYS)})")
    s = check_privacy_section(cfg.privacy, cfg.where, methods=cfg.methods)
    if variant is not None:
        check(variant in s["variants"], f"{cfg.where}: the privacy section has no variant {variant!r}; "
              f"its variants: {', '.join(s['variants']) or 'none'}")
        s = s["variants"][variant]
    check(s["pool"] <= len(data.train_y),
          f"{cfg.where}: privacy.pool is {s['pool']} but {data.name} has {len(data.train_y)} training images; "
          "use a smaller pool")
    pool = data.subset(s["pool"], None, seed=s["seed"])
    plan = shadow_plan(s["pool"], s["shadows"], s["forget_size"], seed=s["seed"], fprs=s["fprs"])
    return PrivacySetup(s, pool, plan, variant)


def privacy_folder(cfg) -> Path:
    return cfg.results_folder() / "privacy"


def _record_name(cfg, setup: PrivacySetup, index: int, method: str) -> str:
    """The record's file name; ``cfg`` is the profile's config (its methods' settings come from
    the profile's own studies), the training schedule the shadows'."""
    from .requests import config_hash
    hp = {} if method in (REFERENCE, *ANCHORS) else cfg.full_hp(method, SCENARIO)
    key = dict(setup.key(), shadow=index, method=method, hp=hp, model=cfg.model,
               train=setup.shadow_config(cfg).train,
               eval_size=setup.section["eval_size"])
    return f"{method}-{index:03d}-{config_hash(key)}.json"


def _measure(model, setup: PrivacySetup, data, request, device) -> dict:
    """A model's confidence on every target and its accuracies (test and retain subsets)."""
    from .metrics import accuracy
    from .privacy import logit_confidence
    from .training import predict_logits
    n = setup.section["eval_size"]
    tx, ty = setup.target_data()
    conf = logit_confidence(predict_logits(model, tx, device=device), ty)
    g = np.random.default_rng(setup.section["seed"])
    test = np.sort(g.choice(len(data.test_y), min(n, len(data.test_y)), replace=False))
    retain = request.retain_idx.numpy()
    retain = np.sort(g.choice(retain, min(n, len(retain)), replace=False))
    return dict(confidence=[round(float(c), 5) for c in conf],
                test_acc=accuracy(predict_logits(model, data.test_x[test], device=device), data.test_y[test]),
                retain_acc=accuracy(predict_logits(model, data.train_x[retain], device=device),
                                    data.train_y[retain]))


def run_privacy(cfg, *, data=None, variant: str | None = None, cache=None, device=None, progress=None,
                log=print) -> Path:
    """Train every shadow of the profile's ``privacy:`` section (or of its ``variant``) and
    record each model (:mod:`megu_lib.shadows`); returns the records folder. Resumable:
    existing records are kept. Every check (the section, the plan, the methods' settings)
    runs before any training."""
    from .cache import atomic_write_bytes, check_writable, remove_stale_temp_files
    from .experiments import _environment, _now, append_run_log
    from .methods import unlearn
    from .profile import load_data, shown_path
    from .training import progress_bar, resolve_device, seed_everything
    data = load_data(cfg) if data is None else data
    setup = privacy_setup(cfg, data, variant)
    s = setup.section
    # the methods' settings are the profile's (its studies were run on its own recipe), the
    # shadows train on the section's schedule; a missing study fails here, before training
    hps = privacy_method_settings(cfg, setup)
    shadow_cfg = setup.shadow_config(cfg)
    folder = privacy_folder(cfg) / "records"
    check_writable(folder, "privacy results folder", "set MEGU_RESULTS_DIR to a writable folder")
    remove_stale_temp_files(folder)
    device = resolve_device(cfg.device if device is None else device)
    methods = [REFERENCE, *ANCHORS, *s["methods"]]
    todo = [(i, m) for i in range(s["shadows"]) for m in methods
            if not (folder / _record_name(cfg, setup, i, m)).is_file()]
    label = cfg.name if variant is None else f"{cfg.name} {variant}"
    log(f"[privacy {label}] {s['shadows']} shadows x {len(methods)} models, {len(todo)} to do -> "
        f"{shown_path(folder)}")
    env, started = _environment(), time.perf_counter()
    with progress_bar(len(todo), f"{label} privacy", progress) as bar:
        for index in sorted({i for i, _ in todo}):
            sdata, request = setup.shadow(index)
            seed = setup.shadow_seed(index)
            original = shadow_cfg.original_model(sdata, seed, cache=cache, device=device, progress=progress)
            for method in [m for i, m in todo if i == index]:
                if method == "original":
                    model, seconds, hp = original, float(original.train_seconds), {}
                else:
                    # the anchor retraining: its own initialisation and batch order (retrain's
                    # init_seed; by default it would reuse the original's seed, as the reference does)
                    hp = ({} if method == REFERENCE else {"init_seed": seed + ANCHOR_SEED_OFFSET}
                          if method == "retrain" else hps[method])
                    seed_everything(seed)
                    result = unlearn("retrain" if method == REFERENCE else method, original, sdata, request,
                                     device=device, seed=seed, cache=cache, progress=progress, **hp)
                    model, seconds = result.model, float(result.seconds)
                record = dict(config=cfg.name, shadow=index, method=method, seed=seed, hp=hp, plan=setup.key(),
                              **_measure(model, setup, sdata, request, device), seconds=seconds,
                              device=str(device), environment=env, finished=_now())
                atomic_write_bytes(folder / _record_name(cfg, setup, index, method),
                                   json.dumps(record, indent=None, default=float).encode())
                bar.update(1)
                bar.set_postfix(shadow=index, method=method, refresh=False)
    seconds = time.perf_counter() - started
    if todo:
        append_run_log(privacy_folder(cfg), run_log_command(variant), seconds=seconds, models=len(todo))
    log(f"[privacy {label}] done in {seconds:.0f} s")
    return folder


# ---------------------------------------------------------------------------------------
# Reading the records back


@dataclasses.dataclass
class PrivacyResults:
    """A profile's privacy records, in the layout of :mod:`megu_lib.privacy`: per model name
    (the reference, the anchors, the methods) an ``(n_shadows, n_targets)`` array of
    confidences on every target (:meth:`forgotten` masks those each shadow did not forget),
    and per shadow its accuracies and seconds."""

    setup: PrivacySetup
    confidence: dict
    test_acc: dict
    retain_acc: dict
    seconds: dict

    @property
    def plan(self):
        return self.setup.plan

    @property
    def methods(self) -> list:
        """Model names other than the reference (the anchors first, then the methods)."""
        return [m for m in self.confidence if m != REFERENCE]

    def forgotten(self, name: str) -> np.ndarray:
        """``name``'s confidences, NaN where the shadow did not forget the target."""
        return self.plan.layout(self.confidence[name])


def run_privacy_settings(cfg, *, data, variants=None, **kwargs) -> list:
    """:func:`run_privacy` for the section and every variant (or for the settings in
    ``variants``, ``None`` naming the section), every setting checked before any training;
    returns the settings run, in order."""
    settings = [None, *privacy_variants(cfg)] if variants is None else list(variants)
    for variant in settings:
        privacy_method_settings(cfg, privacy_setup(cfg, data, variant))
    for variant in settings:
        run_privacy(cfg, data=data, variant=variant, **kwargs)
    return settings


def privacy_method_settings(cfg, setup: PrivacySetup) -> dict:
    """{method: its overrides} for the setting's methods, as :func:`run_privacy` runs them (the
    profile's own settings: its studies were run on its recipe), checked before any training:
    a missing study, or a method that draws more images per class (``n_exemplars``, MeGU's
    judge) than some shadow's members hold, is a one-line error."""
    hps = {m: cfg.method_hp(m, SCENARIO) for m in setup.section["methods"]}
    y = setup.pool.targets("train").numpy()
    section = "privacy" if setup.variant is None else f"privacy.variants.{setup.variant}"
    cfg.check_exemplars({f"shadow {i}": y[setup.plan.member_indices(i)] for i in range(setup.plan.n_shadows)},
                        setup.pool.class_names(), where=f"{cfg.where}: {section}", fix="use a larger pool or ",
                        methods=list(hps), scenario=SCENARIO)
    return hps


def run_log_command(variant: str | None = None) -> str:
    """The command name a privacy run (of the section or of a variant) logs its time under."""
    return "privacy" if variant is None else f"privacy {variant}"


def privacy_seconds(cfg, variant: str | None = None) -> float:
    """Seconds the profile's privacy runs (of the section or of ``variant``) took in all,
    from the run log (NaN before any run)."""
    path = privacy_folder(cfg) / "run_log.json"
    if not path.is_file():
        return float("nan")
    entries = [e for e in json.loads(path.read_text()) if e["command"] == run_log_command(variant)]
    return float(sum(e["seconds"] for e in entries)) if entries else float("nan")


def privacy_results(cfg, data=None, variant: str | None = None) -> PrivacyResults:
    """Every record of the profile's privacy run (or of its ``variant``); an error naming the
    command that makes them when any (shadow, model) is missing."""
    from .profile import load_data
    data = load_data(cfg) if data is None else data
    setup = privacy_setup(cfg, data, variant)
    s = setup.section
    folder = privacy_folder(cfg) / "records"
    names = [REFERENCE, *ANCHORS, *s["methods"]]
    conf, test, retain, secs, missing = {}, {}, {}, {}, 0
    for name in names:
        rows = []
        for i in range(s["shadows"]):
            path = folder / _record_name(cfg, setup, i, name)
            try:
                rows.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                missing += 1
        if len(rows) == s["shadows"]:
            conf[name] = np.array([r["confidence"] for r in rows], dtype=float)
            test[name] = np.array([r["test_acc"] for r in rows], dtype=float)
            retain[name] = np.array([r["retain_acc"] for r in rows], dtype=float)
            secs[name] = np.array([r["seconds"] for r in rows], dtype=float)
    check(missing == 0, f"{cfg.where}: {missing} of {len(names) * s['shadows']} privacy records are missing in "
          f"{folder}; run `python -m megu_lib privacy {cfg.name}{'' if variant is None else ' --variant ' + variant}` "
          "(it resumes)")
    return PrivacyResults(setup, conf, test, retain, secs)


def _fold(plan, held_twins) -> np.ndarray:
    """The ``fit`` flags with the twins in ``held_twins`` held out."""
    fit = np.ones(plan.n_shadows, dtype=bool)
    for t in held_twins:
        fit[2 * t: 2 * t + 2] = False
    return fit


def attack(results: PrivacyResults, name: str, *, fit=None, shadows=None):
    """U-LiRA on model ``name`` against the reference: the :class:`~megu_lib.privacy.ULiraScores`
    with ``fit`` (default: the plan's split), on the shadows in ``shadows`` (default all;
    whole twins, so every target stays forgotten equally often)."""
    from .privacy import ulira_scores
    fit = results.plan.fit if fit is None else np.asarray(fit)
    u, r = results.forgotten(name), results.forgotten(REFERENCE)
    if shadows is not None:
        u, r, fit = u[shadows], r[shadows], fit[shadows]
    return ulira_scores(u, r, fit)


def _bootstrap_auc(scores, n_boot: int, seed: int) -> tuple[float, float]:
    """95 % interval of the AUC over targets resampled with replacement (the scores fixed)."""
    from .privacy import roc_summary
    rng = np.random.default_rng(seed)
    n = scores.unlearned.shape[1]
    aucs = []
    for _ in range(n_boot):
        cols = rng.integers(0, n, n)
        aucs.append(roc_summary(scores.unlearned[:, cols], scores.retrained[:, cols], fprs=[0.5]).auc)
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def privacy_table(results: PrivacyResults, *, n_boot: int = 200) -> pd.DataFrame:
    """Per model (the anchors, then the methods): U-LiRA's AUC with a 95 % bootstrap interval
    over targets, its TPR at each FPR of the section, the competition's forget quality and
    final score, the mean accuracies and seconds, what the figures rest on (held-out
    pairs, models per example), and ``unchanged``: True for a method that left every shadow's
    model as it was (:func:`unchanged`)."""
    from .privacy import competition_score, forget_quality, roc_summary
    s = results.setup.section
    ref = REFERENCE
    rows = []
    for name in results.methods:
        scores = attack(results, name)
        roc = roc_summary(scores.unlearned, scores.retrained, fprs=s["fprs"])
        lo, hi = _bootstrap_auc(scores, n_boot, s["seed"])
        fq = forget_quality(results.forgotten(name), results.forgotten(ref))
        ra_u, ra_r = results.retain_acc[name].mean(), results.retain_acc[ref].mean()
        ta_u, ta_r = results.test_acc[name].mean(), results.test_acc[ref].mean()
        row = dict(method=name, auc=100 * roc.auc, auc_lo=100 * lo, auc_hi=100 * hi,
                   **{f"tpr@{100 * a:g}%": 100 * v for a, v in roc.tpr_at.items()},
                   forget_quality=fq.score, score=competition_score(fq.score, ra_u, ra_r, ta_u, ta_r),
                   retain_acc=ra_u, test_acc=ta_u, seconds=float(np.median(results.seconds[name])),
                   pairs=roc.n_neg, models_per_example=fq.n_models, unchanged=unchanged(results, name))
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def unchanged(results: PrivacyResults, name: str, *, atol: float = 1e-4) -> bool:
    """True when ``name`` left every shadow's model as it was: its confidences on every target
    equal the untouched original's (a method that did nothing, e.g. SSD selecting no
    parameter); always False for the original itself."""
    if name == "original":
        return False
    return bool(np.allclose(results.confidence[name], results.confidence["original"], atol=atol, rtol=0))


def auc_by_shadows(results: PrivacyResults, name: str, sizes=None, *, repeats: int = 20, seed: int = 0) -> pd.DataFrame:
    """How U-LiRA's AUC on ``name`` moves with the number of shadows: for each size in
    ``sizes`` (even; default 12, 16, 24 and all), ``repeats`` random draws of that many
    shadows (whole twins), half the twins (at least :data:`~megu_lib.privacy.MIN_FIT_MODELS`)
    fitting and the rest held out; all the shadows once, with the plan's split (the AUC of
    :func:`privacy_table`). One row per draw: ``shadows``, ``repeat``, ``auc`` (%)."""
    from .privacy import MIN_FIT_MODELS, roc_summary
    plan = results.plan
    n_twins = plan.n_shadows // 2
    sizes = sizes if sizes is not None else sorted({min(n, plan.n_shadows) for n in (12, 16, 24, plan.n_shadows)})
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        k = n // 2
        check(n % 2 == 0 and MIN_FIT_MODELS + 1 <= k <= n_twins,
              f"auc_by_shadows: {n} shadows: use an even number from {2 * (MIN_FIT_MODELS + 1)} to {plan.n_shadows}")
        held = max(1, min(k // 2, k - MIN_FIT_MODELS))
        for rep in range(repeats if k < n_twins else 1):
            if k == n_twins:  # every shadow: the plan's own split, the one privacy_table reads
                scores = attack(results, name)
                rows.append(dict(shadows=n, repeat=rep, auc=100 * roc_summary(*scores, fprs=[0.5]).auc))
                continue
            twins = rng.permutation(n_twins)[:k]
            shadows = np.sort(np.concatenate([2 * twins, 2 * twins + 1]))
            fit = _fold(plan, twins[:held])
            scores = attack(results, name, fit=fit, shadows=shadows)
            rows.append(dict(shadows=n, repeat=rep, auc=100 * roc_summary(*scores, fprs=[0.5]).auc))
    return pd.DataFrame(rows)


def roc_curves(results: PrivacyResults, names=None) -> dict:
    """{model: :class:`~megu_lib.privacy.RocSummary`} on the plan's held-out shadows."""
    from .privacy import roc_summary
    fprs = results.setup.section["fprs"]
    return {n: roc_summary(*attack(results, n), fprs=fprs) for n in (names or results.methods)}


def rank_agreement(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation of two scores over the methods both have
    (:func:`megu_lib.metrics.spearman`: NaN, without a warning, below three or when either
    side is constant)."""
    from .metrics import spearman
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    return spearman(both["a"], both["b"])


def auc_difference(results: PrivacyResults, a: str, b: str, *, n_boot: int = 200, seed: int = 0) -> dict:
    """AUC(a) − AUC(b) in points with a paired 95 % bootstrap interval: the same targets are
    resampled for both models (they are attacked on the same examples, so their AUCs move
    together). Positive: ``a`` is the easier to tell from retraining."""
    from .privacy import roc_summary
    sa, sb = attack(results, a), attack(results, b)
    auc = lambda s, cols: roc_summary(s.unlearned[:, cols], s.retrained[:, cols], fprs=[0.5]).auc  # noqa: E731
    n = sa.unlearned.shape[1]
    every = np.arange(n)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        cols = rng.integers(0, n, n)
        diffs.append(auc(sa, cols) - auc(sb, cols))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return dict(a=a, b=b, diff=100 * (auc(sa, every) - auc(sb, every)), lo=100 * float(lo), hi=100 * float(hi))


def privacy_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`privacy_table` as the book shows it: narrow, one decimal, the AUC with its
    interval in one cell (it may break after the mean), the accuracies and seconds last; a
    method that left the models as they were is named "(unchanged)"."""
    nbsp = "\u00a0"
    out = pd.DataFrame(index=table.index)
    out["AUC % [95 % CI]"] = [f"{r.auc:.1f} [{r.auc_lo:.1f},{nbsp}{r.auc_hi:.1f}]" for r in table.itertuples()]
    for col in [c for c in table.columns if c.startswith("tpr@")]:
        out[f"TPR at {col[4:]} FPR"] = table[col].map(lambda v: f"{v:.2f}")  # at 0.1 % FPR TPRs are fractions of 1
    out["forget quality"] = table.forget_quality.map(lambda v: f"{v:.2f}")
    out["score"] = table.score.map(lambda v: f"{v:.2f}")
    out["test acc"] = table.test_acc.map(lambda v: f"{v:.1f}")
    out["s"] = table.seconds.map(lambda v: f"{v:.1f}")
    out.index = [f"{m} (unchanged)" if table.get("unchanged", pd.Series(dtype=bool)).get(m, False) else m
                 for m in table.index]
    out.index.name = None
    return out


def setting_summary(cfg, results: PrivacyResults) -> pd.Series:
    """What one privacy setting (the section's or a variant's) rests on, for the book: the
    pool, the shadows and their split, the shadows' schedule, how well the untouched
    originals and the retrained references fit their own images against the test split (the
    gap is what a per-example attack can find), and the run's measured time."""
    from .training import train_config
    setup, plan = results.setup, results.plan
    held = int((~plan.fit).sum())
    fit = lambda m: f"{results.retain_acc[m].mean():.1f} / {results.test_acc[m].mean():.1f}"  # noqa: E731
    return pd.Series({
        "pool (training images)": setup.section["pool"],
        "shadow originals (twins)": f"{plan.n_shadows} ({plan.n_shadows // 2})",
        "images per shadow": plan.pool_size // 2,
        "forgotten per shadow": f"{plan.forget_size} ({100 * plan.forget_size / (plan.pool_size // 2):.1f} %)",
        "training epochs": f"{train_config(dict(setup.shadow_config(cfg).train)).epochs:g}",
        "original: accuracy on its images / test (%)": fit("original"),
        "reference: accuracy on its images / test (%)": fit(REFERENCE),
        "targets": len(plan.targets),
        "shadows fitting / held out": f"{int(plan.fit.sum())} / {held}",
        "held-out pairs per model": held * plan.forget_size,
        "models per example (forget quality)": plan.n_shadows // 2,
        "time of the run (s, 2 cores)": f"{privacy_seconds(cfg, setup.variant):.0f}",
    }, name=setup.variant or "main setting")


def settings_comparison(tables: dict, fpr: str = "tpr@1%") -> tuple[pd.DataFrame, float]:
    """The same models under several privacy settings (``tables``: {setting name:
    :func:`privacy_table`}): per model its AUC with interval and its TPR at ``fpr`` in each
    setting (models every setting has, in the first table's order), and Spearman's rank
    correlation of the methods' AUCs between the first two settings (anchors and methods that
    left the models unchanged aside; NaN with fewer than three methods or one setting)."""
    nbsp = "\u00a0"
    names = list(tables)
    common = [m for m in tables[names[0]].index if all(m in t.index for t in tables.values())]
    out = pd.DataFrame(index=common)
    for name, t in tables.items():
        t = t.loc[common]
        out[f"AUC, {name}"] = [f"{r.auc:.1f} [{r.auc_lo:.1f},{nbsp}{r.auc_hi:.1f}]" for r in t.itertuples()]
        if fpr in t:
            out[f"TPR at {fpr[4:]} FPR, {name}"] = t[fpr].map(lambda v: f"{v:.2f}")
    rho = float("nan")
    if len(names) >= 2:
        first, second = tables[names[0]].loc[common], tables[names[1]].loc[common]
        skip = set(ANCHORS)
        for t in (first, second):
            if "unchanged" in t:
                skip |= set(t.index[t["unchanged"].astype(bool)])
        keep = [m for m in common if m not in skip]
        rho = rank_agreement(first.loc[keep, "auc"], second.loc[keep, "auc"])
    out.index.name = None
    return out, rho


def mia_comparison(records: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """The entropy MIA against U-LiRA, per method: each method's mean distance to retrain's
    MIA over the random-scenario runs of ``records`` (the grid's; same request and seed) and
    its U-LiRA AUC from ``table``; with Spearman's rank correlation over the models both
    have (the retrain anchor left out: its MIA distance is 0 by construction)."""
    rnd = records[records.scenario == "random"]
    check(len(rnd) > 0 and (rnd.method == "retrain").any(),
          "mia_comparison needs random-scenario records with retrain among them")
    keyed = rnd.set_index(["request", "seed"])
    ref = keyed[keyed.method == "retrain"].mia
    distance = (keyed.mia - ref.reindex(keyed.index)).abs().groupby(keyed.method).mean()
    both = pd.DataFrame({"U-LiRA AUC (%)": table.auc, "|MIA − retrain's| (pts)": distance})
    both = both.drop(index="retrain", errors="ignore").dropna().sort_values("U-LiRA AUC (%)", ascending=False)
    return both, rank_agreement(both.iloc[:, 0], both.iloc[:, 1])
