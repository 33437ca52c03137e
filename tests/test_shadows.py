"""megu_lib.shadows: the privacy run of a profile (shadow models trained, recorded, resumed),
its bad input, and the sanity anchors on a small pool: no unlearning is found, a second
retraining is not."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

import megu_lib.profile as pf
from megu_lib.errors import MeguError
from megu_lib.shadows import (
    ANCHORS,
    REFERENCE,
    auc_by_shadows,
    auc_difference,
    mia_comparison,
    privacy_display,
    privacy_folder,
    privacy_results,
    privacy_seconds,
    privacy_setup,
    privacy_table,
    privacy_variants,
    rank_agreement,
    roc_curves,
    run_privacy,
    run_privacy_settings,
    settings_comparison,
)


def _profile(tmp_path, name="tiny", **privacy):
    cfg = dict(name=name, dataset="fashion_mnist", model={"arch": "small_cnn", "width": 4, "convs": 1},
               # 100 members per shadow, 40 steps without augmentation: a weak model (about 30 % test
               # accuracy) whose confidence on its members still differs from a model that never saw them
               train={"preset": "fast", "epochs": 20, "batch_size": 50, "lr": 0.05, "augment": False},
               device="cpu", seeds=[0],
               judge="uniform", scenarios={"random": {"forget": [0.1]}}, methods=["retrain", "finetune", "neggrad"],
               hp={"finetune": {"epochs": 0.5}},
               privacy={"pool": 200, "shadows": 16, "forget_size": 10, "eval_size": 50, "fprs": [0.1],
                        "methods": ["finetune"], **privacy})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line(match, fn, *args, **kwargs):
    with pytest.raises(MeguError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_privacy_sections_are_one_line_errors_before_any_training(tmp_path):
    _one_line(r"^tiny.yaml: privacy has unknown key 'shadow'", pf.load_config, _profile(tmp_path, shadow=4))
    _one_line(r"^tiny.yaml: privacy: n_shadows=8 is too few for FPR 0.001 .* use n_shadows >= \d+",
              pf.load_config, _profile(tmp_path, shadows=8, fprs=[0.001]))
    _one_line(r"^tiny.yaml: privacy: a pool of 30 is too small for forget sets of 20",
              pf.load_config, _profile(tmp_path, pool=30, forget_size=20))
    _one_line(r"privacy.methods: 'ssd' is not a method of the profile", pf.load_config,
              _profile(tmp_path, methods=["ssd"]))
    _one_line(r"privacy.shadows must be an int >= 2", pf.load_config, _profile(tmp_path, shadows="many"))
    _one_line(r"^tiny.yaml: privacy.train: ", pf.load_config, _profile(tmp_path, train={"epochs": -1}))
    # a pool larger than the data set: at setup, before training
    cfg = pf.load_config(_profile(tmp_path, pool=10 ** 6))
    _one_line(r"privacy.pool is 1000000 but fashion_mnist has 60000 training images", run_privacy, cfg)
    # a profile without the section
    plain = dict(yaml.safe_load(_profile(tmp_path).read_text()))
    plain.pop("privacy")
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(plain))
    _one_line(r"the profile has no privacy section", run_privacy, pf.load_config(tmp_path / "plain.yaml"))
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()  # nothing trained or written


def test_a_judge_wanting_more_images_per_class_than_a_shadow_holds_fails_before_training(tmp_path, fmnist):
    cfg = dict(yaml.safe_load(_profile(tmp_path, methods=["finetune"]).read_text()))
    cfg["methods"].append("megu")
    cfg["hp"]["megu"] = {"n_exemplars": 40}  # 100 members per shadow: about 10 of each class
    cfg["privacy"]["variants"] = {"megu": {"methods": ["megu"]}}
    (tmp_path / "judged.yaml").write_text(yaml.safe_dump(cfg))
    cfg = pf.load_config(tmp_path / "judged.yaml")
    msg = (r"^judged.yaml: privacy.variants.megu: megu draws n_exemplars=40 images per class but shadow \d+ holds "
           r"only \d+ of '[^']+'; use a larger pool or hp.megu.n_exemplars <= \d+$")
    _one_line(msg, run_privacy, cfg, data=fmnist, variant="megu")
    # every setting is checked before the first one trains: the section (fine) is not run either
    _one_line(msg, run_privacy_settings, cfg, data=fmnist)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()


def test_bad_privacy_variants_are_one_line_errors_naming_the_variant(tmp_path):
    _one_line(r"^tiny.yaml: privacy.variants.long has unknown key 'epochs'", pf.load_config,
              _profile(tmp_path, variants={"long": {"epochs": 30}}))
    _one_line(r"^tiny.yaml: privacy.variants.few: n_shadows=8 is too few for FPR 0.001", pf.load_config,
              _profile(tmp_path, variants={"few": {"shadows": 8, "fprs": [0.001]}}))
    _one_line(r"^tiny.yaml: privacy.variants.long.train: ", pf.load_config,
              _profile(tmp_path, variants={"long": {"train": {"epochs": -1}}}))
    _one_line(r"privacy.variants: 'a b' is not a usable name", pf.load_config,
              _profile(tmp_path, variants={"a b": {"shadows": 4}}))
    _one_line(r"privacy.variants.long must map keys of the section to new values", pf.load_config,
              _profile(tmp_path, variants={"long": {}}))
    _one_line(r"privacy.variants.long.variants must map a name", pf.load_config,
              _profile(tmp_path, variants={"long": {"variants": {"x": {"shadows": 4}}}}))
    cfg = pf.load_config(_profile(tmp_path, variants={"long": {"shadows": 14}}))
    assert privacy_variants(cfg) == ["long"]
    _one_line(r"the privacy section has no variant 'short'; its variants: long", run_privacy, cfg, variant="short")
    assert not (tmp_path / "results").exists()


def test_the_privacy_section_leaves_the_grids_hash_alone(tmp_path):
    with_section = pf.load_config(_profile(tmp_path))
    plain = dict(yaml.safe_load(_profile(tmp_path).read_text()))
    plain.pop("privacy")
    (tmp_path / "tiny2.yaml").write_text(yaml.safe_dump(plain))
    assert with_section.hash() == pf.load_config(tmp_path / "tiny2.yaml").hash()


def test_each_shadow_forgets_its_own_members(tmp_path, fmnist):
    cfg = pf.load_config(_profile(tmp_path))
    setup = privacy_setup(cfg, fmnist)
    tx, ty = setup.target_data()
    for i in (0, 1, 15):
        data, request = setup.shadow(i)
        assert len(data.train_y) == 100 and len(request.forget_idx) == 10
        assert len(request.forget_idx) + len(request.retain_idx) == 100
        # the forget set's images are the plan's forgotten targets
        forgotten = setup.plan.forgotten[i]
        assert (data.train_x[request.forget_idx] == tx[np.array(forgotten)]).all()
        assert (data.test_x == fmnist.test_x).all()  # the test split stays whole
    # twins forget complementary halves of the targets
    assert (setup.plan.forgotten[0] ^ setup.plan.forgotten[1]).all()


def test_a_privacy_run_records_resumes_and_puts_the_anchors_at_both_ends(tmp_path, monkeypatch):
    """One run (the slow part: 48 small models, about half a minute on one core) and everything read from it,
    then a variant with a longer schedule on 14 shadows."""
    variant = {"shadows": 14, "train": {"epochs": 30}}
    cfg = pf.load_config(_profile(tmp_path, variants={"long": variant}))
    logs, again = [], []
    folder = run_privacy(cfg, log=logs.append)
    run_privacy(cfg, log=again.append)
    names = [REFERENCE, *ANCHORS, "finetune"]
    assert len(list(folder.glob("*.json"))) == 16 * len(names)
    assert "64 to do" in logs[0] and "0 to do" in again[0]
    log = json.loads((privacy_folder(cfg) / "run_log.json").read_text())
    assert [e["command"] for e in log] == ["privacy"]  # the resume that did nothing is not logged
    record = json.loads(next(folder.glob("finetune-000-*.json")).read_text())
    assert record["hp"] == {"epochs": 0.5} and record["seconds"] > 0
    anchor = json.loads(next(folder.glob("retrain-000-*.json")).read_text())
    reference = json.loads(next(folder.glob("reference-000-*.json")).read_text())
    assert anchor["hp"] == {"init_seed": 10_000} and anchor["confidence"] != reference["confidence"]

    results = privacy_results(cfg)
    assert sorted(results.confidence) == sorted(names)
    assert results.confidence["finetune"].shape == (16, 20)
    table = privacy_table(results, n_boot=50)
    # no unlearning: the original still holds its members, and the attack finds it
    assert table.loc["original", "auc"] > 60 and table.loc["original", "auc_lo"] > 50
    # a second retraining cannot be told from the reference
    assert table.loc["retrain", "auc_lo"] < 50 < table.loc["retrain", "auc_hi"]
    assert table.loc["original", "auc"] > table.loc["retrain", "auc_hi"]
    assert (table["auc_lo"] <= table["auc"]).all() and (table["auc"] <= table["auc_hi"]).all()
    assert (table["pairs"] == 8 * 10).all() and (table["models_per_example"] == 8).all()
    assert "tpr@10%" in table.columns
    assert not table.unchanged.any()  # finetune moved the weights

    spread = auc_by_shadows(results, "original", repeats=5)
    assert sorted(spread.shadows.unique()) == [12, 16]
    assert list(spread.groupby("shadows").size()) == [5, 1]
    assert spread.auc.between(0, 100).all()
    assert spread[spread.shadows == 16].auc.item() == pytest.approx(table.loc["original", "auc"])
    with pytest.raises(MeguError, match="use an even number from 10 to 16"):
        auc_by_shadows(results, "original", sizes=[6])
    curves = roc_curves(results)
    assert set(curves) == {*ANCHORS, "finetune"}
    assert curves["original"].fpr[0] == 0 and curves["original"].tpr[-1] == 1

    # paired difference: the original is the easier to tell from retraining, by about the AUCs' difference
    d = auc_difference(results, "original", "retrain", n_boot=50)
    assert d["diff"] == pytest.approx(table.loc["original", "auc"] - table.loc["retrain", "auc"])
    assert 0 < d["lo"] <= d["diff"] <= d["hi"]
    assert auc_difference(results, "finetune", "finetune", n_boot=10)["diff"] == 0

    # the variant: its own records beside the section's (the shadows train longer), its own line in the run log;
    # the methods' settings are looked up on the profile's own recipe (where its studies were run)
    seen = []
    method_hp = pf.ExperimentConfig.method_hp
    monkeypatch.setattr(pf.ExperimentConfig, "method_hp",
                        lambda self, *a, **k: seen.append(dict(self.train)) or method_hp(self, *a, **k))
    run_privacy(cfg, variant="long", log=logs.append)
    assert "[privacy tiny long] 14 shadows x 4 models, 56 to do" in logs[-2]
    assert seen and all(t == cfg.train for t in seen)
    assert len(list(folder.glob("*.json"))) == 16 * len(names) + 14 * len(names)
    long = privacy_results(cfg, variant="long")
    assert long.confidence["original"].shape == (14, 20) and long.setup.variant == "long"
    log = json.loads((privacy_folder(cfg) / "run_log.json").read_text())
    assert [e["command"] for e in log] == ["privacy", "privacy long"]
    assert privacy_seconds(cfg) == log[0]["seconds"] and privacy_seconds(cfg, "long") == log[1]["seconds"]
    # shadow 0's original twice: the section's and the variant's (another plan, another schedule)
    assert len(list(folder.glob("original-000-*.json"))) == 2

    # a missing record is an error that names the command
    next(folder.glob("finetune-003-*.json")).unlink()
    _one_line(r"1 of 64 privacy records are missing .* run `python -m megu_lib privacy tiny`", privacy_results, cfg)
    next(f for f in folder.glob("finetune-000-*.json") if json.loads(f.read_text())["plan"]["shadows"] == 14).unlink()
    _one_line(r"1 of 56 privacy records are missing .* run `python -m megu_lib privacy tiny --variant long`",
              privacy_results, cfg, variant="long")


def test_rank_agreement():
    import pandas as pd
    a = pd.Series({"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0})
    assert rank_agreement(a, a * 10) == pytest.approx(1.0)
    assert rank_agreement(a, -a) == pytest.approx(-1.0)
    assert np.isnan(rank_agreement(a, pd.Series({"x": 1.0, "q": 2.0})))
    # a constant side (e.g. every MIA distance 0 on a tiny profile): NaN and no warning,
    # which the book's build would treat as an error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(rank_agreement(a, a * 0 + 5.0))


def _table(aucs):
    t = pd.DataFrame({"auc": aucs}, dtype=float)
    t["auc_lo"], t["auc_hi"] = t.auc - 2, t.auc + 2
    for col, v in (("tpr@1%", 5.0), ("tpr@0.1%", 1.0), ("forget_quality", 0.5), ("score", 0.45),
                   ("test_acc", 88.0), ("seconds", 3.0)):
        t[col] = v
    return t


def test_mia_comparison_pairs_runs_and_ranks():
    rows = []
    for seed in (0, 1):
        for method, mia in (("retrain", 50.0), ("original", 70.0), ("a", 60.0), ("b", 52.0)):
            rows.append(dict(scenario="random", request="random:0.1", seed=seed, method=method,
                             mia=mia + (seed if method == "retrain" else 0)))
    rows.append(dict(scenario="class", request="class:Shirt", seed=0, method="a", mia=0.0))  # another scenario: ignored
    both, rho = mia_comparison(pd.DataFrame(rows), _table({"original": 90, "retrain": 50, "a": 70, "b": 60}))
    assert list(both.index) == ["original", "a", "b"]  # retrain left out, most exposed first
    assert both.loc["a", "|MIA − retrain's| (pts)"] == pytest.approx((10 + 9) / 2)
    assert rho == pytest.approx(1.0)
    with pytest.raises(MeguError, match="needs random-scenario records with retrain"):
        mia_comparison(pd.DataFrame(rows[-1:]), _table({"a": 1}))


def test_settings_comparison_lines_up_the_settings_and_ranks_the_changed_methods():
    first = _table({"original": 50.0, "retrain": 49.0, "a": 60.0, "b": 55.0, "c": 52.0, "idle": 50.0})
    first["unchanged"] = [False, False, False, False, False, True]
    second = _table({"original": 80.0, "retrain": 50.0, "a": 70.0, "b": 65.0, "c": 60.0, "idle": 80.0})
    second.loc["b", "tpr@1%"] = 12.5
    second = second.drop(index="c").assign(unchanged=False)
    shown, rho = settings_comparison({"main": first, "memorising": second})
    assert list(shown.index) == ["original", "retrain", "a", "b", "idle"]  # models both settings have
    assert list(shown.columns) == ["AUC, main", "TPR at 1% FPR, main", "AUC, memorising", "TPR at 1% FPR, memorising"]
    assert shown.loc["a", "AUC, memorising"] == "70.0 [68.0,\u00a072.0]" and shown.loc["b", shown.columns[3]] == "12.50"
    # a, b only (anchors and the method that did nothing aside): too few to rank
    assert np.isnan(rho)
    second.loc["c"] = second.loc["b"]
    second.loc["c", "auc"] = 58.0
    assert settings_comparison({"main": first, "memorising": second})[1] == pytest.approx(1.0)
    second.loc["c", "auc"] = 75.0
    assert settings_comparison({"main": first, "memorising": second})[1] == pytest.approx(-0.5)
    assert np.isnan(settings_comparison({"main": first})[1])


def test_privacy_display_is_narrow_and_keeps_the_interval():
    table = _table({"original": 91.25, "megu": 60.0, "ssd": 91.25})
    table["unchanged"] = [False, False, True]
    shown = privacy_display(table)
    assert list(shown.index) == ["original", "megu", "ssd (unchanged)"]
    assert shown.loc["original", "AUC % [95 % CI]"] == "91.2 [89.2,\u00a093.2]"
    assert shown.loc["megu", "TPR at 1% FPR"] == "5.00"
    assert list(shown.columns) == ["AUC % [95 % CI]", "TPR at 1% FPR", "TPR at 0.1% FPR", "forget quality", "score",
                                   "test acc", "s"]


def test_the_run_log_shows_no_path_of_the_machine(tmp_path, monkeypatch):
    from megu_lib.profile import shown_path as _shown_path
    results = tmp_path / "somewhere" / "results"
    monkeypatch.setenv("MEGU_RESULTS_DIR", str(results))
    monkeypatch.chdir(tmp_path)
    assert _shown_path(results / "main" / "privacy") == "somewhere/results/main/privacy"  # below the working directory
    elsewhere = tmp_path / "book"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a notebook's folder: the results folder is not below it
    assert _shown_path(results / "main" / "privacy") == "results/main/privacy"
    assert _shown_path(tmp_path / "other") == str((tmp_path / "other").resolve())  # neither: the whole path
