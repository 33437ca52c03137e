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
# # Fragment-Align: the two noises and what they move
#
# MeGU's third step fine-tunes the model on the forget samples under their perturbing labels,
# but not on the plain images: each forget image $x$ of class $y$ carries two **feature
# noises**, learnt beforehand on the frozen trained model $f$,
#
# * a **positive** noise $N_{pos}[l] = \arg\min_N \mathrm{CE}(f(N), l) + \lambda\lVert N\rVert$,
#   a pattern that evokes the features of the perturbing concept $l$;
# * a **negative** noise $N_{neg}[y] = \arg\min_N -\mathrm{CE}(f(N), y) + \lambda\lVert N\rVert$,
#   a pattern that counteracts the features of the original concept $y$,
#
# and the model learns from $\{(x + N_{pos}[y_p] + N_{neg}[y],\ y_p)\}$ together with retain
# data. The idea (the paper's) is to pull the forgotten class's *unique* features towards the
# perturbing concept while the features it *shares* with retained classes stay where they
# are. The noises are optimised like UNSIR's error-maximising noise (Adam, lr 0.1,
# $\lambda$ = 0.1); the number of steps, the pixel bound and the bank size are **ours** (named
# hyperparameters of the `megu` method, listed below).
#
# This chapter shows the noises, what they do to the frozen model's predictions, and how the
# forgotten class's shared and unique channels (chapter {doc}`Entanglement <01_entanglement>`) move under MeGU and
# under UNSIR, whose noise is MeGU's negative noise alone.

# %% tags=["parameters"]
profile = "main"  # a profile in params/ (or a YAML path): data set, model, schedule, seeds...
dataset = None  # None: the profile's data set; else a name or an image folder
forget_class = None  # None: the profile's notebook.forget_class
seed = None  # None: the profile's first seed
device = None  # None: the profile's device
q = 0.1  # fraction of channels in a class's pattern P_k (as in chapter Entanglement)
max_noise_classes = 10  # classes whose noises are drawn
n_examples = 5  # forget images shown with their noises (five fit the page's width)

# %% tags=["hide-input"]
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import torch
from IPython.display import Markdown
from myst_nb import glue

import megu_lib as ml
from megu_lib import verdicts as vd
from megu_lib.entanglement import channel_shift, model_patterns
from megu_lib.experiments import run_one
from megu_lib.methods.megu import megu_parts
from megu_lib.noise import noise_effect
from megu_lib.plotting import glue_figure, grouped_bars, image_grid
from megu_lib.profile import chapter_setup

setup = chapter_setup(profile, dataset=dataset, device=device, seed=seed, forget_class=forget_class)
cfg, seed, data, request, original = setup.cfg, setup.seed, setup.data, setup.request, setup.original
forget_name, k, names = setup.forget_name, setup.forget_index, data.class_names()
# exactly what MeGU builds for this model and request before it fine-tunes (the same function megu() calls)
parts = megu_parts(original, data, request, seed=seed, device=cfg.device, **cfg.method_hp("megu", request.scenario))
hp = parts.hp
print(f"profile {cfg.name!r}: {data.name}; forget class {forget_name!r}")

# %% [markdown]
# ## The noises
#
# MeGU's noise hyperparameters in this profile (the noise $\ell_\infty$ bound `noise_eps` is
# in pixel units, images lying in [0, 1]):

# %% tags=["hide-input"]
noise_hp = {name: hp[name] for name in ("noise_steps", "noise_lr", "noise_lambda", "noise_norm", "noise_eps",
                                        "noise_bank_size")}
pd.Series(noise_hp, name="value", dtype=object).rename_axis("hyperparameter").to_frame()

# %% [markdown]
# The noises MeGU trains with, learnt on the frozen original model: a positive noise for each
# perturbing label the forget samples received, and the negative noise of the forgotten class,
# all on one scale (single-channel images: red for positive pixel values, blue for negative;
# colour images: mid-grey is zero). The positive noise of a class is meant to carry that
# class's features; the negative noise is what moves an image of the forgotten class away from it.

# %% tags=["hide-input"]
K = len(names)
pos, neg, y_p = parts.pos, parts.neg, parts.y_p
xf, yf = request.forget_data(data)
targets = torch.bincount(y_p, minlength=K).argsort(descending=True).tolist()
drawn = [c for c in targets if c in parts.pos_classes][:max(1, int(max_noise_classes))]
images = torch.cat([pos[drawn, 0], neg[parts.neg_classes, 0]])
titles = [f"N_pos[{names[c]}]" for c in drawn] + [f"N_neg[{names[c]}]" for c in parts.neg_classes]
fig = image_grid(images, titles, ncols=min(len(images), 4), noise=True, size=2.0 if len(images) <= 3 else 1.4)
glue_figure("fig-04-noises", fig)

# %% [markdown]
# :::{glue:figure} fig-04-noises
# :name: fig-04-noises
#
# The positive noise of each perturbing label the forget samples received (N_pos) and the
# negative noise of the forgotten class (N_neg), learnt on the frozen original model, on one
# scale (single-channel images: red for positive pixel values, blue for negative).
# :::

# %% tags=["remove-cell"]
glue("forget_class", forget_name, display=False)
glue("fa_noise_seconds", float(parts.noise_seconds), display=False)
glue("fa_n_pos_classes", len(parts.pos_classes), display=False)
glue("fa_n_neg_classes", len(parts.neg_classes), display=False)
glue("fa_noise_max", float(torch.cat([pos, neg]).abs().max()), display=False)
bound = hp["noise_eps"] if hp["noise_eps"] is not None else float(neg.abs().max())
glue("fa_neg_at_bound", 100 * float((neg[parts.neg_classes].abs() >= 0.99 * bound).float().mean()), display=False)

# %% [markdown]
# Learning the {glue:text}`fa_n_pos_classes` positive and {glue:text}`fa_n_neg_classes` negative
# noise(s) took {glue:text}`fa_noise_seconds:.1f` s (cached afterwards; MeGU's time counts them at
# this recorded time even when they come from the cache). The largest pixel of any noise is
# {glue:text}`fa_noise_max:.2f`.
#
# What MeGU trains on: forget images (top) and the same images with their two noises added,
# $x + N_{pos}[y_p] + N_{neg}[y]$ (bottom, clipped to [0, 1] for display only — the model
# sees the unclipped sum), titled with the perturbing label $y_p$ they are trained towards.

# %% tags=["hide-input"]
g = torch.Generator().manual_seed(seed)
show = torch.randperm(len(yf), generator=g)[:n_examples]
x_clean = xf[show].float() / 255
x_noisy = (x_clean + pos[y_p[show], 0] + neg[yf[show], 0]).clamp(0, 1)
fig = image_grid(torch.cat([x_clean, x_noisy]), [""] * len(show) + [f"y_p = {names[int(y_p[i])]}" for i in show],
                 ncols=len(show), row_labels=["x", "noised"])
glue_figure("fig-04-noised", fig)

# %% [markdown]
# :::{glue:figure} fig-04-noised
# :name: fig-04-noised
#
# Forget images (top row, x) and the same images with both noises added,
# x + N_pos[y_p] + N_neg[y] (bottom row, clipped to [0, 1] for display), titled with the
# perturbing label y_p they are trained towards.
# :::

# %% [markdown]
# ## What the noises do to the frozen model
#
# The original model's predictions on all {glue:text}`fa_n_forget` forget images, clean and
# with each noise added: the share it labels $y$ (the forgotten class) and $y_p$ (the perturbing
# label), and its mean softmax probability of each.

# %% tags=["hide-input"]
effect = noise_effect(original, xf, yf, y_p, pos, neg, device=cfg.device)
long = effect[["input", "acc_y", "pred_yp", "p_y", "p_yp"]].melt(id_vars="input", var_name="measure",
                                                                  value_name="percent")
long["measure"] = long["measure"].map({"acc_y": "predicts y", "pred_yp": "predicts y_p", "p_y": "mean p(y)",
                                       "p_yp": "mean p(y_p)"})
fig = grouped_bars(long, "input", "percent", "measure", ylabel="% of forget images / mean probability (%)",
                   xlabel="input to the frozen original model", ylim=(0, 100), fmt=".0f",
                   title=f"The noises on the {len(yf)} {forget_name!r} training images")
glue_figure("fig-04-effect", fig)

# %% [markdown]
# :::{glue:figure} fig-04-effect
# :name: fig-04-effect
#
# The frozen original model on the forget images, clean and with each noise added: the share
# it labels y (the forgotten class) and y_p (the perturbing label), and its mean probability of
# each (%).
# :::

# %% tags=["remove-cell"]
e = effect.set_index("input")
glue("fa_n_forget", len(yf), display=False)
for row, tag in (("clean x", "clean"), ("x + N_pos[y_p]", "pos"), ("x + N_neg[y]", "neg"), ("x + both", "both")):
    glue(f"fa_acc_y_{tag}", float(e.loc[row, "acc_y"]), display=False)
    glue(f"fa_pred_yp_{tag}", float(e.loc[row, "pred_yp"]), display=False)
    glue(f"fa_p_yp_{tag}", float(e.loc[row, "p_yp"]), display=False)
    glue(f"fa_top_{tag}", names[int(e.loc[row, "top_label"])], display=False)
    glue(f"fa_top_share_{tag}", float(e.loc[row, "top_share"]), display=False)
glue("fa_pos_verdict", "raises" if e.loc["x + N_pos[y_p]", "pred_yp"] > e.loc["clean x", "pred_yp"] else
     "does not raise", display=False)

# %% [markdown]
# Clean, the model labels {glue:text}`fa_acc_y_clean:.0f`% of the forget images as
# {glue:text}`forget_class` and {glue:text}`fa_pred_yp_clean:.0f`% as their perturbing label.
# The positive noise {glue:text}`fa_pos_verdict` the share read as $y_p$
# (to {glue:text}`fa_pred_yp_pos:.0f`%): it evokes the perturbing concept, as intended. The
# negative noise lowers the share read as {glue:text}`forget_class` to
# {glue:text}`fa_acc_y_neg:.0f`%, but it is not aimed at $y_p$: the model then calls
# {glue:text}`fa_top_share_neg:.0f`% of the images {glue:text}`fa_top_neg`. With both
# noises, {glue:text}`fa_pred_yp_both:.0f`% read as $y_p$ (mean $p(y_p)$
# {glue:text}`fa_p_yp_both:.0f`%, against {glue:text}`fa_p_yp_clean:.0f`% clean) and the most
# common prediction is {glue:text}`fa_top_both` ({glue:text}`fa_top_share_both:.0f`%).
#
# How to read this: an error-maximising noise has no optimum, so the negative noise grows
# until the pixel bound stops it ({glue:text}`fa_neg_at_bound:.0f`% of its pixels sit at
# $\pm$`noise_eps`) and can then dominate the sum. Where it does, the noised forget images are
# "not {glue:text}`forget_class`" rather than "$y_p$" to the frozen model, and it is the
# fine-tuning that ties them to $y_p$. The balance between the two noises is governed by `noise_eps` and
# `noise_lambda` — ours and the paper's respectively.
#
# ## Shared and unique channels under MeGU and UNSIR
#
# Now the two methods themselves, on the same class request and the same original model
# (hyperparameters: the profile's, else each method's defaults). We follow the forgotten
# class's pattern from chapter {doc}`Entanglement <01_entanglement>`, split into its shared and unique channels, and
# measure their mean activation on test images of the forgotten class and of the retained
# classes. What the paper's argument predicts: the unique channels should lose their response
# to the forgotten class, and the shared channels should keep their response to the retained
# classes. (A retrained model is not in the comparison: its channels are a different network's
# and do not correspond one to one.)

# %% tags=["hide-input"]
# the runner's own single run: the same seeding and evaluation as the experiments' records
megu_run, megu_record = run_one(cfg, data, request, "megu", seed, original=original)
unsir_run, unsir_record = run_one(cfg, data, request, "unsir", seed, original=original)
models = {"original": original, "MeGU": megu_run.model, "UNSIR": unsir_run.model}
columns = ["retain_acc", "forget_acc", "test_retain_acc", "test_forget_acc", "mia"]
summary = pd.DataFrame({"original": ml.evaluate(original, data, request, max_retain=cfg.eval.get("max_retain"),
                                                seed=seed),
                        "MeGU": megu_record["metrics"], "UNSIR": unsir_record["metrics"]}).T[columns]
summary["seconds"] = [original.train_seconds, megu_run.seconds, unsir_run.seconds]
summary.T.round(2)  # one row per measure: the page's column holds it whole

# %% tags=["hide-input"]
patterns, _, _ = model_patterns(original, data, q=q, seed=seed, device=cfg.device)
test_y = data.targets("test")
shift = channel_shift(patterns, k, models, data.test_x, test_y, device=cfg.device)
fig = grouped_bars(shift, "channels", "activation", "model", col="samples", fmt=".2f",
                   xlabel=f"channels of P[{forget_name}]", ylabel="mean activation (test images)",
                   title=f"The pattern of {forget_name!r} before and after unlearning")
glue_figure("fig-04-channels", fig)

# %% [markdown]
# :::{glue:figure} fig-04-channels
# :name: fig-04-channels
#
# Mean activation of the forgotten class's shared and unique channels, on test images of the
# forgotten class and of the retained classes, in the original model and after MeGU and UNSIR.
# :::

# %% tags=["remove-cell"]
piv = shift.pivot_table(index=["channels", "samples"], columns="model", values="activation")


def change(channels, samples, model):
    """Relative change of a channel group's mean activation against the original (percent)."""
    if (channels, samples) not in piv.index:
        return float("nan")
    before = piv.loc[(channels, samples), "original"]
    return float(100 * (piv.loc[(channels, samples), model] - before) / abs(before)) if before else float("nan")


for model in ("MeGU", "UNSIR"):
    tag = model.lower()
    glue(f"fa_{tag}_shared_retained", change("shared", "retained classes", model), display=False)
    glue(f"fa_{tag}_shared_forget", change("shared", "forget class", model), display=False)
    glue(f"fa_{tag}_unique_forget", change("unique", "forget class", model), display=False)
    glue(f"fa_{tag}_test_forget_acc", float(summary.loc[model, "test_forget_acc"]), display=False)
    glue(f"fa_{tag}_test_retain_acc", float(summary.loc[model, "test_retain_acc"]), display=False)
glue("fa_n_shared", len(patterns.split(k)["shared"]), display=False)
glue("fa_n_unique", len(patterns.split(k)["unique"]), display=False)
changes = {model: {"shared_retained": change("shared", "retained classes", model)} for model in ("MeGU", "UNSIR")}
glue("fa_verdict", Markdown(vd.fragment_align_verdict(e, changes, names, forget_name).markdown()), display=False)

# %% [markdown]
# The forgotten class's pattern has {glue:text}`fa_n_shared` shared and
# {glue:text}`fa_n_unique` unique channels (a group with no channel has no bar). On test
# images of the retained classes, the shared channels' mean activation changes by
# {glue:text}`fa_megu_shared_retained:+.0f`% under MeGU and
# {glue:text}`fa_unsir_shared_retained:+.0f`% under UNSIR; on the forgotten class's images the
# unique channels change by {glue:text}`fa_megu_unique_forget:+.0f`% (MeGU) and
# {glue:text}`fa_unsir_unique_forget:+.0f`% (UNSIR), and the shared ones by
# {glue:text}`fa_megu_shared_forget:+.0f`% and {glue:text}`fa_unsir_shared_forget:+.0f`%
# ("nan" where a group is empty). Both methods leave the forgotten class at
# {glue:text}`fa_megu_test_forget_acc:.1f`% (MeGU) and {glue:text}`fa_unsir_test_forget_acc:.1f`%
# (UNSIR) test accuracy, and the retained classes at
# {glue:text}`fa_megu_test_retain_acc:.1f`% and {glue:text}`fa_unsir_test_retain_acc:.1f`%.
#
# How to read it: a method that keeps the retained classes' activations of the shared
# channels near the original's has not pulled the shared features away from their other
# owners (no over-unlearning); a drop of the unique channels' response to the forgotten class
# is the forgetting itself. The measurement is ours, on one seed and one class; the
# experiments chapter reports the accuracies over seeds and classes.


# %% [markdown]
# ## Verdict
#
# ```{glue:md} fa_verdict
# :format: myst
# ```
