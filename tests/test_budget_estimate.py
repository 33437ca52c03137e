"""benchmarks/budget_estimate.py: the grid's time under changed studies, from measured runs."""
import json

import pytest


def test_the_same_studies_give_back_the_measured_grid_and_a_dearer_setting_scales_its_rows(bench):
    est = bench("budget_estimate").estimate
    grid = {("retrain", "class"): 100.0, ("finetune", "class"): 50.0, ("ssd", "class"): 20.0}
    old = {("finetune", "class"): 10.0, ("ssd", "class"): 4.0}
    same = est(grid, old, old, 200.0)
    assert same["estimated_grid_seconds"] == 200.0 and same["fixed_seconds"] == 30.0
    # finetune's new setting costs half as much, relative to its task's cap
    new = {("finetune", "class"): 5.0, ("ssd", "class"): 4.0}
    got = est(grid, old, new, 200.0)
    assert got["ratios"] == {"finetune/class": 0.5, "retrain/class": 1.0, "ssd/class": 1.0}
    assert got["estimated_grid_seconds"] == 175.0
    # a study with no setting within the cap (None): its rows stay as measured
    assert est(grid, old, {("finetune", "class"): None}, 200.0)["estimated_grid_seconds"] == 200.0


def test_reads_study_records_and_grid_records(tmp_path, bench):
    mod = bench("budget_estimate")
    (tmp_path / "finetune-class.json").write_text(json.dumps(dict(method="finetune", scenario="class",
                                                                  cap_seconds=30.0, best=dict(seconds=7.5))))
    (tmp_path / "ssd-random.json").write_text(json.dumps(dict(method="ssd", scenario="random", cap_seconds=9.0,
                                                              best=None)))
    (tmp_path / "about.json").write_text("{}")
    assert mod.chosen_cost(tmp_path) == {("finetune", "class"): 0.25, ("ssd", "random"): None}
    grid = tmp_path / "grid"
    grid.mkdir()
    for i, (m, s) in enumerate([("finetune", 3.0), ("finetune", 4.0), ("retrain", 9.0)]):
        (grid / f"{i}.json").write_text(json.dumps(dict(method=m, scenario="class", seconds=s)))
    (grid / "original-x.json").write_text(json.dumps(dict(method="original", scenario="class", seconds=60.0)))
    assert mod.grid_seconds(grid) == {("finetune", "class"): 7.0, ("retrain", "class"): 9.0}
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no study records"):
        mod.main([str(tmp_path / "empty")])
