# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Per-example privacy
#
# Every privacy figure in the chapters before this one comes from one population-level
# membership attack: a logistic regression on the softmax entropy, trained to tell retained
# from test images and read on the forget set (the book page {doc}`../method`, *Metrics*).
# Chapter {doc}`Experiments <05_experiments>` reports its power, and on our models it has
# little. The paper's privacy claims, that MeGU's MIA is lower than SSD's and UNSIR's, rest on
# attacks of that kind.
#
# This chapter asks the sharper question of Hayes et al. {cite}`hayes2025ulira`: **after a
# method has unlearned an example, can an attacker who sees the model tell it apart from a
# model retrained without that example?** Averages over the forget set hide the answer, so
# the attack looks at each example on its own, over many models.
#
# **The protocol, in plain words.** Take a pool of training images and a fixed set of
# *target* images in it. Train many *shadow* originals, each on a random half of the pool.
# Each shadow forgets some of the targets among its members; from it come the method's
# *unlearned* model and a model *retrained* on its members minus that forget set. Shadows come
# in complementary twins, so that each target is forgotten in exactly half of them.
# For each target, the attack (U-LiRA, the unlearning version of the likelihood-ratio attack
# LiRA {cite}`carlini2022lira`) fits one Gaussian to the target's logit-scaled confidence
# $\log\frac{p_y}{1-p_y}$ under the unlearned models of half the shadows and one under
# their retrained models, then scores the other half's models by the ratio of the two
# densities. Its **AUC** says how well it tells unlearned from retrained (50 %: not at all)
# and its **true-positive rate at a low false-positive rate** (1 %, 0.1 %) says whether *some*
# examples are exposed with confidence. From the same models comes the **forget quality** of
# the NeurIPS 2023 unlearning competition {cite}`triantafillou2024competition`: per example, an
# $\varepsilon$ estimated from the two output distributions, turned into points (1 below
# 0.5, halved for each further 0.5) and averaged.
#
# **The two ends of the scale** run in the same loop: the *original* (no unlearning), which
# the attack finds when the models remember their training images one by one, and *retrain*,
# a second retraining with another seed, which it should not tell from the reference. When
# even the original cannot be told from retraining, doing nothing already passes the test,
# and a method that scores above 50 does so by a trace of its own: it moved the forgotten
# examples' confidence where retraining would not have (the verdict below says which case
# this page is in).

# %% tags=["parameters"]
profile = "main"  # a profile in params/ or a YAML path (its privacy section sets the run)
dataset = None  # None: the profile's data set; else a name or an image folder
device = None  # None: the profile's device
run = True  # train the shadow models without a record (False: only load)

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from megu_lib import plotting as pl
from megu_lib import shadows as sh
from megu_lib import verdicts as vd
from megu_lib.experiments import beside_verdicts
from megu_lib.profile import check_parameter, load_config, load_data

check_parameter("run", run, bool, "True or False")
cfg = load_config(profile, dataset=dataset, device=device)
data = load_data(cfg)
cfg = cfg.for_data(data)[0]
has_run = cfg.privacy is not None
variants = sh.privacy_variants(cfg)  # further settings of the section (e.g. shadows that memorise)
if has_run:
    if run:  # the section, then every variant; every setting checked before any training
        sh.run_privacy_settings(cfg, data=data)
    results = sh.privacy_results(cfg, data)
    others = {v: sh.privacy_results(cfg, data, v) for v in variants}
    section, plan = results.setup.section, results.plan
    print(f"profile {cfg.name}: {plan.n_shadows} shadows on halves of a {section['pool']}-image pool, "
          f"{plan.forget_size} forgotten per shadow; models: {', '.join(results.methods)}"
          + (f"; further settings: {', '.join(variants)}" if variants else ""))
else:
    print(f"profile {cfg.name!r} has no privacy section: this chapter has nothing to show for it "
          "(the main profile has one)")

# %% [markdown]
# ## The setting
#
# What the figures below rest on. Every method runs at the setting the profile runs it with
# in the random scenario (its tuning study's choice, where the profile tunes), on each
# shadow's request; the shadows train with the profile's architecture and recipe. A further
# setting, where the profile has one, changes only what its column says (on the main
# profile: a longer schedule on a smaller pool, under which the shadows memorise their images; see
# *When the shadows memorise* below). The accuracies on the shadows' own images against the
# test split measure what a per-example attack can find: a model that does no better on its
# own images than on new ones keeps no trace of single images.

# %% tags=["remove-input"]
if has_run:
    setting = pd.concat([sh.setting_summary(cfg, r) for r in (results, *others.values())], axis=1)
    display(setting)
    # the settings here beside those chapter Experiments reads (each method at its better search)
    searched = beside_verdicts(cfg, [(m, sh.SCENARIO) for m in results.methods], "The shadows' methods")
    if searched:
        display(Markdown(searched))
else:
    display(Markdown(f"*Profile `{cfg.name}` has no privacy section.*"))

# %% [markdown]
# ## What the attack sees
#
# One target image at a time: its confidence under the retrained reference, the untouched
# original, a second retraining, and MeGU, one dot per shadow that forgot it. U-LiRA fits a
# Gaussian to each row of the fitting shadows and asks, for a held-out model, which
# Gaussian its confidence came from. Shown: the target the original remembers best (the
# largest rise over the reference), a median one and the one it remembers least.

# %% tags=["hide-input"]
if has_run:
    shown = [m for m in (sh.REFERENCE, "original", "retrain", "megu", "megu_paper") if m in results.confidence]
    values = {m: results.forgotten(m) for m in shown}
    rise = np.nanmean(values["original"], axis=0) - np.nanmean(values[sh.REFERENCE], axis=0)
    order = np.argsort(-rise)
    picks = [order[0], order[len(order) // 2], order[-1]]
    names = data.class_names()
    ty = results.setup.target_data()[1]
    labels = [f"{what} ({names[int(ty[j])]}): original's mean {rise[j]:+.1f} over the reference"
              for what, j in zip(("most remembered", "median", "least remembered"), picks)]
    fig = pl.plot_confidence_examples(values, picks, labels=labels)
else:
    fig = pl.notice_figure(f"profile {cfg.name!r} has no privacy run")
pl.glue_figure("fig-08-confidences", fig)

# %% [markdown]
# :::{glue:figure} fig-08-confidences
# :name: fig-08-confidences
#
# The logit-scaled confidence of three target images on their true label, one dot per
# shadow that forgot the image, under each model (tick: the mean). Where MeGU's dots sit with
# the reference's, the attack cannot tell them apart; where they sit with the original's,
# the example is still recognisable.
# :::

# %% [markdown]
# ## Per method
#
# U-LiRA on every method and on the two anchors, on the held-out shadows. The AUC's interval
# is a 95 % bootstrap over the targets; the TPR columns say which share of forgotten examples
# the attack exposes while wrongly accusing at most 1 % (0.1 %) of retrained ones. Forget
# quality is the competition's (1: no example's $\varepsilon$ reaches 0.5), and *score*
# multiplies it by the retained- and test-accuracy ratios to the reference, as the
# competition's final score does.

# %% tags=["hide-input"]
if has_run:
    table = sh.privacy_table(results)
    display(sh.privacy_display(table))
    fig = pl.plot_privacy_auc(table)
else:
    table = None
    fig = pl.notice_figure(f"profile {cfg.name!r} has no privacy run")
pl.glue_figure("fig-08-auc", fig)

# %% [markdown]
# :::{glue:figure} fig-08-auc
# :name: fig-08-auc
#
# U-LiRA's AUC per model with its 95 % interval over targets, the most exposed at the top.
# The original (grey) and a second retraining (black) are the two ends of the scale; the
# dotted line is 50 %, where unlearned cannot be told from retrained.
# :::

# %% tags=["hide-input"]
if has_run:
    fig = pl.plot_roc_curves(sh.roc_curves(results))
else:
    fig = pl.notice_figure(f"profile {cfg.name!r} has no privacy run")
pl.glue_figure("fig-08-roc", fig)

# %% [markdown]
# :::{glue:figure} fig-08-roc
# :name: fig-08-roc
#
# The attack's ROC curves on log-log axes, where the low false-positive end shows whether
# single examples are exposed with confidence. Named: the two anchors and MeGU's two
# settings; thin lines: the other methods; dotted: chance.
# :::

# %% [markdown]
# ## How many shadows the figures need
#
# An AUC from few shadows is itself noisy. Drawing subsets of the shadows (whole twins, half
# of them fitting) shows how far the figure moves with the number of models it rests on.

# %% tags=["hide-input"]
if has_run:
    spread = pd.concat([sh.auc_by_shadows(results, m).assign(model=m)
                        for m in ("original", "megu", "retrain") if m in results.confidence])
    spread_table = spread.groupby(["model", "shadows"]).auc.agg(["mean", "std", "count"]).round(1)
    display(spread_table.unstack("model").swaplevel(axis=1).sort_index(axis=1))
    fig = pl.plot_auc_by_shadows(spread)
else:
    spread_table = None
    fig = pl.notice_figure(f"profile {cfg.name!r} has no privacy run")
pl.glue_figure("fig-08-shadows", fig)

# %% [markdown]
# :::{glue:figure} fig-08-shadows
# :name: fig-08-shadows
#
# U-LiRA's AUC against the number of shadow models it rests on: one dot per random draw of
# that many shadows (the full set is drawn once), the bar at the mean.
# :::

# %% [markdown]
# ## The entropy MIA and U-LiRA: the same ranking?
#
# If the population-level MIA measured the same thing, the two would order the methods alike.
# The MIA side is each method's mean distance to retrain's MIA in the random scenario of the
# profile's grid (its records; on other requests than the shadows'); the U-LiRA side is the AUC.

# %% tags=["hide-input"]
agreement = float("nan")
if has_run:
    from megu_lib.experiments import profile_records
    try:
        grid = profile_records(cfg, data)
    except Exception as e:  # noqa: BLE001 -- the grid may not have run: the chapter goes on without it
        grid = None
        print(f"no grid records to compare with: {e}")
    if grid is not None and (grid.scenario == "random").any():
        compare, agreement = sh.mia_comparison(grid, table)
        display(compare.round(1))
        print(f"Spearman rank correlation over {len(compare)} models: {agreement:.2f}")
glue("priv_agreement", agreement, display=False)

# %% [markdown]
# ## When the shadows memorise
#
# The main profile's recipe is short (4 epochs): its shadow originals fit their own images hardly
# better than new ones, so the attack cannot find even the untouched original, and a method
# shows up only through a trace of its own. The variant below (on the main profile) trains the
# same architecture for longer on fewer images, until the shadows memorise their members (the
# accuracies in *The setting* above), and runs every model again on these new
# shadows, the methods at the same settings. Does the original become visible, does MeGU
# close the distance to retraining, and do the methods keep their order? The settings are
# those tuned on the profile's own recipe: a setting that undoes a short schedule may be too
# light for a long one, so this asks how the methods fare as tuned, not how well each could
# do if tuned again.

# %% tags=["hide-input"]
variant_tables = {}
if has_run and variants:
    variant_tables = {v: sh.privacy_table(r) for v, r in others.items()}
    shown, settings_rho = sh.settings_comparison({"main setting": table, **variant_tables})
    display(shown)
    print(f"Spearman rank correlation of the methods' AUCs between the two settings: {settings_rho:.2f}")
    first = variants[0]
    fig = pl.plot_privacy_auc(variant_tables[first])
else:
    settings_rho = float("nan")
    print("the profile's privacy section has no further setting" if has_run else "no privacy run")
    fig = pl.notice_figure(f"profile {cfg.name!r} has no further privacy setting")
glue("priv_settings_rho", settings_rho, display=False)
first_table = next(iter(variant_tables.values()), None)
if first_table is not None and "tpr@1%" in first_table:
    o = first_table.loc["original"]
    tpr_line = (f"the untouched original, at an AUC of {o.auc:.1f}, is exposed at 1 % FPR for {o['tpr@1%']:.1f} % "
                "of its forgotten examples, where chance alone gives 1 %.")
else:
    tpr_line = "(this run reports no TPR at 1 % FPR for a further setting)."
glue("priv_variant_original_tpr", Markdown(tpr_line), display=False)
pl.glue_figure("fig-08-variant-auc", fig)

# %% [markdown]
# :::{glue:figure} fig-08-variant-auc
# :name: fig-08-variant-auc
#
# U-LiRA's AUC per model with its 95 % interval when the shadows memorise (the profile's
# first further setting), as in {numref}`fig-08-auc`: the original (grey) and a second
# retraining (black) are the two ends of the scale.
# :::

# %% [markdown]
# Read the TPR columns of this setting with care. The AUC weighs every threshold, but the TPR
# at 1 % FPR lives in the tail of each example's two Gaussians, and each Gaussian is fitted
# here on the few shadows that forget (or never saw) that example (*The setting* above gives
# how many models each example rests on). With so few, the fitted tails are rough:
# {glue:md}`priv_variant_original_tpr` Carlini et al. (2022) fit LiRA on hundreds of shadow
# models for its low-FPR figures; with a few, the AUC is the figure to compare.

# %% [markdown]
# ## Verdict
#
# The paper claims MeGU's MIA is lower than SSD's (by up to 49 %) and than UNSIR's (by
# 9.8 %). Under U-LiRA a lower AUC is the claim's counterpart; each comparison is read on
# the paired difference of AUCs (the same targets resampled for both methods).

# %% tags=["remove-input"]
def claim_verdict(res, tab):
    """The paper's privacy claims read under one setting (MeGU against SSD and UNSIR)."""
    differences = [sh.auc_difference(res, "megu", b) for b in ("ssd", "unsir") if b in tab.index]
    return vd.privacy_verdict(tab, differences)


if has_run and "megu" in table.index:
    verdict = claim_verdict(results, table)
else:
    verdict = vd.Verdict("no privacy run", f"Profile `{cfg.name}` has no privacy section with MeGU in it: "
                                           "see the main profile's book.")
display(Markdown(verdict.markdown()))
also = []  # (what the setting is, its table, its verdict) for each further setting with MeGU in it
for v, tab in variant_tables.items():
    if "megu" in tab.index:
        v_setting = setting[v]
        what = (f"shadows trained {v_setting['training epochs']} epochs on halves of a "
                f"{v_setting['pool (training images)']:,}-image pool ({others[v].plan.n_shadows} shadows)")
        also.append((what, tab, claim_verdict(others[v], tab)))
        display(Markdown(f"**With {what}** (the setting `{v}`): " + also[-1][2].markdown()))
# this page's line of the results at a glance (megu_lib.book.write_glance), when MeGU was attacked
if has_run and "megu" in table.index:
    glue("book_glance_privacy", Markdown(vd.privacy_glance(table, verdict, n_shadows=plan.n_shadows, also=also)),
         display=False)
