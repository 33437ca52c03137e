"""The one prepared GPU run (benchmarks/gpu_run.sh) and the joining of what it brought back
(benchmarks/gpu_collect.py). The GPU steps themselves run only on a lent GPU machine."""
import json
import os
import subprocess
import sys
from pathlib import Path

from megu_lib import gap_to_reference

ROOT = Path(__file__).resolve().parents[1]


def _row(forget, method, **m):
    base = dict(retain_acc=90.0, forget_acc=0.0, test_acc=80.0, test_forget_acc=0.0, test_retain_acc=89.0, mia=10.0,
                mia_loss=0.0)
    return dict(forget=forget, method=method, seconds=1.0, **{**base, **m})


def test_join_keeps_each_row_once_and_reports_how_far_repeats_differ(tmp_path, bench):
    first = [_row("Shirt", "retrain"), _row("Shirt", "megu", forget_acc=4.0, mia=14.0), _row("Trouser", "retrain")]
    rest = [_row("Trouser", "retrain", retain_acc=90.5), _row("Trouser", "ssd", forget_acc=99.0),
            _row("Shirt", "megu", forget_acc=50.0)]
    a, b = tmp_path / "megu_vs_all.log", tmp_path / "megu_vs_all_rest.log"
    a.write_text("some progress line\n" + "\n".join(json.dumps(r) for r in first) + "\n")
    b.write_text("\n".join(json.dumps(r) for r in rest) + "\n")
    rows, repeat = bench("gpu_collect").join_rows([a, b])
    got = {(r["forget"], r["method"]): r for r in rows}
    assert len(rows) == 4 and set(got) == {("Shirt", "retrain"), ("Shirt", "megu"), ("Trouser", "retrain"),
                                           ("Trouser", "ssd")}
    assert got[("Shirt", "megu")]["forget_acc"] == 4.0 and got[("Shirt", "megu")]["log"] == a.name  # first log wins
    assert repeat == {"Trouser/retrain": 0.5, "Shirt/megu": 46.0}
    # gap: mean |difference| to the request's retrain row over retain, forget, test accuracy and MIA
    assert got[("Shirt", "megu")]["gap"] == 2.0 and got[("Trouser", "ssd")]["gap"] == 24.75
    assert got[("Shirt", "retrain")]["gap"] == 0.0


def test_gpu_run_skips_every_step_it_has_no_time_for(tmp_path):
    """Out of time, every step is skipped (none is started to be killed), and the run still
    packs the records and says it is done: a partial run brings back what it has."""
    out = tmp_path / "out"
    env = dict(os.environ, GPU_RUN_BUDGET="5", PY=sys.executable, GPU_RUN_TINY="1")
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_run.sh"), str(out)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    log = (out / "gpu_run.log").read_text()
    for step in ("throughput_resnet18", "throughput_vit", "megu_vs_all", "full_profile"):
        assert f"{step}: skipped" in log, log
    assert "start (limit" not in log and log.rstrip().endswith("done")
    assert (out / "full_records.tgz").is_file()


def test_recipe_search_checks_its_candidates_before_any_training(bench):
    """benchmarks/original_recipe.py, also the GPU recipe search (--arch resnet18 --preset gpu):
    a candidate of the wrong form for the architecture is a one-line error before anything trains."""
    import pytest
    mod = bench("original_recipe")
    for argv, form in ((["--arch", "resnet18", "--candidates", "15", "32:5"], "epochs[:augment[:lr]] for resnet18"),
                       (["--arch", "vit", "--candidates", "15:0:0.1", "15:1:x"], "epochs[:augment[:lr]] for vit"),
                       (["--arch", "resnet18", "--candidates", "15:0:0"], "epochs[:augment[:lr]] for resnet18"),
                       (["--candidates", "32:5", "5"], "width:epochs[:convs[:augment]] for small_cnn"),
                       (["--candidates", "32:5:3"], "width:epochs[:convs[:augment]] for small_cnn")):
        with pytest.raises(SystemExit, match=f"must be {form.replace('[', '.').replace(']', '.')}"):
            mod.main(argv)
    assert mod.parse_candidate("30:0:0.1", "resnet18") == (None, None, 30, False, 0.1)
    assert mod.parse_candidate("15", "vit") == (None, None, 15, True, None)
    assert mod.parse_candidate("32:5:1:0", "small_cnn") == (32, 1, 5, False, None)


def test_gpu_run_runs_the_steps_asked_for_and_refuses_unknown_ones(tmp_path):
    base = dict(os.environ, GPU_RUN_BUDGET="5", PY=sys.executable, GPU_RUN_TINY="1")
    script = str(ROOT / "benchmarks" / "gpu_run.sh")
    res = subprocess.run(["bash", script, str(tmp_path / "a")], env=dict(base, GPU_RUN_STEPS="recipe"),
                         capture_output=True, text=True, timeout=120)
    log = (tmp_path / "a" / "gpu_run.log").read_text()
    assert res.returncode == 0 and "recipe: skipped" in log and "throughput" not in log and "full_profile" not in log
    assert not (tmp_path / "a" / "full_records.tgz").exists()
    res = subprocess.run(["bash", script, str(tmp_path / "b")], env=dict(base, GPU_RUN_STEPS="throughput fulll"),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "GPU_RUN_STEPS has no step 'fulll'" in res.stderr and not (tmp_path / "b" / "gpu_run.log").exists()


def test_markdown_table_places_megu_among_the_methods_compared_not_its_ablations(bench):
    rows = [_row("Shirt", "original", forget_acc=80.0), _row("Shirt", "retrain"),
            _row("Shirt", "megu", forget_acc=4.0, time_ratio=0.1), _row("Shirt", "megu_no_T", time_ratio=0.1),
            _row("Shirt", "finetune", forget_acc=2.0, time_ratio=1.5), _row("Trouser", "retrain"),
            _row("Trouser", "megu", forget_acc=2.0, time_ratio=0.2)]
    ref = {r["forget"]: r for r in rows if r["method"] == "retrain"}
    for r in rows:  # as join_rows adds it
        r["gap"] = round(gap_to_reference(r, ref[r["forget"]])["gap"], 2)
    lines = bench("gpu_collect").markdown_table(rows).splitlines()
    assert lines[0] == "| method | Shirt: gap | retained | time | Trouser: gap | retained | time |"
    assert lines[2].startswith("| do nothing | 20.00 | 89.00 | — | — | — | — |")
    assert "| **MeGU** | 1.00 | 89.00 | ×0.10 | 0.50 | 89.00 | ×0.20 |" in lines
    assert "| `megu_no_T` | 0.00 | 89.00 | ×0.10 | — | — | — |" in lines  # an ablation: shown, not ranked
    assert lines[-1].startswith("MeGU's place by gap among the 2 methods compared") and \
        "2 of 2 on Shirt, 1 of 1 on Trouser" in lines[-1]


def test_the_committed_gpu_tables_are_made_from_their_records(bench):
    """The book's Reproduce page includes results/gpu_h200/**/megu_vs_all.md: each must be what
    gpu_collect.markdown_table makes of the record beside it (no table typed or edited by hand)."""
    records = sorted((ROOT / "results" / "gpu_h200").rglob("megu_vs_all.json"))
    assert records, "no GPU record committed"
    for rec in records:
        table = rec.with_suffix(".md")
        assert table.read_text() == bench("gpu_collect").markdown_table(json.loads(rec.read_text())["rows"]), table
