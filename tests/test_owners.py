"""One owner for each meaning: hyperparameter declarations, the profile's derived values,
MeGU's parts shared with its chapter, the typed time accounting, model/data/request checks."""
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import megu_lib as ml
from megu_lib import MeguError, hparams
from megu_lib import profile as pf
from megu_lib.experiments import (
    clean_run_folder,
    clean_run_records,
    load_records,
    profile_records,
    request_records,
    run_experiments,
    run_one,
)
from megu_lib.methods import TimedPart, Timing, get_method, list_methods
from megu_lib.methods.megu import VARIANTS, megu_parts

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- declarations
@pytest.mark.parametrize("method", list_methods())
def test_every_hyperparameter_is_declared_and_its_default_allowed(method):
    spec = get_method(method)
    for name, param in spec.params.items():
        assert isinstance(param, hparams.Param), (method, name)
        param.check(param.default, f"{method}: {name}")  # the default passes its own declaration
        if param.search is not None:  # a tuner only ever proposes allowed values
            rng = random.Random(0)
            for value in [*param.search.grid(4), *(param.search.sample(rng) for _ in range(20))]:
                param.check(value, f"{method}: {name} (search space)")
    assert spec.check_hp({}) == spec.defaults


@pytest.mark.parametrize("value,ok", [(0.1, True), (3, True), (0, False), (-1, False), (float("nan"), False),
                                      (float("inf"), False), (True, False), ("0.1", False), (None, False)])
def test_positive_number_declaration(value, ok):
    p = hparams.lr(0.01)
    assert p.ok(value) is ok
    if not ok:
        with pytest.raises(MeguError, match=r"^x: lr must be a positive number, got "):
            p.check(value, "x: lr")


def test_int_bool_choice_and_none_declarations():
    assert not hparams.Int(10).ok(True) and not hparams.Int(10).ok(2.0) and hparams.Int(10).ok(2)
    assert hparams.flag(True).ok(False) and not hparams.flag(True).ok(1)
    choice = hparams.Choice("a", ("a", "b"))
    assert choice.ok("b") and not choice.ok("c")
    with pytest.raises(MeguError, match="must be one of 'a', 'b', got 'c'"):
        choice.check("c", "m: k")
    eps = get_method("megu").params["noise_eps"]
    assert eps.ok(None) and eps.ok(0.3) and not eps.ok(0) and not eps.ok(float("nan"))
    assert get_method("megu").params["judge"].ok("uniform")  # choices from the judge registry, lazily


def test_search_spaces():
    log = hparams.log_range(1e-4, 1e-1)
    assert log.grid(4) == [0.0001, 0.001, 0.01, 0.1]
    assert all(1e-4 <= log.sample(random.Random(i)) <= 1e-1 for i in range(50))
    assert hparams.one_of(1, 2).grid() == [1, 2]
    assert hparams.linear_range(0, 1, integer=True).grid(3) == [0, 1]
    with pytest.raises(MeguError):
        hparams.log_range(0, 1)
    assert set(hparams.search_space(get_method("megu").params)) >= {"lr", "epochs", "noise_prob", "targets"}


def test_one_dialect_everywhere(tmp_path, trained_small, small):
    """The same bad value is the same line from unlearn, a profile and a sweep."""
    request = ml.make_request(small, "class", forget="Trouser")
    with pytest.raises(MeguError, match=r"^megu: lr must be a positive number, got 0$"):
        ml.unlearn("megu", trained_small, small, request, lr=0)
    p = tmp_path / "p.yaml"
    p.write_text((ROOT / "params" / "smoke.yaml").read_text().replace("hp:\n", "hp:\n  megu: {lr: 0}\n"))
    with pytest.raises(MeguError, match=r"^p.yaml: hp.megu.lr must be a positive number, got 0$"):
        pf.load_config(p)
    from megu_lib.tuning import sweep
    with pytest.raises(MeguError, match=r"^sweep: megu: lr must be a positive number, got 0$"):
        sweep("megu", [{"lr": 0.01}, {"lr": 0}], trained_small, small, request, reference={})
    with pytest.raises(MeguError, match=r"n_exemplars must be an int >= 1, got True"):
        ml.unlearn("megu", trained_small, small, request, n_exemplars=True)
    with pytest.raises(MeguError, match=r"unsir: impair_lr must be a positive number, got inf"):
        ml.unlearn("unsir", trained_small, small, request, impair_lr=float("inf"))


def test_cli_bad_hp_is_one_line_at_load_time(tmp_path):
    """``hp: {megu: {lr: 0}}``: exit 2, one line naming the file and key, nothing trained."""
    p = tmp_path / "lr0.yaml"
    p.write_text((ROOT / "params" / "smoke.yaml").read_text().replace("hp:\n", "hp:\n  megu: {lr: 0}\n"))
    env = {"MEGU_CACHE_DIR": str(tmp_path / "cache"), "MEGU_RESULTS_DIR": str(tmp_path / "res"),
           "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "megu_lib", "run", str(p)], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    seconds = time.perf_counter() - start
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "error: lr0.yaml: hp.megu.lr must be a positive number, got 0\n"
    assert not (tmp_path / "cache").exists() and not (tmp_path / "res").exists()  # nothing trained or written
    assert seconds < 60  # measured: about 2.5 s on 2 cores, most of it importing torch


# --------------------------------------------------------------------------- the profile
def _tiny(tmp_path, **changes):
    cfg = dict(name="tiny", dataset="fashion_mnist", subset={"train": 600, "test": 200},
               model={"arch": "small_cnn", "width": 4}, train={"preset": "fast", "epochs": 1, "batch_size": 64},
               device="cpu", seeds=[0], judge="uniform", eval={"max_retain": 200},
               scenarios={"class": {"forget": ["Trouser"]}}, methods=["retrain", "megu"],
               hp={"megu": {"epochs": 0.5}}, notebook={"forget_class": "Trouser"})
    cfg.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_profile_derives_method_hp_and_judge(tmp_path):
    cfg = pf.load_config(_tiny(tmp_path))
    assert cfg.method_hp("megu") == {"epochs": 0.5, "judge": "uniform"}
    assert cfg.method_hp("megu_no_T") == {"judge": "uniform"}  # every method declaring a judge gets it
    assert "judge" not in cfg.method_hp("finetune")
    assert cfg.full_hp("megu")["lr"] == get_method("megu").defaults["lr"]
    assert cfg.results_folder().name == "tiny" and cfg.own_data


def test_notebook_section_has_a_schema(tmp_path):
    with pytest.raises(MeguError,
                       match="notebook has unknown key 'forget_clas'; known keys: forget_class, sensitivity"):
        pf.load_config(_tiny(tmp_path, notebook={"forget_clas": "Shirt"}))
    with pytest.raises(MeguError, match=r"notebook.sensitivity.lr: each value must be a positive number, got 0"):
        pf.load_config(_tiny(tmp_path, notebook={"sensitivity": {"lr": [0.01, 0]}}))


def test_one_forget_class_policy(tmp_path, small):
    cfg = pf.load_config(_tiny(tmp_path, notebook={"forget_class": "Hat"}))
    with pytest.raises(MeguError, match=r"tiny.yaml: notebook.forget_class: 'Hat' is not a class of .*its classes: "
                                        r"T-shirt/top, Trouser"):
        cfg.forget_class(small)
    cfg = pf.load_config(_tiny(tmp_path, notebook={}))
    assert cfg.forget_class(small) == ("Trouser", None)  # the class scenario's first target
    with pytest.raises(MeguError, match="forget class 'Hat' is not a class"):
        cfg.forget_class(small, "Hat")  # asked for by name: never substituted


def test_another_data_set_gets_its_own_results_folder(tmp_path):
    """A run on another data set never writes into the profile's folder, and the tables of
    a profile read exactly its records."""
    own = pf.load_config(_tiny(tmp_path))
    other = pf.load_config(_tiny(tmp_path), dataset=str(tmp_path / "my images"))
    assert other.results_folder().name.startswith("tiny@my_images-") and other.results_folder() != own.results_folder()
    assert pf.load_config(_tiny(tmp_path), dataset="cifar10").results_folder().name == "tiny@cifar10"


@pytest.mark.slow
def test_chapter_run_and_record_agree(tmp_path, monkeypatch):
    """Chapter 04 shows MeGU through run_one; the runner's record of the same request and seed
    holds the same numbers, and megu_parts gives what megu() trains with."""
    cfg = pf.load_config(_tiny(tmp_path, methods=["retrain", "megu"]))
    data = pf.load_data(cfg)
    out = tmp_path / "res"
    run_experiments(cfg, out_dir=out, log=lambda m: None)
    df = profile_records(cfg, data, out_dir=out)
    request = pf.build_requests(cfg, data, 0)[0]
    stored = df[(df.method == "megu") & (df.request == request.label())].iloc[0]
    original = cfg.original_model(data, 0)
    result, record = run_one(cfg, data, request, "megu", 0, original=original)
    for key in ("retain_acc", "forget_acc", "test_acc", "mia", "mia_loss"):
        assert record["metrics"][key] == pytest.approx(stored[key], abs=1e-9), key
    parts = megu_parts(original, data, request, seed=0, device="cpu", **cfg.method_hp("megu"))
    assert record["details"]["perturbing_labels"] == torch.bincount(parts.y_p, minlength=10).tolist()
    assert parts.neg_classes == [int(request.forget_classes[0])] and parts.pos_classes == parts.y_p.unique().tolist()
    assert parts.hp == {**get_method("megu").defaults, **cfg.method_hp("megu")}
    # the records' timing explains the seconds
    t = record["timing"]
    counted = sum(p["recorded"] - p["wall"] for p in t["parts"] if p["counted"])
    apart = sum(p["wall"] for p in t["parts"] if not p["counted"])
    assert record["seconds"] == pytest.approx(max(0.0, t["wall"] + counted - apart))
    # the CLI's table reads exactly the profile's records: a stray record in the folder is not mixed in
    stray = json.loads(next((out / "records").glob("original-*.json")).read_text())
    (out / "records" / "zz-other-data.json").write_text(json.dumps({**stray, "method": "finetune"}))
    assert "finetune" in set(load_records(out).method)
    assert "finetune" not in set(profile_records(cfg, data, out_dir=out).method)
    # chapter 00's rows: the committed records where they all exist, else made here as the runner makes them
    rows, committed = request_records(cfg, data, request, ["megu"], 0, out_dir=out)
    assert committed and rows["megu"]["metrics"] == stored_record(out, cfg, data, request, "megu")["metrics"]
    assert rows["original"]["method"] == "original"
    made, committed = request_records(cfg, data, request, ["megu"], 0, original=original, run=True, out_dir=out)
    assert not committed and made["megu"]["metrics"] == record["metrics"]
    assert made["original"]["metrics"] == rows["original"]["metrics"]  # the same original, the same evaluation
    (out / "records" / cfg.record_name(data, request, "retrain", 0)).unlink()
    assert not request_records(cfg, data, request, ["retrain"], 0, original=original, out_dir=out)[1]
    with pytest.raises(MeguError, match="needs method names") as err:
        request_records(cfg, data, request, ["original"], 0, out_dir=out)
    assert "\n" not in str(err.value)
    # the clean run's grid: read only when its run stage finished with every record of the grid
    results = tmp_path / "results"
    monkeypatch.setenv("MEGU_RESULTS_DIR", str(results))
    assert clean_run_records(cfg, data)[0] is None and "no finished run stage" in clean_run_records(cfg, data)[1]
    (results / "tiny").mkdir(parents=True)
    (results / "tiny" / "clean_run.json").write_text(json.dumps({"stages": {"run": {"finished": True}}}))
    shutil.copytree(out / "records", clean_run_folder(cfg) / "records")
    n = len(cfg.record_files(data))
    assert clean_run_records(cfg, data) == (None, f"{n - 1} of the grid's {n} runs in results/clean_run/tiny/records")
    rerun = run_one(cfg, data, request, "retrain", 0, original=original)[1]
    (clean_run_folder(cfg) / "records" / cfg.record_name(data, request, "retrain", 0)).write_text(json.dumps(rerun))
    clean, why = clean_run_records(cfg, data)  # the stray record of above stays out
    assert why == "" and len(clean) == n and set(clean.method) == {"original", "retrain", "megu"}
    assert np.isfinite(clean.set_index("method").loc["megu", "gap"])


def stored_record(out, cfg, data, request, method, seed=0):
    return json.loads((out / "records" / cfg.record_name(data, request, method, seed)).read_text())


def test_megu_parts_checks_and_variants(trained_small, small):
    request = ml.make_request(small, "class", forget="Trouser")
    # use_pos is fixed by the ablation: not one of its hyperparameters
    with pytest.raises(MeguError, match=r"megu_no_pos has no hyperparameter\(s\) \['use_pos'\]"):
        megu_parts(trained_small, small, request, method="megu_no_pos", use_pos=True)
    with pytest.raises(MeguError, match="'finetune' is not MeGU"):
        megu_parts(trained_small, small, request, method="finetune")
    parts = megu_parts(trained_small, small, request, method="megu_no_noise", judge="uniform")
    assert parts.pos is None and parts.neg is None and parts.parts[0].name == "judge"
    assert set(VARIANTS) == {m for m in list_methods() if m.startswith("megu_")}


# --------------------------------------------------------------------------- time accounting
def test_timing_counts_cached_parts_and_leaves_one_off_parts_apart():
    t = Timing.count(10.0, [TimedPart("noises", wall=0.5, recorded=4.0, counted=True),
                            TimedPart("judge", wall=2.0, recorded=30.0, counted=False)])
    assert t.seconds == pytest.approx(10.0 - 0.5 + 4.0 - 2.0)
    assert t.apart == {"judge": 30.0} and t.from_cache == {"noises": 4.0}
    assert Timing.count(1.0).seconds == 1.0


def test_unlearn_result_unpacks_and_reports_its_timing(trained_small, small, tmp_path):
    request = ml.make_request(small, "class", forget="Trouser")
    result = ml.unlearn("retrain", trained_small, small, request, cache=tmp_path)
    model, seconds, details = result
    assert seconds == result.timing.seconds and result.timing.parts[0].name == "training"
    assert seconds == pytest.approx(model.train_seconds, abs=0.5)  # retrain costs its recorded training time
    assert "seconds" not in details and "extra_seconds" not in details


# --------------------------------------------------------------------------- model, data, request
def test_model_data_and_request_must_agree(trained_small, small):
    request = ml.make_request(small, "subclass", forget="Shirt")  # coarse labels: 4 classes, the model has 10
    for call in (lambda: ml.unlearn("finetune", trained_small, small, request),
                 lambda: ml.evaluate(trained_small, small, request),
                 lambda: megu_parts(trained_small, small, request, judge="uniform")):
        with pytest.raises(MeguError, match=r"the model predicts 10 classes but the request's 'coarse' labels"):
            call()
    other = small.subset(2000, 500, seed=1)
    with pytest.raises(MeguError, match="the request was made for another data set"):
        ml.evaluate(trained_small, other, ml.make_request(small, "class", forget="Trouser"))


def test_no_document_outside_the_repository_is_cited():
    hits = subprocess.run(["git", "grep", "-n", "MEGU" + "_SPEC"], cwd=ROOT, capture_output=True, text=True).stdout
    assert hits == ""
