"""The chapters' verdicts: each rule on small inputs whose verdict is known, every branch."""
import numpy as np
import pandas as pd
import pytest

from megu_lib import MeguError
from megu_lib import experiments as ex
from megu_lib import verdicts as vd

CLASSES = ["a", "b", "c", "d", "e"]


def test_entanglement_verdict_reads_every_pattern_size():
    ok = vd.entanglement_verdict(0.5, {0.1: 0.5, 0.2: 0.6}, {0.1: 3, 0.2: 2}, -0.6, q=0.1, forget="a")
    assert ok.label == "consistent with the paper's premise"
    assert "at every pattern size tried (ρ from 0.50 to 0.60" in ok.sentence and "less of it survives" in ok.sentence
    mixed = vd.entanglement_verdict(0.1, {0.05: 0.1, 0.1: 0.1, 0.3: 0.77}, {0.05: 2, 0.1: 1, 0.3: 0}, 0.1, q=0.1,
                                    forget="Shirt")
    assert mixed.label == "partly consistent with the paper's premise"
    assert "only for q = 0.3" in mixed.sentence and "At q = 0.3, Shirt has no unique channel" in mixed.sentence
    assert "does not predict" in mixed.sentence
    none = vd.entanglement_verdict(-0.1, {0.1: -0.1}, {0.1: 1}, float("nan"), q=0.1, forget="a")
    assert none.label == "no support for the paper's premise" and "survives" not in none.sentence
    assert none.markdown().startswith("**Verdict: no support")
    with pytest.raises(MeguError, match="rho_by_q"):
        vd.entanglement_verdict(0.1, {}, {}, 0.0, q=0.1, forget="a")


def _confusion():
    c = pd.DataFrame(0.0, index=CLASSES, columns=CLASSES)
    for i, x in enumerate(CLASSES):  # each class is confused most with the next one, then the one after
        c.loc[x, CLASSES[(i + 1) % 5]] = 10.0
        c.loc[x, CLASSES[(i + 2) % 5]] = 5.0
    return c


def _t(shift):
    t = pd.DataFrame(0.1, index=CLASSES, columns=CLASSES)
    for i, x in enumerate(CLASSES):
        t.loc[x, CLASSES[(i + shift) % 5]] = 1.0
    return t


def test_judges_verdict_measures_neighbours_against_the_models_confusions():
    matrices = {"features": _t(1), "text": _t(3), "uniform": pd.DataFrame(0.5, index=CLASSES, columns=CLASSES)}
    table = vd.judge_plausibility(matrices, _confusion())
    assert table.loc["features", "agrees (%)"] == 100.0 and table.loc["text", "agrees (%)"] == 0.0
    assert not table.loc["uniform", "ranks"] and table.loc["features", "chance (%)"] == 50.0
    v = vd.judges_verdict(matrices, _confusion(), "a", used="text")
    assert v.label == "the features judge's neighbours are the most plausible"
    assert "features → b; text → d" in v.sentence and "text judge is no better than chance" in v.sentence
    assert "the features judge agrees more" in v.sentence
    assert "most plausible one here" in vd.judges_verdict(matrices, _confusion(), "a", used="features").sentence
    with pytest.raises(MeguError, match="'z' is not among"):
        vd.judges_verdict(matrices, _confusion(), "z", used="text")
    # a judge that ranks other rows but ties the forgotten class's names no neighbour for it
    tied = _t(1)
    tied.loc["a", [c for c in CLASSES if c != "a"]] = 0.25
    v = vd.judges_verdict({"features": tied, "text": _t(3)}, _confusion(), "a", used="text")
    assert "features → (a tie); text → d" in v.sentence


def _agreement(t, pred):
    names = ["product", "T", "prediction"]
    a = pd.DataFrame(100.0, index=names, columns=names)
    a.loc["product", "T"], a.loc["product", "prediction"] = t, pred
    return a


def test_perturbation_verdict_names_what_decides():
    assert vd.perturbation_verdict(_agreement(41, 70)).label == "the model's prediction decides more than the judge"
    assert "41 %" in vd.perturbation_verdict(_agreement(41, 70)).sentence
    assert vd.perturbation_verdict(_agreement(80, 30)).label == "the judge decides more than the model's prediction"
    assert vd.perturbation_verdict(_agreement(50, 55)).label.startswith("the judge and the model's prediction")
    with pytest.raises(MeguError, match="'prediction' labelling"):
        vd.perturbation_verdict(_agreement(1, 2).drop(index="prediction"))


def _effect(neg_top_share):
    rows = {"clean x": dict(acc_y=90, pred_yp=3, top_label=0, top_share=90),
            "x + N_pos[y_p]": dict(acc_y=60, pred_yp=30, top_label=0, top_share=60),
            "x + N_neg[y]": dict(acc_y=0, pred_yp=10, top_label=3, top_share=neg_top_share),
            "x + both": dict(acc_y=0, pred_yp=12, top_label=3, top_share=85)}
    return pd.DataFrame(rows).T


def test_fragment_align_verdict_compares_megu_and_unsir_on_the_shared_channels():
    more = vd.fragment_align_verdict(_effect(100), {"MeGU": {"shared_retained": -39},
                                                    "UNSIR": {"shared_retained": -12}}, CLASSES, "a")
    assert more.label == "MeGU over-unlearns more than UNSIR here"
    assert "raises" in more.sentence and "3 % → 30 %" in more.sentence
    assert "sends 100 % of them to one class, d" in more.sentence and "-39 %" in more.sentence
    less = vd.fragment_align_verdict(_effect(50), {"MeGU": {"shared_retained": -2},
                                                   "UNSIR": {"shared_retained": -20}}, CLASSES, "a")
    assert less.label == "MeGU spares the shared features better than UNSIR"
    assert "its most common label: d" in less.sentence
    alike = vd.fragment_align_verdict(_effect(50), {"MeGU": {"shared_retained": -10},
                                                    "UNSIR": {"shared_retained": -12}}, CLASSES, "a")
    assert alike.label == "MeGU and UNSIR move the shared features alike"
    empty = vd.fragment_align_verdict(_effect(50), {"MeGU": {"shared_retained": float("nan")}}, CLASSES, "a")
    assert "no shared channel" in empty.sentence


def _records(gaps: dict, seeds=range(5), scenarios=("class", "random")) -> pd.DataFrame:
    """Records whose gap to retrain is ``gaps[scenario][method]`` plus seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for s in scenarios:
        for seed in seeds:
            for m, g in {"retrain": 0.0, **gaps[s]}.items():
                shift = g + (0.3 * rng.standard_normal() if m != "retrain" else 0.0)
                rows.append(dict(config="t", dataset="d", arch="a", scenario=s, forget=["a"], request=f"{s}:a",
                                 method=m, seed=seed, seconds=1.0, retain_acc=90.0 - shift, forget_acc=0.0,
                                 test_acc=85.0, mia=10.0, test_forget_acc=0.0, test_retain_acc=85.0, mia_loss=10.0))
    return ex.add_gaps(pd.DataFrame(rows))


def test_experiments_verdict_uses_the_claims_rule_per_scenario():
    lose = _records({s: {"original": 20.0, "finetune": 1.0, "megu": 8.0} for s in ("class", "random")})
    v = vd.experiments_verdict(lose)
    assert v.label == "MeGU does not beat the baselines" and "*class forgetting*: does not hold" in v.sentence
    win = _records({s: {"original": 20.0, "finetune": 8.0, "megu": 1.0} for s in ("class", "random")})
    assert vd.experiments_verdict(win).label == "MeGU beats the baselines where the benchmark can tell"
    blind = _records({"class": {"original": 20.0, "finetune": 8.0, "megu": 1.0},
                      "random": {"original": 0.5, "finetune": 8.0, "megu": 1.0}})
    v = vd.experiments_verdict(blind)
    assert v.label == "MeGU beats the baselines where the benchmark can tell"
    assert "*random forgetting*: not meaningful" in v.sentence


def test_ablations_verdict_names_the_part_that_matters_most():
    effects = pd.DataFrame([dict(component="no negative noise", scenario="class", delta_gap=3.3),
                            dict(component="no negative noise", scenario="random", delta_gap=7.7),
                            dict(component="random perturbing labels", scenario="class", delta_gap=4.0),
                            dict(component="random perturbing labels", scenario="random", delta_gap=0.2),
                            dict(component="no T", scenario="class", delta_gap=-1.0),
                            dict(component="no T", scenario="random", delta_gap=-0.5)])
    v = vd.ablations_verdict(effects)
    assert v.label == "no negative noise matters most"
    assert "class: random perturbing labels (+4.00); random: no negative noise (+7.70)" in v.sentence
    assert "closer* to retrain than full MeGU: no T —" in v.sentence and "2 of 3 variants" in v.sentence
    worse = effects.assign(delta_gap=-effects.delta_gap.abs())
    assert vd.ablations_verdict(worse).label == "no single part of MeGU helps here"


def test_at_a_glance_leads_with_scale_standing_claims_and_limits():
    from megu_lib import claims as cl
    df = _records({s: {"original": 20.0, "finetune": 1.0, "megu": 8.0} for s in ("class", "random")})
    text = vd.at_a_glance(df, cl.check_claims(df), profile="main", description="all of the data")
    lines = text.splitlines()
    assert lines[0].startswith("- **Setting** (profile `main`: all of the data): d, a; 5 seeds")
    assert "class: a; random: a; 30 runs" in lines[0]
    assert lines[1].startswith("- **Original model**: 85.0 % test accuracy")
    assert "**finetune**, mean gap" in text and "doing nothing (the original)" in text
    assert "- **MeGU** ranks **2 of 2**" in text
    assert "against the best baseline, finetune, its gap differs by +1.7" in text
    assert "**The paper's claims**: Of " in text and text.splitlines()[-1].startswith("- **Limits**")
    assert "Cannot discriminate" not in text
    with pytest.raises(MeguError, match="no records"):
        vd.at_a_glance(df.iloc[:0], cl.check_claims(df), profile="main")


def test_at_a_glance_with_one_seed_gives_no_interval():
    from megu_lib import claims as cl
    df = _records({s: {"original": 20.0, "finetune": 1.0, "megu": 8.0} for s in ("class", "random")}, seeds=[0])
    text = vd.at_a_glance(df, cl.check_claims(df), profile="smoke", description="tiny.")
    assert "nan" not in text and "(one seed)." in text and "(profile `smoke`: tiny): " in text


def _privacy_table(original=(90, 86, 94), retrain=(50, 46, 54), megu=(70, 66, 74)):
    rows = {"original": original, "retrain": retrain, "megu": megu, "ssd": (60, 56, 64)}
    return pd.DataFrame({m: dict(auc=a, auc_lo=lo, auc_hi=hi) for m, (a, lo, hi) in rows.items()}).T


def test_privacy_verdict_reads_the_paired_differences():
    from megu_lib.verdicts import privacy_verdict
    higher = dict(a="megu", b="ssd", diff=10.0, lo=6.0, hi=14.0)
    lower = dict(a="megu", b="unsir", diff=-4.0, lo=-7.0, hi=-1.0)
    spans = dict(a="megu", b="unsir", diff=1.0, lo=-2.0, hi=4.0)
    v = privacy_verdict(_privacy_table(), [higher])
    assert v.label == "the paper's privacy claim does not hold against ssd"
    assert "closes 50 % of the distance" in v.sentence and "+10.0 points [+6.0, +14.0] (*does not hold*)" in v.sentence
    assert "least exposed method that changed the model is `ssd` (60.0)" in v.sentence
    assert privacy_verdict(_privacy_table(), [lower]).label == "the paper's privacy claim holds against unsir"
    mixed = privacy_verdict(_privacy_table(), [higher, spans])
    assert mixed.label == "the paper's privacy claim does not hold against ssd, is inconclusive against unsir"
    assert "*inconclusive*" in privacy_verdict(_privacy_table(), [spans]).sentence
    assert "no closer to retraining than the untouched original" in privacy_verdict(
        _privacy_table(megu=(95, 92, 98)), [spans]).sentence
    assert "as close to retraining as a second retraining" in privacy_verdict(
        _privacy_table(megu=(48, 45, 51)), [spans]).sentence
    # an attack that cannot find the untouched original: doing nothing passes, an AUC above 50 is the method's trace
    blind = privacy_verdict(_privacy_table(original=(50.5, 49, 52), retrain=(49.5, 48, 51)), [higher])
    assert blind.label == "the paper's privacy claim does not hold against ssd"
    assert "cannot tell the untouched original from retraining" in blind.sentence
    assert "doing nothing already passes" in blind.sentence
    assert "70.0 [66.0, 74.0] — a trace of its own" in blind.sentence
    # a comparison with a method that left the models as they were means nothing
    t = _privacy_table()
    t["unchanged"] = [False, False, False, True]  # ssd
    idle = privacy_verdict(t, [higher, lower])
    assert "against `ssd` *not meaningful here* (it left every model as it was)" in idle.sentence
    assert idle.label == "the paper's privacy claim is not meaningful against ssd, holds against unsir"
    assert "least exposed method that changed the model is `megu`" in idle.sentence
    assert privacy_verdict(t, [higher]).label == "the paper's privacy claim is not meaningful against ssd"
    with pytest.raises(MeguError, match="needs rows for original, retrain and megu"):
        privacy_verdict(_privacy_table().drop(index="retrain"), [])


def test_privacy_glance_line():
    from megu_lib.verdicts import Verdict, privacy_glance
    line = privacy_glance(_privacy_table(), Verdict("the paper's privacy claims do not hold here", "."), n_shadows=32)
    assert line.startswith("- **Per-example privacy** (U-LiRA on 32 shadow models")
    assert "MeGU 70.0 [66.0, 74.0], doing nothing 90.0 [86.0, 94.0], a second retraining 50.0 [46.0, 54.0]" in line
    assert line.endswith("— the paper's privacy claims do not hold here.")
    memorising = _privacy_table(original=(80, 77, 83), megu=(66, 63, 69))
    also = [("shadows that memorise (30 epochs, 16 shadows)", memorising, Verdict("label two", "."))]
    both = privacy_glance(_privacy_table(), Verdict("label one", "."), n_shadows=32, also=also)
    assert both.startswith(line[:-1].replace("the paper's privacy claims do not hold here", "label one"))
    assert both.endswith(" With shadows that memorise (30 epochs, 16 shadows): MeGU 66.0 [63.0, 69.0], doing nothing "
                         "80.0 [77.0, 83.0], a second retraining 50.0 [46.0, 54.0] — label two.")
    with pytest.raises(MeguError, match="needs rows for original, retrain and megu"):
        privacy_glance(_privacy_table(), Verdict("x", "."), n_shadows=32,
                       also=[("another", memorising.drop(index="megu"), Verdict("y", "."))])
