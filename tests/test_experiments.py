"""The experiment runner: configs, records, resuming, tables, the CLI's bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from megu_lib import MeguError, tables
from megu_lib import experiments as ex
from megu_lib import profile as pf

ROOT = Path(__file__).resolve().parents[1]

TINY = dict(name="tiny", dataset="fashion_mnist", subset={"train": 1200, "test": 300},
            model={"arch": "small_cnn", "width": 8}, train={"preset": "fast", "epochs": 2, "batch_size": 64},
            device="cpu", seeds=[0, 1], judge="uniform", eval={"max_retain": 200},
            scenarios={"class": {"forget": ["Trouser"]}}, methods=["retrain", "megu_no_noise"],
            hp={"megu_no_noise": {"epochs": 0.5}})


def _write(tmp_path, **changes):
    cfg = {**TINY, **changes}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_profiles_in_params_are_valid():
    for name in pf.available_profiles():
        cfg = pf.load_config(name)
        assert cfg.name == name and "retrain" in cfg.methods


def test_runner_records_resume_and_tables(tmp_path):
    cfg = pf.load_config(_write(tmp_path))
    out = tmp_path / "res"
    records = ex.run_experiments(cfg, out_dir=out, cache=tmp_path / "cache", log=lambda m: None)
    files = sorted(records.glob("*.json"))
    assert len(files) == 2 * 2 + 2  # (2 methods + the original) x 2 seeds
    rec = json.loads(files[-1].read_text())
    for key in ("config_hash", "seed", "environment", "metrics", "seconds", "device", "per_class"):
        assert key in rec
    assert "git_commit" in rec["environment"] and "torch" in rec["environment"]
    # an interrupted run: delete one record and damage nothing else; the rerun makes only that one
    victim = next(f for f in files if not f.name.startswith("original"))
    victim.unlink()
    mtimes = {f: f.stat().st_mtime_ns for f in records.glob("*.json")}
    logs = []
    ex.run_experiments(cfg, out_dir=out, cache=tmp_path / "cache", log=logs.append)
    assert "1 to do" in logs[0]
    assert all(f.stat().st_mtime_ns == t for f, t in mtimes.items())
    assert len(list(records.glob("*.json"))) == len(files)
    # each call that ran something logged its time; a call that only loads (as the book's chapters do) logs nothing
    ex.run_experiments(cfg, out_dir=out, cache=tmp_path / "cache", log=lambda m: None)
    runs = sum(1 for f in files if not f.name.startswith("original"))  # the originals are not runs
    assert [e["runs"] for e in json.loads((out / "run_log.json").read_text())] == [runs, 1]
    df = ex.load_records(out)
    table = tables.results_table(df, "class", tables.all_methods(df))
    assert list(table.index) == ["original", "retrain", "megu_no_noise"]
    assert set(table.columns.get_level_values(0)) >= {"retain_acc", "forget_acc", "test_acc", "mia", "seconds", "gap"}
    assert table.loc["retrain", ("gap", "mean")] == 0
    # two seeds: different but close numbers
    two = df[df.method == "retrain"].sort_values("seed")
    assert two.test_acc.iloc[0] != two.test_acc.iloc[1]
    assert abs(two.test_acc.iloc[0] - two.test_acc.iloc[1]) < 20
    assert tables.best_per_column(table)["gap"] == "megu_no_noise"
    assert tables.style_table(table).to_html()
    col = tables.per_class_change(df, "class:Trouser")
    assert "Trouser" not in col.columns and (col.loc["original"] == 0).all()


@pytest.mark.parametrize("changes,match", [
    (dict(methods=["retrain", "forgetnet"]), "unknown method 'forgetnet'; use one of retrain"),
    (dict(scenarios={"sideways": {"forget": ["Shirt"]}}), "unknown scenario 'sideways'"),
    (dict(seeds=[0, "one"]), "seeds must be a list of integers"),
    (dict(seeds=[1.5]), "seeds must be a list of integers"),
    (dict(hp={"megu": {"warp": 3}}), r"hp.megu has no hyperparameter\(s\) \['warp'\]"),
    (dict(judge="oracle"), "unknown judge"),
    (dict(model={"arch": "alexnet"}), "unknown model"),
    (dict(methods=["finetune"]), "must include 'retrain'"),
    (dict(train={"preset": "fast", "lr": -1}), "positive number"),
])
def test_bad_configs(tmp_path, changes, match):
    with pytest.raises(MeguError, match=match):
        pf.load_config(_write(tmp_path, **changes))


def test_missing_key_and_malformed_yaml(tmp_path):
    cfg = dict(TINY)
    del cfg["methods"]
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(MeguError, match=r"m.yaml: missing key 'methods'"):
        pf.load_config(p)
    p.write_text("dataset: [unclosed\n")
    with pytest.raises(MeguError, match="malformed YAML"):
        pf.load_config(p)
    with pytest.raises(MeguError, match="unknown profile 'nope'"):
        pf.load_config("nope")


def test_forget_target_absent_fails_before_training(tmp_path):
    cfg = pf.load_config(_write(tmp_path, scenarios={"class": {"forget": ["Hat"]}}))
    with pytest.raises(MeguError, match="Hat"):
        ex.run_experiments(cfg, out_dir=tmp_path / "res", cache=tmp_path / "cache", log=lambda m: None)
    assert not list((tmp_path / "cache").rglob("*.pt"))


def test_a_judge_wanting_more_images_per_class_than_the_data_holds_fails_before_training(tmp_path):
    # 1,200 training images: about 120 of each class, fewer than the judge would draw
    cfg = pf.load_config(_write(tmp_path, hp={"megu_no_noise": {"epochs": 0.5, "n_exemplars": 500}}))
    with pytest.raises(MeguError, match=r"^cfg.yaml: megu_no_noise draws n_exemplars=500 images per class but the "
                                        r"training split holds only \d+ of '[^']+'; "
                                        r"set hp.megu_no_noise.n_exemplars <= \d+$"):
        ex.run_experiments(cfg, out_dir=tmp_path / "res", cache=tmp_path / "cache", log=lambda m: None)
    assert not (tmp_path / "cache").exists() and not list((tmp_path / "res").rglob("*.json"))


def test_cli_exit_2_without_traceback(tmp_path):
    p = _write(tmp_path, methods=["retrain", "forgetnet"])
    res = subprocess.run([sys.executable, "-m", "megu_lib", "run", str(p)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "unknown method 'forgetnet'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_other_profiles_are_shown_only_when_every_record_is_committed(tmp_path):
    """A GPU profile that ran out of time (some records, not all) is left out of the chapters'
    side-by-side tables and claims, with a line saying how many records are missing."""
    path = _write(tmp_path, seeds=[0])
    cfg = pf.load_config(path)
    data = pf.load_data(cfg)
    records = ex.run_experiments(cfg, out_dir=pf.results_dir() / "tiny", cache=tmp_path / "cache", log=lambda m: None)
    df, left_out = tables.other_records([str(path)], data)
    assert left_out == {} and sorted(df.method.unique()) == ["megu_no_noise", "original", "retrain"]
    assert tables.left_out_note(left_out) == ""
    df, left_out = tables.other_records([str(path)], data, exclude=(str(path),))
    assert df is None and left_out == {}
    next(p for p in sorted(records.glob("*.json")) if '"megu_no_noise"' in p.read_text()).unlink()
    df, left_out = tables.other_records([str(path)], data)
    assert df is None and "1 of 3 record(s) of profile 'tiny' are missing" in left_out[str(path)]
    assert tables.left_out_note(left_out).startswith(f"*Not shown: `{path}` (1 of 3 record(s)")
