"""megu_lib.tables, claims and the records figures: the tables, sentences, figures and verdicts of the chapters on
experiments, ablations and claims — on synthetic records (fast), and once on a tiny real run."""
import json
import re
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from megu_lib import MeguError, plotting, tables, tuning, verdicts  # noqa: E402
from megu_lib import claims as cl  # noqa: E402
from megu_lib import experiments as ex  # noqa: E402
from megu_lib import profile as pf  # noqa: E402

CLASSES = ["a", "b", "c", "d"]
BASE = dict(retain_acc=90.0, forget_acc=0.0, test_acc=85.0, mia=10.0)


def _records(values: dict, seeds=(0, 1), scenarios=("class", "subclass", "random"), dataset="fashion_mnist[200/50]",
             arch="small_cnn", jitter=0.5) -> pd.DataFrame:
    """Records: ``values[method]`` = dict of metric offsets from retrain's, plus ``seconds`` and ``hp``."""
    rows = []
    for scenario in scenarios:
        request = f"{scenario}:a" if scenario != "random" else "random:0.1"
        for seed in seeds:
            for method, v in values.items():
                m = {k: BASE[k] + v.get(k, 0.0) + jitter * seed for k in BASE}
                per_class = {c: 80.0 + v.get("collateral", 0.0) * i for i, c in enumerate(CLASSES)}
                rows.append(dict(config="t", dataset=dataset, arch=arch, scenario=scenario, forget=["a"],
                                 request=request, method=method, seed=seed, seconds=v.get("seconds", 1.0) + seed,
                                 test_forget_acc=0.0, test_retain_acc=m["test_acc"], mia_loss=m["mia"],
                                 per_class=per_class, hp=dict(v.get("hp", {"lr": 0.01, "epochs": 2})), **m))
    return ex.add_gaps(pd.DataFrame(rows))


VALUES = {
    "original": dict(forget_acc=90, mia=60, seconds=100),
    "retrain": dict(seconds=100),
    "finetune": dict(retain_acc=-3, forget_acc=5, seconds=50, collateral=-2),
    "ssd": dict(retain_acc=-1, forget_acc=2, mia=10, seconds=5),
    "unsir": dict(retain_acc=-2, forget_acc=1, mia=1, seconds=10),
    "megu": dict(retain_acc=-0.2, forget_acc=0.5, mia=0.5, seconds=20, collateral=-0.5),
    "megu_no_T": dict(retain_acc=-2, forget_acc=4, seconds=19),
    "megu_no_pos": dict(retain_acc=-0.1, forget_acc=0.2, seconds=18),
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_main_methods_and_tables():
    df = _records(VALUES)
    assert tables.main_methods(df) == ["original", "retrain", "finetune", "megu", "ssd", "unsir"]
    assert tables.scenarios_of(df) == ["class", "subclass", "random"]
    table = tables.results_table(df, "class")
    assert list(table.index) == tables.main_methods(df)
    assert "megu_no_T" not in table.index
    html = tables.style_table(table, uuid="x").to_html()
    assert "±" in html and "gap to retrain (pts)" in html and "T_x_" in html
    one_seed = _records(VALUES, seeds=(0,))
    assert "±" not in tables.style_table(tables.results_table(one_seed, "class")).to_html()


def test_best_rows_marks_ties():
    values = {**VALUES, "unsir": dict(VALUES["megu"])}  # unsir ties with megu everywhere but time
    table = tables.results_table(_records(values), "class")
    best = tables.best_rows(table)
    assert best["gap"] == {"megu", "unsir"}
    assert best["seconds"] == {"ssd"}


def test_gap_summary_says_plainly_who_is_closest():
    df = _records(VALUES)
    summary = tables.gap_summary(df)
    assert summary["best"] == "megu" and summary["focus_rank"] == 1
    assert "That is MeGU" in summary["sentence"]
    worse = _records({**VALUES, "megu": dict(retain_acc=-5, forget_acc=9, mia=9, seconds=20)})
    summary = tables.gap_summary(worse)
    assert summary["best"] != "megu" and summary["focus_rank"] > 1
    assert "It is not MeGU" in summary["sentence"] and summary["best"] in summary["sentence"]
    assert set(summary["per_scenario"]) == {"class", "subclass", "random"}
    ranking = tables.gap_ranking(worse, "class")
    assert list(ranking["rank"]) == list(range(1, len(ranking) + 1))
    assert "retrain" not in ranking.index and "original" in ranking.index  # the do-nothing row
    assert "Doing nothing (the original model) is" in summary["sentence"]


def test_claims_verdicts_are_computed():
    df = _records(VALUES)
    claims = cl.check_claims(df).set_index("claim")
    assert set(claims.verdict) <= set(cl.VERDICTS)
    retain = claims.loc[claims.index.str.startswith("keeps retain accuracy")].iloc[0]
    assert retain.verdict == "holds" and abs(retain.value - 0.2) < 1e-9  # |−0.2| points
    ssd = claims.loc[claims.index.str.contains("SSD")].iloc[0]
    # MIA: retrain 10, megu 10.5, ssd 20 (+ seed jitter) -> 47.5 and 46.3 % lower on the two seeds: the
    # mean is short of 49 %, but with two seeds the interval spans it
    assert ssd.verdict == "inconclusive" and 40 < ssd.value < 49 and ssd.low < 49 < ssd.high
    unsir = claims.loc[claims.index.str.contains("UNSIR")].iloc[0]
    assert unsir.verdict == "does not hold" and 0 < unsir.value < 9.8
    time = claims.loc[claims.index.str.contains("less time")].iloc[0]
    assert time.verdict == "holds" and time.value > 59
    for s in ("class", "subclass", "random"):
        assert claims.loc[f"beats the baselines in {s} forgetting"].verdict == "holds"
    cifar = claims.loc[claims.index.str.contains("CIFAR")].iloc[0]
    assert cifar.verdict == "not testable here" and "no CIFAR copy" in cifar.why
    assert "1 hold" not in cl.claims_sentence(cl.check_claims(df))


def test_claims_for_both_megu_variants_and_baselines_exclude_them():
    values = {**VALUES, "megu_paper": dict(retain_acc=-0.1, forget_acc=0.1, mia=0.1, seconds=30)}
    claims = cl.check_claims(_records(values))
    assert set(claims.method) == {"MeGU (ours)", "MeGU (paper's settings)"}
    # megu_paper is closer to retrain than megu, yet megu still beats every *baseline*
    ours = claims[(claims.method == "MeGU (ours)") & claims.claim.str.startswith("beats")]
    assert (ours.verdict == "holds").all()
    assert cl.baselines_of(_records(values)) == ["finetune", "ssd", "unsir"]
    assert "megu_paper" in tables.gap_summary(_records(values))["sentence"]
    assert "method" in cl.style_claims(claims).to_html()
    effects = tables.ablation_effects(_records(values))
    assert "the paper's literal settings" in set(effects.component)


def test_claims_not_testable_and_cifar_groups():
    no_ssd = {k: v for k, v in VALUES.items() if k != "ssd"}
    claims = cl.check_claims(_records(no_ssd, scenarios=("class",))).set_index("claim")
    assert claims.loc[claims.index.str.contains("SSD")].iloc[0].verdict == "not testable here"
    assert claims.loc["beats the baselines in random forgetting"].verdict == "not testable here"
    zero_mia = {**VALUES, "ssd": dict(VALUES["ssd"], mia=-10)}
    claims = cl.check_claims(_records(zero_mia, jitter=0)).set_index("claim")
    assert "MIA is 0" in claims.loc[claims.index.str.contains("SSD")].iloc[0].why
    cifar = _records(VALUES, dataset="cifar10", arch="resnet18")
    both = pd.concat([_records(VALUES), cifar], ignore_index=True)
    claims = cl.check_claims(both)
    assert set(claims.data) >= {"fashion_mnist / small_cnn", "cifar10 / resnet18"}
    row = claims[claims.claim.str.contains("CIFAR")].iloc[0]
    assert row.verdict == "holds" and "cifar100 / vit" in row.why
    html = cl.style_claims(claims).to_html()
    assert "data / model" in html and "holds" in html


def test_ablations():
    df = _records(VALUES)
    effects = tables.ablation_effects(df)
    assert set(effects.ablation) == {"megu_no_T", "megu_no_pos"}
    no_t = effects[effects.ablation == "megu_no_T"]
    assert (no_t.delta_gap > 0).all()  # removing T moves MeGU away from retrain here
    assert (effects[effects.ablation == "megu_no_pos"].delta_gap < 0).all()
    text = verdicts.ablations_verdict(effects).sentence  # the chapter's verdict reads these effects
    assert "no transition matrix T" in text and "no positive noise" in text and "closer" in text
    table = tables.ablation_table(effects)
    assert table.index.names == ["component", "scenario"] and "Δ gap (pts)" in table.columns
    with pytest.raises(MeguError, match="MeGU"):
        tables.ablation_effects(df[df.method != "megu"])


def test_collateral():
    df = _records(VALUES, scenarios=("class",))
    overlap = pd.Series([1.0, 0.1, 0.2, 0.3], index=CLASSES)
    frame = tables.collateral_frame(df, "class:a", overlap)
    assert set(frame["class"]) == {"b", "c", "d"} and "original" not in set(frame.method)
    # VALUES' collateral: change grows with the class index, i.e. with the overlap here
    summary = tables.collateral_summary(frame)
    assert summary.loc["finetune", "spearman(overlap, damage)"] == pytest.approx(1.0)
    assert summary.loc["finetune", "entangled half"] < summary.loc["finetune", "other half"]
    assert np.isnan(summary.loc["retrain", "spearman(overlap, damage)"])  # no change: undefined


def test_figures_without_warnings():
    df = _records(VALUES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = [plotting.plot_time_vs_gap(df), plotting.plot_gap_ranking(df),
                plotting.plot_ablations(tables.ablation_effects(df)),
                plotting.plot_claims(cl.check_claims(df)),
                plotting.plot_collateral(tables.collateral_frame(df, "class:a", pd.Series(
                    [1.0, 0.1, 0.2, 0.3], index=CLASSES)), "a")]
        table = pd.DataFrame([dict(axis=a, value=v, default=v == 1.0, gap=g, gap_retain_acc=g / 2,
                                   gap_forget_acc=g, gap_mia=g / 3)
                              for a in ("epochs", "lr") for v, g in ((0.5, 3.0), (1.0, 1.0), (2.0, 2.0))])
        figs.append(plotting.plot_sensitivity(table))
    for fig in figs:
        assert isinstance(fig, plt.Figure) and fig.axes
        assert any(ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes)  # labelled axes
    assert plotting.plot_claims(cl.check_claims(df).assign(value=np.nan)).axes  # nothing numeric: a note


def test_check_parameter():
    pf.check_parameter("run", True, bool, "True or False")
    pf.check_parameter("q", 1, (int, float), "a number")
    with pytest.raises(MeguError, match="parameter run must be True or False, got 'yes'"):
        pf.check_parameter("run", "yes", bool, "True or False")
    with pytest.raises(MeguError, match="parameter q"):
        pf.check_parameter("q", True, (int, float), "a number")


def test_sensitivity_plan(tmp_path):
    cfg = pf.load_config("smoke")
    assert tuning.sensitivity_plan(cfg) == {k: v for k, v in (cfg.notebook.get("sensitivity")
                                                             or tuning.DEFAULT_SENSITIVITY).items()}
    import dataclasses
    bad = dataclasses.replace(cfg, notebook={"sensitivity": {"no_such_hp": [1]}})
    with pytest.raises(MeguError, match="no hyperparameter 'no_such_hp'"):
        tuning.sensitivity_plan(bad)
    bad = dataclasses.replace(cfg, notebook={"sensitivity": {"epochs": "1"}})
    with pytest.raises(MeguError, match="must be a non-empty list of values"):
        tuning.sensitivity_plan(bad)


def test_profile_for_other_data(small, tmp_path):
    cfg = pf.load_config("smoke")
    same, notes = cfg.for_data(small)
    assert notes == [] and same.scenarios == cfg.scenarios
    from PIL import Image
    for c in ("cat", "dog", "fox"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    from megu_lib import load_image_folder
    folder = load_image_folder(tmp_path / "imgs")
    with pytest.raises(MeguError,
                       match=r"scenarios.class.forget: 'Shirt' is not a class of .*its classes: cat, dog, fox"):
        cfg.for_data(folder)  # the profile's own data set lacks no class: the folder is not its data set
    cfg = pf.load_config("smoke", dataset=str(tmp_path / "imgs"))  # asked for another data set: substitutes
    fitted, notes = cfg.for_data(folder)
    assert fitted.scenarios["class"]["forget"] == ["cat"] and "subclass" not in fitted.scenarios
    assert "random" in fitted.scenarios and any("Shirt" in n for n in notes)


@pytest.mark.slow
def test_records_of_a_tiny_run(tmp_path, monkeypatch):
    """profile_records runs, then loads exactly the config's records (a stale one is
    ignored), stops with one line when records are missing; the sweep keeps its results."""
    cfg_dict = dict(name="tiny", dataset="fashion_mnist", subset={"train": 600, "test": 200},
                    model={"arch": "small_cnn", "width": 4}, train={"preset": "fast", "epochs": 1, "batch_size": 64},
                    device="cpu", seeds=[0], judge="uniform", eval={"max_retain": 200},
                    scenarios={"class": {"forget": ["Trouser"]}}, methods=["retrain", "megu_no_noise"],
                    hp={"megu_no_noise": {"epochs": 0.5}})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg_dict))
    cfg = pf.load_config(path)
    data = pf.load_data(cfg)
    out = tmp_path / "res"
    with pytest.raises(MeguError, match=r"3 record\(s\) .* missing .*python -m megu_lib run .*tiny\.yaml\)"):
        ex.profile_records(cfg, data, run=False, out_dir=out)
    df = ex.profile_records(cfg, data, run=True, out_dir=out, log=lambda m: None)
    assert sorted(df.method) == ["megu_no_noise", "original", "retrain"]
    assert sorted(p.name for p in (out / "records").glob("*.json")) == sorted(cfg.record_files(data))
    stale = json.loads(next((out / "records").glob("original-*.json")).read_text())
    (out / "records" / "stale.json").write_text(json.dumps({**stale, "method": "finetune"}))
    again = ex.profile_records(cfg, data, run=False, out_dir=out)
    assert "finetune" not in set(again.method) and len(again) == 3
    # partial: the records that exist, and how many are missing (none at all is still an error)
    one = out / "records" / cfg.record_name(data, pf.build_requests(cfg, data, 0)[0], "megu_no_noise", 0)
    kept = one.read_bytes()
    one.unlink()
    part = ex.profile_records(cfg, data, out_dir=out, partial=True)
    assert sorted(part.method) == ["original", "retrain"] and part.attrs["missing"] == 1
    with pytest.raises(MeguError, match=r"3 record\(s\) .* missing"):
        ex.profile_records(cfg, data, out_dir=tmp_path / "empty", partial=True)
    one.write_bytes(kept)
    model = cfg.original_model(data, 0)
    request = pf.build_requests(cfg, data, 0)[0]
    ref = tables.reference_metrics(df, request.label(), 0)
    axes = {"epochs": [0.25, 0.5]}
    table = tuning.sensitivity(cfg, data, request, model, ref, axes, method="megu_no_noise", out_dir=out,
                               log=lambda m: None)
    assert list(table.value) == [0.25, 0.5] and list(table.default) == [False, True]
    assert len(list((out / "sensitivity").glob("*.json"))) == 2
    import megu_lib.tuning
    monkeypatch.setattr(megu_lib.tuning, "sweep", lambda *a, **k: pytest.fail("not loaded from its record"))
    again = tuning.sensitivity(cfg, data, request, model, ref, axes, method="megu_no_noise", out_dir=out)
    assert list(again.gap) == list(table.gap)


def test_profile_comparison_side_by_side():
    cpu = _records(VALUES)
    cpu["device"] = "cpu"
    gpu = _records({k: v for k, v in VALUES.items() if k != "ssd"} | {"finetune": dict(retain_acc=-0.1, seconds=50)},
                   arch="resnet18")
    gpu["device"] = "cuda:0"
    frames = {tables.profile_label("default", cpu): cpu, tables.profile_label("full", gpu): gpu}
    assert list(frames) == ["default (small_cnn, cpu)", "full (resnet18, cuda)"]
    table = tables.profile_comparison(frames)
    gap, rank = tables.RANKING_LABELS["gap"], tables.RANKING_LABELS["rank"]
    # rows sorted by the first profile's gap; retrain left out; a method one profile lacks is NaN there
    assert list(table.index) == list(tables.gap_ranking(cpu).index)
    assert "retrain" not in table.index and "original" in table.index  # the do-nothing row stays
    assert np.isnan(table.loc["ssd", ("full (resnet18, cuda)", gap)])
    assert table.loc["megu", ("default (small_cnn, cpu)", rank)] == 1
    assert table.loc["finetune", ("full (resnet18, cuda)", rank)] == 1  # better on the other profile
    assert (table.loc["finetune", ("full (resnet18, cuda)", gap)]
            < table.loc["finetune", ("default (small_cnn, cpu)", gap)])
    fig = plotting.plot_profile_comparison(table)
    assert len(fig.axes[0].patches) >= 2 * len(table) - 1
    with pytest.raises(MeguError, match="mapping"):
        tables.profile_comparison({})


def test_replication_table_ranks_every_run_and_says_what_holds():
    first = _records(VALUES, seeds=(0, 1, 2))
    # the second run: finetune much better, megu slightly worse; the rest as before
    again = _records(VALUES | {"finetune": dict(retain_acc=-0.1, seconds=50), "megu": dict(retain_acc=-1, seconds=20)},
                     seeds=(0, 1, 2), jitter=0.3)
    table, text = tables.replication_table({"committed": first, "again": again})
    gap, rank = tables.RANKING_LABELS["gap"], tables.RANKING_LABELS["rank"]
    assert list(table.columns) == [("committed", gap), ("committed", rank), ("again", gap), ("again", rank)]
    assert list(table.index) == list(tables.gap_ranking(first).index)  # the first run's order
    assert table.loc["megu", ("committed", rank)] == 1 and table.loc["finetune", ("again", rank)] == 1
    assert text.startswith("In *committed*, **megu** is closest") and "in *again*, **finetune** is closest" in text
    assert "MeGU ranks 2 of" in text and "against the best baseline, finetune" in text
    rho = float(re.search(r"Spearman ρ = (-?[0-9.]+\d)", text).group(1))
    assert 0 < rho < 1  # the order moved, but not all of it
    assert "depends on the run" in text  # closer in the first run, further in the second
    with pytest.raises(MeguError, match="two or more runs"):
        tables.replication_table({"committed": first})


def test_replication_by_scenario_says_which_verdicts_every_run_shares():
    def run(megu_class: float) -> pd.DataFrame:
        gaps = {"retrain": lambda s, seed: 0.0,
                "original": lambda s, seed: (2.0 if s == "random" else 30.0) + seed % 2,
                "finetune": lambda s, seed: 2.0 + seed % 2,
                "megu": lambda s, seed: (megu_class if s == "class" else 5.0) + seed % 2}
        return pd.DataFrame([dict(method=m, scenario=s, request=r, seed=seed, gap=float(f(s, seed)), seconds=1.0)
                             for m, f in gaps.items()
                             for s, r in (("class", "class:a"), ("subclass", "subclass:a"), ("random", "random:0.1"))
                             for seed in range(5)])
    # MeGU closer than fine-tuning in class forgetting in the first run, further in the second
    table, text = tables.replication_by_scenario({"first": run(1.0), "second": run(4.0)})
    assert list(table.index) == [(s, r) for s in ("class", "subclass", "random", "all") for r in ("first", "second")]
    assert table.loc[("class", "first"), "closest to retrain"].startswith("megu")
    assert table.loc[("class", "second"), "MeGU − best baseline"].startswith("2.00")
    assert table.loc[("random", "first"), "discriminates"] == "cannot discriminate here"
    lines = dict(line.split("**: ", 1) for line in text.splitlines())
    assert "changes between them (finetune, megu)" in lines["- **class forgetting"]
    assert "**depends on the record set** (further in 1, closer in 1" in lines["- **class forgetting"]
    assert "**finetune** in all 2 record sets" in lines["- **subclass forgetting"]
    assert "further from retrain than the best baseline in every one" in lines["- **subclass forgetting"]
    assert "**cannot discriminate here**" in lines["- **random forgetting"]
    assert "cannot discriminate" not in lines["- **subclass forgetting"]
    with pytest.raises(MeguError, match="two or more runs"):
        tables.replication_by_scenario({"first": run(1.0)})


def test_chapter_setup_picks_the_forget_class(tmp_path):
    cfg_dict = dict(name="tiny", dataset="fashion_mnist", subset={"train": 300, "test": 100},
                    model={"arch": "small_cnn", "width": 4}, train={"preset": "fast", "epochs": 1, "batch_size": 64},
                    device="cpu", seeds=[3, 4], judge="uniform", scenarios={"class": {"forget": ["Trouser"]}},
                    methods=["retrain"], notebook={"forget_class": "Sneaker"})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg_dict))
    s = pf.chapter_setup(str(path))
    assert s.seed == 3 and s.forget_name == "Sneaker" and s.data.class_names()[s.forget_index] == "Sneaker"
    assert s.request.scenario == "class" and len(s.request.forget_idx) > 0
    assert isinstance(s.original, torch.nn.Module)
    s2 = pf.chapter_setup(str(path), seed=4, forget_class="Bag")
    assert s2.seed == 4 and s2.forget_name == "Bag"
    with pytest.raises(MeguError):
        pf.chapter_setup(str(path), forget_class="Dragon")


def test_an_original_at_chance_gets_no_verdict():
    df = _records(VALUES)
    chance = df.copy()
    chance.loc[chance.method == "original", "test_acc"] = 26.0  # 4 classes: chance is 25 %
    claims = cl.check_claims(chance)
    group = claims[claims.data != ""]
    assert (group.verdict == "not meaningful here").all() and group.why.str.contains("within 5 points of chance").all()
    assert "not meaningful here" in cl.claims_sentence(claims)
    assert "not meaningful here" not in set(cl.check_claims(df).verdict)
    from megu_lib.metrics import chance_note
    assert chance_note(90.0, 10) is None and "nothing on this page is meaningful" in chance_note(12.0, 10)


def test_threshold_verdicts_read_the_interval():
    assert cl.threshold_verdict(0.2, 0.1, 0.3, 0.35, "<=") == "holds"
    assert cl.threshold_verdict(0.3, 0.2, 0.5, 0.35, "<=") == "inconclusive"
    assert cl.threshold_verdict(0.6, 0.4, 0.8, 0.35, "<=") == "does not hold"
    assert cl.threshold_verdict(50, 45, 55, 49, ">=") == "inconclusive"
    assert cl.threshold_verdict(60, 59.5, 61, 59, ">") == "holds"
    assert cl.threshold_verdict(50, float("nan"), float("nan"), 49, ">=") == "holds"  # one seed: the mean
    with pytest.raises(MeguError, match="want must be"):
        cl.threshold_verdict(1, 0, 2, 1, "<")


def test_claims_not_meaningful_here():
    seeds = (0, 1, 2)
    # SSD left the model as it was: its comparison is with an untouched model
    lazy = {**VALUES, "ssd": dict(VALUES["original"], seconds=5)}
    claims = cl.check_claims(_records(lazy, seeds=seeds)).set_index("claim")
    ssd = claims.loc[claims.index.str.contains("SSD")].iloc[0]
    assert ssd.verdict == "not meaningful here" and "untouched model" in ssd.why
    assert tables.did_nothing(_records(lazy), "ssd") and not tables.did_nothing(_records(lazy), "unsir")
    # an attack with no power on these models says nothing
    df = _records(VALUES, seeds=seeds)
    df["mia_auc"] = 52.0
    unsir = cl.check_claims(df).set_index("claim").loc[lambda c: c.index.str.contains("UNSIR")].iloc[0]
    assert unsir.verdict == "not meaningful here" and "AUC 52.0" in unsir.why
    # doing nothing as close to retrain as the best method: the scenario cannot discriminate
    blind = {**VALUES, "original": dict(seconds=100, retain_acc=-0.1)}
    claims = cl.check_claims(_records(blind, seeds=seeds)).set_index("claim")
    row = claims.loc["beats the baselines in class forgetting"]
    assert row.verdict == "not meaningful here" and "cannot discriminate here" in row.why
    # MeGU behind a baseline, but not distinguishably: inconclusive
    close = {**VALUES, "unsir": dict(retain_acc=-0.15, forget_acc=0.4, mia=0.5, seconds=10)}
    rows = _records(close, seeds=seeds)
    rows.loc[rows.method == "megu", "gap"] += np.where(rows.loc[rows.method == "megu", "seed"] == 1, -0.5, 0.3)
    row = cl.check_claims(rows).set_index("claim").loc["beats the baselines in class forgetting"]
    assert row.verdict == "inconclusive" and "includes 0" in row.why


def test_mia_power_says_when_the_attack_tells_nothing():
    df = _records(VALUES)
    assert tables.mia_power(df) == {}  # no AUC in the records: nothing to say
    df["mia_auc"] = 51.0
    power = tables.mia_power(df, "class")
    assert power["powerless"] and "tells nothing" in power["sentence"] and "original 51.0" in power["sentence"]
    df["mia_auc"] = 70.0
    assert not tables.mia_power(df)["powerless"]
    parts = df[["gap_retain_acc", "gap_forget_acc", "gap_test_acc"]]
    assert "gap_no_mia" in df and (df.gap_no_mia <= parts.max(1)).all() and (df.gap_no_mia >= parts.min(1)).all()


def test_subclass_readings_side_by_side():
    values = {**VALUES, "megu_any": dict(retain_acc=-0.1, forget_acc=0.2, mia=0.1, seconds=20)}
    table, sentence = tables.subclass_readings(_records(values))
    assert list(table.index) == ["retrain", "megu (other coarse label)", "megu_any (any coarse label)"]
    assert "the *any* reading ends closer to retrain" in sentence
    table, sentence = tables.subclass_readings(_records(VALUES))
    assert table.empty and "were not run" in sentence


def test_idle_note_names_the_methods_that_left_the_model_alone():
    assert tables.idle_note(_records(VALUES)) == ""
    lazy = _records({**VALUES, "ssd": dict(VALUES["original"], seconds=5)}, scenarios=("class", "random"))
    # SSD untouched in class forgetting only: the note names that scenario alone
    lazy.loc[(lazy.method == "ssd") & (lazy.scenario == "random"), "retain_acc"] -= 3.0
    note = tables.idle_note(lazy)
    assert "`ssd` in class forgetting" in note and "random" not in note
    assert tables.idle_note(lazy, methods=["megu", "unsir"]) == ""


def test_tuning_effect_compares_on_the_shared_runs_only():
    main = {k: VALUES[k] for k in ("original", "retrain", "finetune", "ssd", "megu")}
    tuned = _records(main, seeds=(0, 1, 2))
    # at the defaults fine-tuning is further from retrain and slower than retraining, SSD closer, MeGU the same
    defaults = _records({**main, "finetune": dict(retain_acc=-9, forget_acc=20, seconds=150),
                         "ssd": dict(retain_acc=-0.5, seconds=5)}, seeds=(0, 1), scenarios=("class", "random"))
    table, text = tables.tuning_effect(tuned, defaults)
    assert list(table.columns) == [("class", "tuned"), ("class", "defaults"), ("random", "tuned"),
                                   ("random", "defaults")]
    assert "original" in table.index and "retrain" not in table.index
    assert table.loc["finetune", ("class", "defaults")] > table.loc["finetune", ("class", "tuned")]
    assert table.loc["ssd", ("class", "defaults")] < table.loc["ssd", ("class", "tuned")]
    # seed 2 is not in the defaults: it is left out of the tuned column too
    only_shared = tables.gap_ranking(tuned[tuned.seed < 2], "class")["gap"]["megu"]
    assert table.loc["megu", ("class", "tuned")] == pytest.approx(only_shared)
    assert "seeds 0, 1" in text and "class forgetting 1 of 3" in text and "random forgetting 1 of 3" in text
    assert "`finetune` took longer than retraining" in text and "`ssd`" not in text.split("At their")[1]
    with pytest.raises(MeguError, match="share no"):
        tables.tuning_effect(tuned, defaults.assign(seed=defaults.seed + 10))


def test_gaps_added_twice_are_computed_again_not_doubled():
    df = _records(VALUES)
    again = ex.add_gaps(df)
    assert list(again.columns) == list(df.columns) and again["gap"].equals(df["gap"])
    assert tables.gap_ranking(again, "class").equals(tables.gap_ranking(df, "class"))


def test_repeat_effect_swaps_in_the_repeats_rows_and_says_what_moves():
    committed = _records(VALUES, seeds=(0, 1, 2))
    # the repeat: ssd at another choice, closer to retrain than megu; on seeds 0-1 only, and seed 2 part-run
    repeat = _records({"retrain": VALUES["retrain"], "ssd": dict(retain_acc=-0.2, seconds=5, hp={"lr": 0.02})},
                      seeds=(0, 1, 2), scenarios=("class",))
    repeat = repeat[~((repeat.seed == 2) & (repeat.method == "ssd"))]
    table, text = tables.repeat_effect(committed, repeat)
    row = table.set_index("method").loc["ssd"]
    assert list(table.method) == ["ssd"] and row["gap, committed choice"].startswith("3.25 [")
    assert row["gap, repeat's choice"].startswith("0.05 [") and row["megu − method"].startswith("+0.25 [")
    assert "(1 requests, seeds 0, 1)" in text and "`megu` ranks 1 of" in text and "and 2 of" in text
    assert row["repeat's setting"] == "another" and "committed setting itself" not in text
    # megu itself repeated: its rows move, but there is no difference of megu to itself
    # (at the very setting of its committed study, read back with another last digit: the runs differ)
    again = _records({"retrain": VALUES["retrain"], "megu": dict(retain_acc=-6, hp={"lr": 0.01 + 1e-18, "epochs": 2})},
                     seeds=(0, 1), scenarios=("class",))
    table, text = tables.repeat_effect(committed, again)
    assert table.set_index("method").at["megu", "megu − method"] == "—"
    assert table.set_index("method").at["megu", "repeat's setting"] == "the same"
    assert "The repeat chose the committed setting itself for `megu`: its two rows differ only by the runs" in text
    assert "`megu` 0.30 → 1.50." in text and "megu − megu" not in text and "ranks 1 of 4 with the committed " \
        "choices and 2 of 4 with the repeat's" in text
    with pytest.raises(MeguError, match="the repeat holds no method besides the references"):
        tables.repeat_effect(committed, repeat[repeat.method == "retrain"])


def test_at_better_search_puts_each_method_at_its_better_search():
    committed = _records(VALUES, seeds=(0, 1))
    # the repeat ran ssd in class only (its committed study was the better elsewhere), unsir in random only
    # the repeat's retraining took twice as long (another machine)
    repeat = pd.concat([_records({"retrain": dict(seconds=200), "ssd": dict(retain_acc=-0.2)}, scenarios=("class",)),
                        _records({"retrain": VALUES["retrain"], "unsir": dict(forget_acc=3)}, scenarios=("random",))],
                       ignore_index=True)
    merged = tables.at_better_search(committed, repeat)
    assert len(merged) == len(committed) and set(merged.columns) == {*committed.columns, "time_scale"}
    gap = merged.groupby(["scenario", "method"]).gap.mean()
    old = committed.groupby(["scenario", "method"]).gap.mean()
    assert gap["class", "ssd"] == pytest.approx(0.05) and gap["subclass", "ssd"] == old["subclass", "ssd"]
    assert gap["random", "unsir"] == pytest.approx(0.75) and gap["class", "unsir"] == old["class", "unsir"]
    assert gap.drop([("class", "ssd"), ("random", "unsir")]).equals(old.drop([("class", "ssd"), ("random", "unsir")]))
    # the repeat's times put on main's machine: times the ratio of the two runs' retraining times
    rows = merged.set_index(["scenario", "method", "seed"])
    assert rows.time_scale["class", "ssd", 1] == pytest.approx(101 / 201) and rows.seconds["class", "ssd", 1] == \
        pytest.approx(2 * 101 / 201)
    assert rows.time_scale["class", "unsir", 1] == 1 and rows.time_scale["random", "unsir", 1] == 1
    from megu_lib.claims import _claim_time
    timed = merged[(merged.scenario == "class") & merged.method.isin(["retrain", "ssd"])]
    # per seed 1 s of the repeat's 200 and 2 s of its 201 (read raw against main's 100 and 101, it would be 98.5)
    assert _claim_time(timed, "t", focus="ssd").value == pytest.approx(100 - 50 * (1 / 200 + 2 / 201))
    # each scenario's own methods: ssd is not compared in random, nor unsir in class
    table, text = tables.repeat_effect(committed, repeat)
    assert list(zip(table.scenario, table.method)) == [("class", "ssd"), ("random", "unsir")]
    # a method the repeat has only begun (seed 0) waits; it does not cut ssd's runs to seed 0
    begun = _records({"finetune": dict(retain_acc=-1)}, seeds=(0,), scenarios=("class",))
    table, text = tables.repeat_effect(committed, pd.concat([repeat, begun], ignore_index=True))
    assert list(zip(table.scenario, table.method)) == [("class", "ssd"), ("random", "unsir")]
    assert "(1 requests, seeds 0, 1)" in text and "Not shown yet (fewer runs so far): `finetune`." in text
    with pytest.raises(MeguError, match=r"the repeat lacks 1 of the 2 runs of ssd in class "
                                        r"\(e\.g\. \('class:a', 1\)\)"):
        tables.at_better_search(committed, repeat[~((repeat.method == "ssd") & (repeat.seed == 1))])


def test_same_setting_reads_floats_to_their_last_digits_only():
    assert tables.same_setting({"lr": 0.911038866718827, "rule": "mix"}, {"rule": "mix", "lr": 0.9110388667188271})
    assert not tables.same_setting({"lr": 0.1, "rule": "mix"}, {"lr": 0.1001, "rule": "mix"})
    assert not tables.same_setting({"lr": 0.1}, {"lr": 0.1, "epochs": 2})
    assert not tables.same_setting({"rule": "mix"}, {"rule": "product"}) and tables.same_setting({"n": 2}, {"n": 2})
    assert not tables.same_setting({"x": None}, {"x": 0.0})
