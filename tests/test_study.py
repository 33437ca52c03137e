"""The tuning protocol: one Optuna study per (method, scenario), on a task that never reads
the test split, capped at retraining's time, resumable, and its bad inputs."""
import json

import pandas as pd
import pytest
import yaml

import megu_lib.profile as pf
from megu_lib.errors import MeguError
from megu_lib.tuning import (
    chosen_for,
    chosen_settings,
    chosen_table,
    read_study,
    study_records,
    trials_frame,
    tune_profile,
    tuning_data,
    tuning_folder,
)


def _profile(tmp_path, **tuning):
    cfg = dict(name="tiny", dataset="fashion_mnist", subset={"train": 600, "test": 200},
               model={"arch": "small_cnn", "width": 4}, train={"preset": "fast", "epochs": 1, "batch_size": 64},
               device="cpu", seeds=[0], judge="uniform", eval={"max_retain": 200},
               scenarios={"class": {"forget": ["Trouser"]}}, methods=["retrain", "finetune", "ssd"],
               hp={"finetune": {"epochs": 0.5}},
               tuning={"trials": 3, "validation": 0.25, "space": {"ssd": {"alpha": [1, 20]}}, **tuning})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_tuning_section_is_checked_at_load_time(tmp_path):
    with pytest.raises(MeguError, match=r"^tiny.yaml: tuning has unknown key 'trails'; known keys: trials"):
        pf.load_config(_profile(tmp_path, trails=3))
    with pytest.raises(MeguError, match=r"tuning.validation must be a fraction of the training split in \(0, 0.5\]: "
                                        r"the tuning task is built from the training split alone and never touches "
                                        r"the test split, got 'test'"):
        pf.load_config(_profile(tmp_path, validation="test"))
    with pytest.raises(MeguError, match=r"tuning.space.ssd.alpha: the range is outside what ssd allows: each end must "
                                        r"be a positive number, got -1"):
        pf.load_config(_profile(tmp_path, space={"ssd": {"alpha": [-1, 10]}}))
    with pytest.raises(MeguError, match=r"tuning.methods: 'retrain' is not a method of the profile \(retrain is the "
                                        r"reference, never tuned\)"):
        pf.load_config(_profile(tmp_path, methods=["retrain"]))
    cfg = pf.load_config(_profile(tmp_path))
    t = cfg.tuning_section()
    assert t["methods"] == ["finetune", "ssd"] and t["requests"] == {"class": "Trouser"} and t["trials"] == 3


def test_tuning_task_is_drawn_from_the_training_split(tmp_path, small):
    cfg = pf.load_config(_profile(tmp_path, pool=400))
    task = tuning_data(cfg, small)
    assert len(task.train_y) + len(task.test_y) == 400 and len(task.test_y) == 100
    train_rows = {bytes(x.numpy().tobytes()) for x in small.train_x}
    assert all(bytes(x.numpy().tobytes()) in train_rows for x in task.test_x)  # validation = training images


@pytest.mark.slow
def test_studies_run_resume_and_feed_the_runner(tmp_path):
    cfg = pf.load_config(_profile(tmp_path, requests={"class": ["Trouser", "Bag"]}))
    data = pf.load_data(cfg)
    # before a study exists, a tuned method cannot be keyed: one line naming the command
    with pytest.raises(MeguError, match=r"run python -m megu_lib tune tiny"):
        cfg.method_hp("finetune", "class")
    lines = []
    chosen = tune_profile(cfg, data, log=lines.append)
    folder = tuning_folder(cfg)
    rec = read_study(folder / "ssd-class.json")
    assert len(rec["trials"]) == 3 and all(1 <= tr["params"]["alpha"] <= 20 for tr in rec["trials"])
    assert rec["cap_seconds"] > 0 and chosen["ssd"]["class"] == rec["chosen"]
    # two tuning requests: the objective is their mean gap, the cap their summed retraining time
    assert rec["request"] == "class:Trouser, class:Bag" and set(rec["reference"]) == {"class:Trouser", "class:Bag"}
    done = [tr for tr in rec["trials"] if tr["state"] == "COMPLETE"]
    assert all(tr["gap"] == pytest.approx(sum(tr["request_gaps"]) / 2) for tr in done)
    within = [tr for tr in rec["trials"] if tr["within_cap"]]  # timing decides which: the rule is tested below
    assert rec["chosen"] == ({**rec["best"]["params"]} if within else {}) and (rec["best"] is None) == (not within)
    assert chosen["finetune"]["class"]["epochs"] == 0.5  # fixed by the profile: not searched
    assert cfg.method_hp("ssd", "class") == rec["chosen"]  # the runner's key uses the choice
    assert json.loads((folder / "chosen.json").read_text()) == chosen
    # what the book shows of the studies
    frame = trials_frame(study_records(cfg))
    assert len(frame) == 6 and set(frame.method) == {"finetune", "ssd"} and frame.gap.notna().all()
    table = chosen_table(study_records(cfg)).set_index("method")
    assert table.loc["ssd", "trials"] == table.loc["finetune", "trials"] == 3
    if rec["best"] is not None:
        assert table.loc["ssd", "best gap"] == pytest.approx(rec["best"]["gap"])
    from megu_lib.tuning import chosen_markdown
    text = chosen_markdown(study_records(cfg))
    assert text.startswith("- **`finetune`** — class: ") and "\n- **`ssd`** — class: " in text
    import matplotlib.pyplot as plt

    from megu_lib.plotting import plot_study_histories
    fig = plot_study_histories(frame)
    assert len([ax for ax in fig.axes if ax.axison]) == 2
    plt.close(fig)
    log = json.loads((cfg.results_folder() / "run_log.json").read_text())
    assert [e["command"] for e in log] == ["tune"] and log[0]["studies"] == 2 and log[0]["seconds"] > 0
    # a second call loads the records: no trial runs again, no time is logged
    again = []
    tune_profile(cfg, data, log=again.append)
    assert len(json.loads((cfg.results_folder() / "run_log.json").read_text())) == 1
    assert not any("trial" in line or "task" in line for line in again)  # nothing trained, nothing run
    # more trials: the study resumes from its storage
    cfg3 = pf.load_config(_profile(tmp_path, trials=4, requests={"class": ["Trouser", "Bag"]}))
    with pytest.raises(MeguError, match="was made for another tuning task"):
        chosen_for(cfg3, "ssd", "class")
    # every reader of the studies checks their key: none reports another task's choice as this one's
    for reader in (chosen_settings, study_records):
        with pytest.raises(MeguError, match="was made for another tuning task"):
            reader(cfg3)
    (folder / "ssd-class.json").unlink()
    (folder / "finetune-class.json").unlink()
    with pytest.raises(MeguError, match="study 'finetune-class' was made for another tuning task"):
        tune_profile(cfg3, data, log=lambda m: None)


def test_damaged_storage_and_records_are_one_line_errors(tmp_path, small):
    cfg = pf.load_config(_profile(tmp_path))
    folder = tuning_folder(cfg)
    folder.mkdir(parents=True)
    (folder / "optuna.sqlite3").write_text("not a database")
    with pytest.raises(MeguError, match=r"optuna.sqlite3 is not an Optuna SQLite storage \(damaged or another file\)"):
        tune_profile(cfg, small, log=lambda m: None)
    (folder / "optuna.sqlite3").unlink()
    (folder / "ssd-class.json").write_text("{")
    with pytest.raises(MeguError, match=r"ssd-class.json is not a study record \(damaged\)"):
        tune_profile(cfg, small, log=lambda m: None)
    assert not (tmp_path / "cache").exists()  # nothing trained


def test_the_chosen_setting_is_the_best_trial_within_the_cap():
    """A faster but worse trial loses to a better one; a better trial over the cap is never chosen."""
    import optuna

    from megu_lib.tuning import study_record
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)}

    def study_of(trials, cap=10.0):
        study = optuna.create_study(direction="minimize")
        for lr, gap, seconds in trials:
            study.add_trial(optuna.trial.create_trial(
                params={"lr": lr}, distributions=dist, value=None if gap != gap else gap,
                state=optuna.trial.TrialState.FAIL if gap != gap else optuna.trial.TrialState.COMPLETE,
                user_attrs={"seconds": seconds, "over_cap": seconds - cap}))
        return study

    study = study_of([(0.01, 3.0, 5.0), (0.02, 1.0, 20.0), (0.03, 2.0, 9.0), (0.04, float("nan"), 1.0)])
    task = type("Task", (), {"label": lambda self: "class:Shirt", "references": [{}], "key": lambda self: {}})()
    rec = study_record(study, {}, "k", 10.0, {"epochs": 1}, "finetune", "class", task)
    assert rec["best"]["params"] == {"lr": 0.03} and rec["chosen"] == {"epochs": 1, "lr": 0.03}
    assert [tr["within_cap"] for tr in rec["trials"]] == [True, False, True, True]
    rec = study_record(study_of([(0.01, 3.0, 11.0), (0.02, 1.0, 20.0)]), {}, "k", 10.0, {"epochs": 1}, "finetune",
                       "class", task)
    assert rec["best"] is None and rec["chosen"] == {"epochs": 1} and "defaults" in rec["note"]


def test_baselines_table_says_how_each_method_ran(tmp_path):
    from megu_lib.tables import baselines_markdown, baselines_table
    cfg = pf.load_config(_profile(tmp_path, methods=["ssd"]))
    table = baselines_table(cfg)
    assert list(table.index) == ["retrain", "finetune", "ssd"]
    assert table.loc["ssd", "hyperparameters"] == "tuned per scenario (table below)"
    assert table.loc["finetune", "hyperparameters"] == "its defaults, except epochs=0.5"
    assert table.loc["retrain", "hyperparameters"] == "its defaults (see its docstring)"
    assert "Foster" in table.loc["ssd", "source"] and "random scenario" in table.loc["ssd", "differs from its source"]
    text = baselines_markdown(cfg)
    assert text.count("\n- ") == 2 and "- **`ssd`** — " in text and "*Hyperparameters:* tuned per scenario" in text


def test_a_second_profile_is_shown_only_when_all_its_records_exist(tmp_path, small):
    from megu_lib.experiments import committed_records
    df, why = committed_records("no_such_profile", small)
    assert df is None and "unknown profile 'no_such_profile'" in why
    df, why = committed_records(str(_profile(tmp_path)), small)
    assert df is None and "run python -m megu_lib tune tiny" in why  # its studies come first
    df, why = committed_records(str(_profile(tmp_path, use=False)), small)
    assert df is None and "record(s) of profile 'tiny' are missing under results/tiny/records" in why
    assert str(tmp_path) not in why.split("; run")[0]  # the folder says nothing of the machine it is on


def test_ablations_run_at_the_setting_megus_study_chose(tmp_path):
    """tuned_from: each variant gets MeGU's chosen setting, except what makes it that variant."""
    from megu_lib.requests import config_hash
    from megu_lib.tuning import study_key
    src = pf.load_config(_megu_profile(tmp_path))
    folder = tuning_folder(src)
    folder.mkdir(parents=True)
    chosen = {"judge": "uniform", "rule": "mix", "epochs": 0.7, "targets": "hard"}
    (folder / "megu-class.json").write_text(json.dumps(dict(
        key_hash=config_hash(study_key(src, "megu", "class")), trials=[{"state": "COMPLETE"}], chosen=chosen)))
    abl = dict(yaml.safe_load(open(src.path)), name="abl", methods=["retrain", "megu", "megu_no_T", "finetune"],
               tuned_from={"profile": str(src.path), "method": "megu", "methods": ["megu", "megu_no_T"]})
    abl.pop("tuning")
    path = tmp_path / "abl.yaml"
    path.write_text(yaml.safe_dump(abl))
    cfg = pf.load_config(path)
    assert cfg.method_hp("megu", "class") == chosen
    assert cfg.method_hp("megu_no_T", "class") == {k: v for k, v in chosen.items() if k != "rule"}  # its rule stays
    assert cfg.method_hp("finetune", "class") == {}
    with pytest.raises(MeguError, match="study of megu on random is missing"):
        cfg.method_hp("megu", "random")
    bad = dict(abl, tuned_from={"profile": "nope", "method": "megu", "methods": ["megu"]})
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(MeguError, match="tuned_from.profile: unknown profile 'nope'"):
        pf.load_config(path)


def _megu_profile(tmp_path):
    cfg = yaml.safe_load(_profile(tmp_path).read_text())
    cfg.update(methods=["retrain", "megu"], hp={}, scenarios={"class": {"forget": ["Trouser"]},
                                                                "random": {"forget": [0.1]}},
               tuning={"trials": 2})
    path = tmp_path / "src.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_tune_bad_input_is_one_line(tmp_path):
    """``tune`` on a profile without a tuning section, or with a damaged study: exit 2, one line."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    env = {"MEGU_CACHE_DIR": str(tmp_path / "cache"), "MEGU_RESULTS_DIR": str(tmp_path / "res"),
           "PATH": "/usr/bin:/bin", "MEGU_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-m", "megu_lib", "tune", "smoke"], capture_output=True, text=True,
                         env=env, cwd=root, timeout=120)
    assert out.returncode == 2 and out.stderr == "error: smoke.yaml: the profile has no tuning section\n"
    path = _profile(tmp_path)
    (tmp_path / "res" / "tiny" / "tuning").mkdir(parents=True)
    (tmp_path / "res" / "tiny" / "tuning" / "ssd-class.json").write_text("[1, 2")
    out = subprocess.run([sys.executable, "-m", "megu_lib", "tune", str(path)], capture_output=True, text=True,
                         env=env, cwd=root, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "is not a study record (damaged)" in out.stderr
    assert not (tmp_path / "cache").exists()  # nothing trained


def _fake_study(cfg, method, scenario, gap, trials=3):
    """A finished study record under ``cfg``'s current key (no training)."""
    from megu_lib.requests import config_hash
    from megu_lib.tuning import study_key
    best = dict(number=0, state="COMPLETE", params={"epochs": 1.0}, gap=gap, seconds=1.0, within_cap=True)
    return dict(method=method, scenario=scenario, key_hash=config_hash(study_key(cfg, method, scenario)),
                trials=[{**best, "number": i, "gap": gap + i} for i in range(trials)], best=best,
                chosen={"epochs": 1.0}, cap_seconds=2.0)


def test_replicates_are_copied_checked_and_set_beside_the_studies(tmp_path):
    from megu_lib.tuning import replicate_records, replicate_table, replicates_folder, save_replicate
    cfg = pf.load_config(_profile(tmp_path))
    assert replicate_records(cfg) == {} and replicate_table([], {}) [1] == ""
    other = tmp_path / "other" / "tiny" / "tuning"
    other.mkdir(parents=True)
    (other / "finetune-class.json").write_text(json.dumps(_fake_study(cfg, "finetune", "class", 2.0)))
    (other / "ssd-class.json").write_text(json.dumps(_fake_study(cfg, "ssd", "class", 1.0, trials=2)))  # unfinished
    copied = save_replicate(cfg, "elsewhere", other, {"machine": "test"})
    assert [p.name for p in copied] == ["finetune-class.json"]
    assert json.loads((replicates_folder(cfg) / "elsewhere" / "about.json").read_text()) == {"machine": "test"}
    one = [_fake_study(cfg, "finetune", "class", 3.5), _fake_study(cfg, "ssd", "class", 1.5)]
    table, text = replicate_table(one, replicate_records(cfg))
    assert list(table.method) == ["finetune"] and "(`elsewhere`, 1 study)" in text and "pairs" not in text
    (other / "ssd-class.json").write_text(json.dumps(_fake_study(cfg, "ssd", "class", 2.4)))
    save_replicate(cfg, "elsewhere", other, {"machine": "test"})
    reps = replicate_records(cfg)
    assert set(reps["elsewhere"]["records"]) == {("finetune", "class"), ("ssd", "class")}
    # the committed studies: ssd best on the tuning task there, finetune in the replicate
    own = [_fake_study(cfg, "finetune", "class", 3.5), _fake_study(cfg, "ssd", "class", 1.5)]
    table, text = replicate_table(own, reps)
    row = table.set_index("method").loc["finetune"]
    assert row["committed"] == 3.5 and row["elsewhere"] == 2.0 and row["largest difference"] == pytest.approx(1.5)
    assert "the best gap moved by more than 1 point for 1 of 2 methods (`finetune` 3.50 → 2.00);" in text
    assert "`ssd` in the committed studies and `finetune` in `elsewhere`" in text
    assert "order 0 of 1 pairs of methods alike" in text
    _, text = replicate_table(own, reps, focus="ssd")
    assert "ahead of `ssd` in `elsewhere` but behind it in the committed studies: `finetune`" in text
    _, text = replicate_table(own, reps, focus="finetune")
    assert "behind `finetune` in `elsewhere` but ahead of it in the committed studies: `ssd`" in text
    # a replicate made for another tuning task, a bad name, a missing folder: one line each, nothing copied
    cfg4 = pf.load_config(_profile(tmp_path, trials=4))
    with pytest.raises(MeguError, match="was made for another tuning task"):
        replicate_records(cfg4)
    with pytest.raises(MeguError, match="was made for another tuning task"):
        save_replicate(cfg4, "again", other, {})
    assert not (replicates_folder(cfg) / "again").exists()
    with pytest.raises(MeguError, match="replicate name must be letters"):
        save_replicate(cfg, "../up", other, {})
    with pytest.raises(MeguError, match="no such tuning folder"):
        save_replicate(cfg, "x", tmp_path / "nowhere", {})


def test_a_profile_can_run_each_method_at_a_repeat_of_its_own_study(tmp_path):
    """tuned_from without method, with replicate: each method at the choice of its own study's
    committed repeat (the check of a choice that owed much to the search)."""
    from megu_lib.tuning import replicates_folder
    src = pf.load_config(_profile(tmp_path))
    rep = replicates_folder(src) / "elsewhere"
    rep.mkdir(parents=True)
    study = _fake_study(src, "ssd", "class", 2.0)
    study["chosen"] = {"alpha": 5.5, "lam": 0.9}
    (rep / "ssd-class.json").write_text(json.dumps(study))
    raw = dict(yaml.safe_load(open(src.path)), name="again", methods=["retrain", "ssd", "finetune"],
               tuned_from={"profile": str(src.path), "methods": ["ssd", "finetune"], "replicate": "elsewhere"})
    raw.pop("tuning")
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = pf.load_config(path)
    assert cfg.method_hp("ssd", "class") == {"alpha": 5.5, "lam": 0.9}
    with pytest.raises(MeguError, match=r"the repeat 'elsewhere' of profile tiny's studies has no study of finetune "
                                        r"on class .*clean_run\.py tiny makes the repeat clean_run"):
        cfg.method_hp("finetune", "class")
    path.write_text(yaml.safe_dump(dict(raw, tuned_from={**raw["tuned_from"], "replicate": "../up"})))
    with pytest.raises(MeguError, match="tuned_from.replicate must be the name of a folder under tuning/replicates/"):
        pf.load_config(path)
    path.write_text(yaml.safe_dump(dict(raw, tuned_from={**raw["tuned_from"], "sampler": 1})))
    with pytest.raises(MeguError, match=r"tuned_from must be \{profile: <name>, methods: \[...\]\}, optionally"):
        pf.load_config(path)


def _where_better(tmp_path, **notebook):
    """A source profile ``tiny`` (class and random, studies of ssd and finetune committed, a repeat
    ``elsewhere`` in which only ssd's class study is the better) and ``again``, its where_better
    profile; returns (source's raw YAML, its path, again's raw YAML, again's path)."""
    from megu_lib.tuning import replicates_folder, study_path
    raw = yaml.safe_load(_profile(tmp_path).read_text())
    raw["scenarios"]["random"] = {"forget": [0.1]}
    if notebook:
        raw["notebook"] = notebook
    src_path = tmp_path / "tiny.yaml"
    src_path.write_text(yaml.safe_dump(raw))
    rep_raw = dict(raw, name="again", methods=["retrain", "ssd", "finetune"],
                   tuned_from={"profile": str(src_path), "methods": ["ssd", "finetune"], "replicate": "elsewhere",
                               "where_better": True})
    rep_raw.pop("tuning")
    rep_raw.pop("notebook", None)
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(rep_raw))
    src = pf.load_config(src_path)
    rep = replicates_folder(src) / "elsewhere"
    rep.mkdir(parents=True, exist_ok=True)
    own = {("ssd", "class"): 5.0, ("ssd", "random"): 1.0, ("finetune", "class"): 2.0, ("finetune", "random"): 3.0}
    again = {("ssd", "class"): 1.0, ("ssd", "random"): 1.0, ("finetune", "class"): 4.0, ("finetune", "random"): None}
    for (m, s), gap in own.items():
        study_path(src, m, s).parent.mkdir(parents=True, exist_ok=True)
        study_path(src, m, s).write_text(json.dumps(_fake_study(src, m, s, gap)))
        study = _fake_study(src, m, s, again[(m, s)] or 0.0)
        study["chosen"] = {"epochs": 2.0, "alpha": 3.0}
        if again[(m, s)] is None:  # no setting within the cap
            study["best"] = None
        (rep / study_path(src, m, s).name).write_text(json.dumps(study))
    return raw, src_path, rep_raw, path


def test_where_better_runs_each_method_only_where_its_repeat_won(tmp_path):
    """tuned_from.where_better: a method runs only in the scenarios where the repeat of its study
    found the lower best gap on the tuning task (a tie, or a repeat with nothing within the cap,
    keeps the committed study); the runner's jobs, the record names and describe agree."""
    from megu_lib.tuning import repeat_is_better
    _, src_path, raw, path = _where_better(tmp_path)
    src = pf.load_config(src_path)
    own = [("ssd", "class"), ("ssd", "random"), ("finetune", "class"), ("finetune", "random")]
    assert [repeat_is_better(src, m, s, "elsewhere") for m, s in own] == [True, False, False, False]
    cfg = pf.load_config(path)
    assert [(m, s) for s in ("class", "random") for m in cfg.methods if cfg.runs(m, s)] == [
        ("retrain", "class"), ("ssd", "class"), ("retrain", "random")]
    # at the repeat's choice: only ssd in class (retrain runs everywhere, but at no repeat's choice)
    assert [(m, s) for s in ("class", "random") for m in cfg.methods if cfg.at_repeat(m, s)] == [("ssd", "class")]
    assert not src.at_repeat("ssd", "class")
    data = pf.load_data(cfg)
    assert [(r.scenario, m) for _, r, m in cfg.jobs(data)] == [("class", "retrain"), ("class", "ssd"),
                                                               ("random", "retrain")]
    assert len(cfg.record_files(data)) == 3 + 2  # the jobs and one original per request
    text = pf.describe(cfg, data, pd.DataFrame({"request": ["class:Trouser", "random:0.1"]}))
    assert "not run (the source profile's own study is the better there): finetune in class, ssd in random, " \
           "finetune in random" in text
    for bad in ({"where_better": "yes"}, {"where_better": True, "replicate": None}):
        tf = {k: v for k, v in {**raw["tuned_from"], **bad}.items() if v is not None}
        path.write_text(yaml.safe_dump(dict(raw, tuned_from=tf)))
        with pytest.raises(MeguError, match="tuned_from.where_better must be true or false, and true only with "
                                            "replicate"):
            pf.load_config(path)


def test_the_verdicts_read_each_method_at_its_better_search(tmp_path, monkeypatch):
    """notebook.better_search: the chapters' records, the settings shown and the hyperparameter
    table put each method at the better of its two searches once the repeat is complete; the
    committed searches while it is not; a profile that is no such repeat is a one-line error."""
    from megu_lib import experiments as ex
    from megu_lib import tables as tb
    from megu_lib import tuning as tu
    _, src_path, _, again_path = _where_better(tmp_path, better_search=str(tmp_path / "again.yaml"))
    src = pf.load_config(src_path)
    better = ex.better_search_profile(src)
    assert better.name == "again"
    # the studies as run: ssd in class at the repeat's, everything else at the committed study
    records = {(r["method"], r["scenario"]): r.get("search") for r in tu.study_records(src, better)}
    assert records == {("finetune", "class"): None, ("ssd", "class"): "elsewhere", ("finetune", "random"): None,
                       ("ssd", "random"): None}
    as_run = tu.chosen_markdown(tu.study_records(src, better))
    assert "- **`ssd`** — class: alpha=3, epochs=2 (repeat `elsewhere`); random: epochs=1" in as_run
    assert "repeat" not in tu.chosen_markdown(tu.study_records(src)) and "search" not in tu.chosen_table(
        tu.study_records(src))
    hp = tb.megu_hp_table(src, "ssd", better=better)
    assert list(hp.columns[-2:]) == ["tuned, class (repeat)", "tuned, random"] and hp.at["alpha", hp.columns[-2]] == "3"
    assert list(tb.megu_hp_table(src, "ssd").columns[-2:]) == ["tuned, class", "tuned, random"]
    # the records: the merged ones when the repeat is complete, the committed ones while it is not
    data = pf.load_data(src)
    metrics = {k: [90.0, 80.0, 85.0] for k in ("retain_acc", "forget_acc", "test_acc", "mia")}
    committed = pd.DataFrame({"scenario": ["class"] * 3, "request": ["class:Trouser"] * 3, "seed": [0] * 3,
                              "method": ["retrain", "ssd", "finetune"], "seconds": [100.0, 5.0, 6.0], **metrics})
    repeat = committed[committed.method != "finetune"].assign(forget_acc=[90.0, 88.0])
    read = []  # the repeat's records are read once, as far as they are committed

    def records_of(rows, why):
        def committed_records(name, data, partial=False):
            read.append((name, partial))
            return rows, why
        return committed_records
    partial = repeat[repeat.method == "retrain"]
    monkeypatch.setattr(ex, "committed_records", records_of(partial, "1 of 2 records are still to be made"))
    found = ex.verdict_records(src, data, committed)
    assert found.records is committed and found.better is None and found.repeat.name == "again"
    assert found.at_repeat is partial and found.missing == "1 of 2 records are still to be made"
    assert "is not complete on these data (1 of 2 records" in found.note and read == [("again", True)]
    monkeypatch.setattr(ex, "committed_records", records_of(repeat, ""))
    found = ex.verdict_records(src, data, committed)
    assert found.better.name == "again" and found.at_repeat is repeat and found.missing == ""
    assert "(profile `again`; class: `ssd`)" in found.note
    assert found.records.set_index("method").loc["ssd", "forget_acc"] == 88.0 and len(found.records) == 3
    none = ex.verdict_records(pf.load_config(again_path), data, committed)
    assert none.records is committed and (none.better, none.repeat, none.at_repeat, none.note) == (None,) * 3 + ("",)
    # a run at the committed settings (the privacy shadows, the ablations) beside the verdicts' settings
    pairs = [("ssd", "class"), ("ssd", "random"), ("finetune", "class"), ("retrain", "class")]
    note = ex.beside_verdicts(src, pairs, "The shadows' methods")
    assert note.startswith("The shadows' methods run at the committed search's setting. **That is not the setting "
                           "the verdicts read** for `ssd` in class forgetting:") and "very same" not in note
    from megu_lib.tuning import replicates_folder, study_path
    mirror = replicates_folder(src) / "elsewhere" / study_path(src, "ssd", "class").name
    study = json.loads(mirror.read_text())
    mirror.write_text(json.dumps({**study, "chosen": tu.chosen_for(src, "ssd", "class")}))
    assert ex.beside_verdicts(src, pairs, "The variants") == (
        "The variants run at the committed search's setting, the one the verdicts read; where a repeated study "
        "was the better search (`ssd` in class forgetting), it chose the very same setting.")
    assert ex.beside_verdicts(pf.load_config(again_path), pairs, "x") == ""
    # a better_search that is not a where_better repeat of this profile
    raw = yaml.safe_load(src_path.read_text())
    raw["notebook"]["better_search"] = str(src_path)
    src_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(MeguError, match=r"^tiny.yaml: notebook.better_search names profile '.*tiny.yaml', which is "
                                        r"not a repeat of 'tiny''s grid; it needs tuned_from: \{profile: tiny"):
        ex.better_search_profile(pf.load_config(src_path))
    raw["notebook"]["better_search"] = "no_such_profile"
    src_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(MeguError, match="notebook.better_search must name a profile, got 'no_such_profile'"):
        pf.load_config(src_path)


def test_profile_cost_reads_the_clean_runs_summary_and_prices_the_second_search(tmp_path):
    """experiments.profile_cost: each segment as measured and scaled by its throughput probe to the
    fastest machine's, the budget verdict only once every stage has finished, and the second
    search (its tuning stage again, the repeat's runs timed by the clean run's own records)."""
    from megu_lib import experiments as ex
    _, src_path, _, _ = _where_better(tmp_path, better_search=str(tmp_path / "again.yaml"))
    src = pf.load_config(src_path)
    data = pf.load_data(src)
    table, text = ex.profile_cost(src, data, budget_hours=1.2)
    assert table.empty and text.startswith("*Not measured yet: `python benchmarks/clean_run.py tiny`")
    tune = dict(stage="tune", at="2026-12-03T16:21:35", seconds=3600.0, finished=True, segments=2,
                probes=[{"train_images_per_s": 500}, {"train_images_per_s": 700}], machine="Linux-6.1-fc-v1-x86_64")
    run = dict(stage="run", at="2026-12-04T08:45:31", seconds=1800.0, finished=False,
               probe={"train_images_per_s": 1200}, machine="Linux-6.1-fc-v2-x86_64")

    def summary(*segs):
        stages = {s["stage"]: dict(seconds=s["seconds"], finished=s["finished"]) for s in segs}
        (src.results_folder() / "clean_run.json").write_text(json.dumps(dict(
            stages=stages, complete=all(s["finished"] for s in segs), segments=list(segs))))
    src.results_folder().mkdir(parents=True, exist_ok=True)
    summary(tune, run)
    table, text = ex.profile_cost(src, data, budget_hours=1.2)
    assert list(table["machine"]) == ["6.1-fc-v1", "6.1-fc-v2"] and list(table["probe (images/s)"]) == [600, 1200]
    assert list(table["hours at the fastest probe"]) == [0.5, 0.5] and list(table["segments"]) == [2, 1]
    assert text.startswith("**Not finished yet**; so far, from empty caches, profile `tiny` took **1.50 h**")
    assert "(tune 1.00 h, run 0.50 h so far)" in text and "fastest of them (1200 images/s), 1.00 h." in text
    assert "budget" not in text and "second search" not in text  # unfinished, and no records of the clean run
    assert "carry a note" not in text
    summary(dict(tune, note="restored"), run)
    assert "1 of the 2 segments carry a note on what was cut, removed or made again (`results/clean_run/tiny/" \
        in ex.profile_cost(src, data)[1]
    summary(tune, dict(run, finished=True))
    records = pf.results_dir() / "clean_run" / "tiny" / "records"
    records.mkdir(parents=True)
    (records / "a.json").write_text(json.dumps(dict(method="ssd", request="class:Trouser", seed=0, seconds=360.0,
                                                    metrics={})))
    (records / "b.json").write_text(json.dumps(dict(method="finetune", request="class:Trouser", seed=0,
                                                    seconds=3600.0, metrics={})))  # not a run of the repeat
    text = ex.profile_cost(src, data, budget_hours=1.2)[1]
    assert text.startswith("From empty caches, profile `tiny` took **1.50 h**")
    assert "Our budget is 1.2 h: within it at the fastest probe's speed, over it on the slower machines (by 25 % " \
           "as measured)." in text
    assert "Where the run stage's time goes (2 records): the methods' own times sum to 1.10 h — `finetune` 1.00 h, " \
           "`ssd` 0.10 h; the rest" in text
    assert "the tuning stage once more (0.50 h) and the 1 runs of profile `again`" in text
    assert "repeat's choice: 0.10 h;" in text and "whole pipeline from nothing is about 1.60 h" in text
    assert "within it as measured." in ex.profile_cost(src, data, budget_hours=2)[1]
    assert "Our budget is 0.8 h: **over it**, by 88 % as measured and by 25 % at the fastest probe's speed." \
        in ex.profile_cost(src, data, budget_hours=0.8)[1]
    # a stage timed again from nothing in folders of its own (benchmarks/clean_run.py --no-export)
    again = dict(tune, seconds=2520.0, segments=1, probes=None, probe={"train_images_per_s": 1150},
                 machine="Linux-6.1-fc-v2-x86_64")

    def timed_again(seg):
        (src.results_folder() / "clean_run_again.json").write_text(json.dumps(dict(
            stages={"tune": dict(seconds=seg["seconds"], finished=True)}, segments=[seg])))
    timed_again(again)
    text = ex.profile_cost(src, data, budget_hours=1.2)[1]
    assert "machine 6.1-fc-v2, probe 1150 images/s): the tune stage took 0.70 h (first measurement 1.00 h)." in text
    assert "the whole profile takes **1.20 h** as measured on one machine type — within our budget." in text
    assert "over our budget by 50 %" in ex.profile_cost(src, data, budget_hours=0.8)[1]
    timed_again(dict(again, machine="Linux-6.1-fc-v3-x86_64"))  # not the run stage's machine type: no sum
    text = ex.profile_cost(src, data, budget_hours=1.2)[1]
    assert "the tune stage took 0.70 h" in text and "one machine type" not in text
    # the whole profile measured again (bf16): its own summary and records; neither the stages timed
    # again nor the second search's cost belong to it
    assert ex.profile_cost(src, data, budget_hours=1.2, name="clean_run_bf16")[0].empty
    (src.results_folder() / "clean_run_bf16.json").write_text(json.dumps(dict(
        stages={"tune": dict(seconds=1800.0, finished=True), "run": dict(seconds=1080.0, finished=True)},
        complete=True, segments=[dict(tune, seconds=1800.0, segments=1), dict(run, seconds=1080.0, finished=True)])))
    bf16 = ex.clean_run_folder(src, "clean_run_bf16")
    assert bf16 == pf.results_dir() / "clean_run_bf16" / "tiny"
    (bf16 / "records").mkdir(parents=True)
    (bf16 / "records" / "c.json").write_text(json.dumps(dict(method="ssd", request="class:Trouser", seed=0,
                                                             seconds=180.0, metrics={})))
    table, text = ex.profile_cost(src, data, budget_hours=1.2, name="clean_run_bf16")
    assert text.startswith("From empty caches, profile `tiny` took **0.80 h**") and len(table) == 2
    assert "Our budget is 1.2 h: within it as measured." in text and "`ssd` 0.05 h" in text
    assert "timed again" not in text.lower() and "second search" not in text
    # ... until the repeat profile's run stage is timed the same way: the verdicts' pipeline, measured
    repeat = ex.better_search_profile(src).results_folder()
    repeat.mkdir(parents=True, exist_ok=True)

    def repeat_run(seconds, finished):
        (repeat / "clean_run_bf16.json").write_text(json.dumps(dict(
            stages={"run": dict(seconds=seconds, finished=finished)}, complete=finished)))
    repeat_run(720.0, True)
    text = ex.profile_cost(src, data, budget_hours=1.2, name="clean_run_bf16")[1]
    assert ("the second search costs the tuning stage once more (0.50 h, as timed here) and the run stage of profile "
            "`again` from this run's originals and retrained models (`results/again/clean_run_bf16.json`: 0.20 h), "
            "so the verdicts' whole pipeline from nothing takes **1.50 h** — over our budget by 25 %.") in text
    roomy = ex.profile_cost(src, data, budget_hours=2, name="clean_run_bf16")[1]
    assert "takes **1.50 h** — within our budget." in roomy
    repeat_run(360.0, False)
    text = ex.profile_cost(src, data, budget_hours=1.2, name="clean_run_bf16")[1]
    assert "0.10 h so far, not finished), so the verdicts' whole pipeline from nothing takes **1.40 h** so far." in text
    assert "over our budget by" not in text
    with pytest.raises(MeguError, match="unknown clean run 'clean_run_fp8': use one of clean_run, clean_run_bf16"):
        ex.profile_cost(src, data, name="clean_run_fp8")


def test_replicate_sources_names_each_repeat_and_which_one_the_verdicts_read():
    from megu_lib.tuning import replicate_sources
    assert replicate_sources({}, 33) == ""
    reps = {"clean_run": {"records": {("a", "class"): {}, ("b", "class"): {}},
                          "about": {"started": "2026-12-03T16:21:35",
                                    "probes": [{"train_images_per_s": 813}, {"train_images_per_s": 606}]}},
            "again": {"records": {("a", "class"): {}}, "about": {"probes": [{"train_images_per_s": 1041}]}}}
    text = replicate_sources(reps, 2, used="clean_run")
    assert text.startswith("Repeats: `clean_run`: 2 of 2 studies, made from nothing, begun 2026-12-03 "
                           "(training probes 606–813 images/s); `again`: 1 of 2 studies (training probe 1,041 "
                           "images/s).")
    assert text.endswith("The verdicts' second search is `clean_run`'s; `again` is shown here for the spread of "
                         "the search alone.")
    assert "verdicts" not in replicate_sources(reps, 2) and "verdicts" not in replicate_sources(reps, 2, used="x")
