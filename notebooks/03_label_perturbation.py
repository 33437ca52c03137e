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
# # Label perturbation: where forgotten samples are sent
#
# MeGU's second step gives every forget sample $(x, y)$ a wrong but plausible label, its
# **perturbing label**
#
# $$y_p = \arg\max_{l \ne y} \; \varphi\big(T[c(x), l],\; p_\theta(l \mid x)\big),$$
#
# combining the transition matrix's row for the sample's concept $c(x)$ (chapter *The
# transition matrix*) with the trained model's own softmax $p_\theta$. The formula is **the
# paper's**; $\varphi$ is not given there, so **ours** are named rules:
#
# | rule | $\varphi$ | role |
# |---|---|---|
# | `product` | $T[c, l] \cdot p_\theta(l \mid x)$ | default: judge and model must both agree |
# | `T` | $T[c, l]$ | the judge alone: every sample of a class gets the same label |
# | `prediction` | $p_\theta(l \mid x)$ | the model's runner-up (the "MeGU without $T$" ablation) |
# | `mix` | $w\,T[c, l] + (1 - w)\,p_\theta(l \mid x)$ | a weighted compromise |
# | `random` | — | a uniformly random $l \ne y$ (the "random label" ablation) |
#
# This chapter shows where each rule sends the forgotten class, what that looks like on single
# images, how much the rules and the judges agree, and — on a random forget set that covers
# every class — the whole flow from original to perturbing labels.

# %% tags=["parameters"]
profile = "main"  # a profile in params/ (or a YAML path): data set, model, schedule, seeds...
dataset = None  # None: the profile's data set; else a name or an image folder
forget_class = None  # None: the profile's notebook.forget_class
seed = None  # None: the profile's first seed
device = None  # None: the profile's device
rules = ["product", "T", "prediction", "mix", "random"]  # the rules phi to compare
mix_weight = 0.5  # w of the mix rule
judges = ["text", "features", "uniform"]  # judges compared under the product rule
n_exemplars = 10  # exemplars per class for T (MeGU's default)
random_fraction = None  # None: the profile's random-scenario fraction (else 0.05)
n_examples = 16  # forget images shown

# %% tags=["hide-input"]
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import torch
from IPython.display import Markdown
from myst_nb import glue

import megu_lib as ml
from megu_lib import verdicts as vd
from megu_lib.perturb import label_flow, perturbing_labels, rule_agreement, target_shares
from megu_lib.plotting import glue_figure, image_grid, matrix_heatmap
from megu_lib.profile import chapter_setup

setup = chapter_setup(profile, dataset=dataset, device=device, seed=seed, forget_class=forget_class)
cfg, seed, data, request, original = setup.cfg, setup.seed, setup.data, setup.request, setup.original
forget_name, names = setup.forget_name, data.class_names()
judge_list = list(dict.fromkeys([cfg.judge] + list(judges)))
T = {j: ml.estimate_transition_matrix(data, j, request=request, model=original, n_exemplars=n_exemplars, seed=seed,
                                      device=cfg.device) for j in judge_list}
print(f"profile {cfg.name!r}: {data.name}; forget class {forget_name!r}; T from the {cfg.judge!r} judge")

# %% [markdown]
# ## Where the forgotten class goes
#
# Each rule labels every training sample of {glue:text}`forget_class`
# ({glue:text}`pl_n_forget` images). Rows below are labellings — each rule with $T$ from the
# profile's judge ({glue:text}`pl_judge`), then the `product` rule with every other judge's
# $T$ — and each cell the share of the forget samples sent to that label. The forgotten
# class's own column is empty by construction.

# %% tags=["hide-input"]
xf, yf = request.forget_data(data)
concepts = T[cfg.judge].concept_ids(data)[request.forget_idx]
probs = ml.predict_logits(original, xf, device=cfg.device).softmax(1)
labels = {}
for rule in rules:
    labels[rule] = perturbing_labels(original, xf, yf, concepts, T[cfg.judge].matrix, rule=rule, weight=mix_weight,
                                     seed=seed, probs=probs)
for j in judge_list:
    if j != cfg.judge:
        labels[f"product ({j} T)"] = perturbing_labels(original, xf, yf, concepts, T[j].matrix, rule="product",
                                                       seed=seed, probs=probs)
shares = target_shares(labels, names)
fig = matrix_heatmap(shares, title=f"Perturbing labels of the {len(yf)} {forget_name!r} training images",
                     xlabel="perturbing label y_p", ylabel=f"rule (T from {cfg.judge!r} unless named)",
                     cbar_label="share of forget samples (%)", fmt=".0f", vmin=0, vmax=100, cmap="mako_r",
                     highlight=request.forget)
glue_figure("fig-03-shares", fig)

# %% [markdown]
# :::{glue:figure} fig-03-shares
# :name: fig-03-shares
#
# Where each labelling sends the training images of the class to forget: rows are labellings
# (each rule with T from the profile's judge, then the product rule with each other judge's T),
# cells the share of the forget samples sent to each perturbing label.
# :::

# %% tags=["remove-cell"]
main_rule = "product" if "product" in labels else rules[0]
top = shares.loc[main_rule].sort_values(ascending=False)
glue("forget_class", forget_name, display=False)
glue("pl_n_forget", len(yf), display=False)
glue("pl_judge", cfg.judge, display=False)
glue("pl_main_rule", main_rule, display=False)
glue("pl_top_label", str(top.index[0]), display=False)
glue("pl_top_share", float(top.iloc[0]), display=False)
glue("pl_second_label", str(top.index[1]), display=False)
glue("pl_second_share", float(top.iloc[1]), display=False)
glue("pl_n_targets", int((shares.loc[main_rule] > 0).sum()), display=False)

# %% [markdown]
# Under the {glue:text}`pl_main_rule` rule, {glue:text}`pl_top_share:.0f`% of the
# {glue:text}`forget_class` images are sent to {glue:text}`pl_top_label` and
# {glue:text}`pl_second_share:.0f`% to {glue:text}`pl_second_label`
# ({glue:text}`pl_n_targets` labels receive any at all). The `T` rule sends every image of the
# class to one label (its row of $T$ has one maximum); `prediction` follows, image by image,
# the model's most probable label other than $y$; `product` and `mix` sit between; `random`
# spreads the class evenly — the ablation that throws the semantic guidance away.
#
# ## Single images
#
# A few forget images with their perturbing label under the {glue:text}`pl_main_rule` rule
# (→) and the original model's own top prediction. Of the forget images the original model
# already gets wrong ({glue:text}`pl_n_wrong`), {glue:text}`pl_keep_share:.0f`% keep the
# model's wrong label as their perturbing label: for those, MeGU's target is where the model
# already puts them.

# %% tags=["hide-input"]
g = torch.Generator().manual_seed(seed)
show = torch.randperm(len(yf), generator=g)[:n_examples]
pred = probs.argmax(1)
titles = [f"→ {names[int(labels[main_rule][i])]}\nmodel: {names[int(pred[i])]}" for i in show]
colors = ["crimson" if int(pred[i]) != int(yf[i]) else "black" for i in show]
wrong = pred != yf
glue("pl_n_wrong", int(wrong.sum()), display=False)
glue("pl_keep_share", 100 * float((labels[main_rule][wrong] == pred[wrong]).float().mean()) if wrong.any()
     else float("nan"), display=False)
fig = image_grid(xf[show], titles, ncols=4, size=1.55, title_colors=colors)
glue_figure("fig-03-examples", fig)

# %% [markdown]
# :::{glue:figure} fig-03-examples
# :name: fig-03-examples
#
# Training images of the class to forget, each with its perturbing label under the main rule
# (→) and the original model's top prediction (in red where the model is wrong).
# :::

# %% [markdown]
# ## How much the rules agree
#
# The share of forget samples two labellings send to the same label. Where the judge and the
# model agree, `product`, `T` and `prediction` coincide; where they differ, the choice of
# $\varphi$ — ours, not the paper's — decides.

# %% tags=["hide-input"]
agree = rule_agreement(labels)
fig = matrix_heatmap(agree, title="Agreement between labellings", xlabel="labelling", ylabel="labelling",
                     cbar_label="same perturbing label (% of forget samples)", fmt=".0f", vmin=0, vmax=100,
                     cmap="mako_r")
glue_figure("fig-03-agreement", fig)

# %% [markdown]
# :::{glue:figure} fig-03-agreement
# :name: fig-03-agreement
#
# The share of forget samples (%) two labellings send to the same perturbing label.
# :::

# %% tags=["remove-cell"]
def pair(a, b):
    return float(agree.loc[a, b]) if a in agree.index and b in agree.index else float("nan")


glue("pl_agree_product_T", pair("product", "T"), display=False)
glue("pl_agree_product_prediction", pair("product", "prediction"), display=False)
glue("pl_agree_product_random", pair("product", "random"), display=False)
glue("pl_chance", 100 / (len(names) - 1), display=False)
if {main_rule, "T", "prediction"} <= set(agree.index):
    pl_verdict = vd.perturbation_verdict(agree, main_rule).markdown()
else:
    pl_verdict = "*The rules T and prediction were not both compared on this run: no verdict.*"
glue("pl_verdict", Markdown(pl_verdict), display=False)

# %% [markdown]
# `product` agrees with `T` on {glue:text}`pl_agree_product_T:.0f`% of the samples and with
# `prediction` on {glue:text}`pl_agree_product_prediction:.0f`%; with `random` it agrees on
# {glue:text}`pl_agree_product_random:.0f`% — chance level is about
# {glue:text}`pl_chance:.0f`% (one in $K - 1$ labels).
#
# ## The whole flow, on a random forget set
#
# In the random scenario the forget set holds samples of every class, so the flow from
# original to perturbing label (the {glue:text}`pl_main_rule` rule, $T$ from
# {glue:text}`pl_judge`) can be read for all classes at once. Each row is an original label;
# its cells are the shares of that label's forget samples sent to each perturbing label.

# %% tags=["hide-input"]
fraction = random_fraction or (cfg.scenarios.get("random", {}).get("forget") or [0.05])[0]
rand_request = ml.make_request(data, "random", fraction=fraction, seed=seed)
xr, yr = rand_request.forget_data(data)
y_pr = perturbing_labels(original, xr, yr, T[cfg.judge].concept_ids(data)[rand_request.forget_idx],
                         T[cfg.judge].matrix, rule=main_rule, weight=mix_weight, seed=seed, device=cfg.device)
flow = label_flow(yr, y_pr, len(names)).double()
flow_pct = (100 * flow / flow.sum(1, keepdim=True).clamp(min=1)).numpy()
flow_frame = pd.DataFrame(flow_pct, index=pd.Index(names, name="original label y"),
                          columns=pd.Index(names, name="perturbing label y_p"))
fig = matrix_heatmap(flow_frame, title=f"Label flow of a random {fraction:g} forget set ({len(yr)} samples)",
                     xlabel="perturbing label y_p", ylabel="original label y", cbar_label="share of the row (%)",
                     fmt=".0f", vmin=0, vmax=100, cmap="mako_r")
glue_figure("fig-03-flow", fig)

# %% [markdown]
# :::{glue:figure} fig-03-flow
# :name: fig-03-flow
#
# The flow from original label (rows) to perturbing label (columns) on a random forget set,
# each row in percent of that label's forget samples.
# :::

# %% tags=["remove-cell"]
top_flow = flow_frame.stack().sort_values(ascending=False)
glue("pl_n_random", len(yr), display=False)
glue("pl_flow_from", str(top_flow.index[0][0]), display=False)
glue("pl_flow_to", str(top_flow.index[0][1]), display=False)
glue("pl_flow_share", float(top_flow.iloc[0]), display=False)

# %% [markdown]
# Of the {glue:text}`pl_n_random` randomly chosen forget samples, the strongest flow is from
# {glue:text}`pl_flow_from` to {glue:text}`pl_flow_to` ({glue:text}`pl_flow_share:.0f`% of that
# class's forget samples). In the subclass scenario the same rule runs over superclasses,
# excluding the sample's own superclass; it needs a model trained on the coarse labels, which
# the experiment runner trains for that scenario.


# %% [markdown]
# ## Verdict
#
# ```{glue:md} pl_verdict
# :format: myst
# ```
