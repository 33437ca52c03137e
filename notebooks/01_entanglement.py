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
# # Entanglement: shared and unique features
#
# MeGU's starting point is a hypothesis about what a trained classifier has learnt. Training
# maps **feature patterns** $P_k$ to concepts $C_k$; two concepts share *associated* features
# $P_{ij} = P_i \cap P_j$ and keep *unique* ones $P_i \setminus P_{ij}$. Erase every feature of
# a forgotten class and the retained classes that share them are damaged too
# (**over-unlearning**); erase too little and the class's mapping survives
# (**under-unlearning**). The paper argues this qualitatively, with pictures.
#
# This chapter measures it. The measurement is **ours**, not the paper's (the paper gives no
# formula): a class's pattern is read off the trained model's penultimate activations, and
# "shared" and "unique" are set operations on those patterns. We then ask two questions the
# hypothesis makes testable: do classes whose patterns overlap get confused with each other,
# and are entangled classes easier to "forget" by accident, with plain fine-tuning?

# %% tags=["parameters"]
profile = "main"  # a profile in params/ (or a YAML path): data set, model, schedule, seeds...
dataset = None  # None: the profile's data set; else a name or an image folder
forget_class = None  # None: the profile's notebook.forget_class
seed = None  # None: the profile's first seed
device = None  # None: the profile's device
q = 0.1  # fraction of the penultimate channels that make up one class's pattern P_k (ours)
max_samples = 10000  # training images used to estimate the patterns
difficulty_classes = 5  # classes forgotten one at a time by plain fine-tuning (0: skip that section)
difficulty_epochs = 0.5  # epochs of fine-tuning on the retain set, per class

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

import megu_lib as ml
from megu_lib import verdicts as vd
from megu_lib.entanglement import (
    class_patterns,
    confusion_rates,
    forgetting_difficulty,
    model_patterns,
    overlap_confusion,
)
from megu_lib.metrics import spearman
from megu_lib.plotting import glue_figure, labelled_scatter, matrix_heatmap, notice_figure, pattern_membership
from megu_lib.profile import chapter_setup

setup = chapter_setup(profile, dataset=dataset, device=device, seed=seed, forget_class=forget_class)
cfg, seed, data, request, original = setup.cfg, setup.seed, setup.data, setup.request, setup.original
forget_name, k = setup.forget_name, setup.forget_index
print(f"profile {cfg.name!r}: {data.name}, {cfg.model['arch']}, forget class {forget_name!r}")

# %% [markdown]
# ## Feature patterns and their overlap
#
# Our operationalisation (the paper gives none): for every penultimate channel we take its mean
# activation on each class's training images and standardise it across classes (a z-score
# per channel). A class's pattern $P_k$ is the top fraction $q$ of channels by that z-score —
# the channels that fire *more* for this class than for the others. Two patterns overlap by
# their Jaccard index $|P_i \cap P_j| / |P_i \cup P_j|$: 0 when they have no channel in common,
# 1 when they are the same set.

# %% tags=["hide-input"]
patterns, features, labels = model_patterns(original, data, q=q, max_samples=max_samples, seed=seed,
                                            device=cfg.device)
overlap = patterns.overlap()
fig = matrix_heatmap(overlap, title=f"Jaccard overlap of class patterns (q = {q})", xlabel="class j",
                     ylabel="class i", cbar_label=r"$|P_i \cap P_j| \,/\, |P_i \cup P_j|$", vmin=0, vmax=1,
                     highlight=request.forget)
glue_figure("fig-01-overlap", fig)

# %% [markdown]
# :::{glue:figure} fig-01-overlap
# :name: fig-01-overlap
#
# Jaccard overlap of the classes' feature patterns in the original model (our measure: the
# top share q of penultimate channels per class); the class to forget in red.
# :::

# %% tags=["remove-cell"]
pairs_all = overlap.where(~np.eye(len(overlap), dtype=bool)).stack()
top_pair = pairs_all.idxmax()
entanglement = patterns.entanglement()
glue("ent_n_channels", int(features.shape[1]), display=False)
glue("ent_pattern_size", int(patterns.members[0].sum()), display=False)
glue("ent_q_percent", 100 * q, display=False)
glue("ent_top_pair", f"{top_pair[0]} and {top_pair[1]}", display=False)
glue("ent_top_pair_overlap", float(pairs_all.max()), display=False)
glue("ent_most_entangled", str(entanglement.idxmax()), display=False)
glue("ent_least_entangled", str(entanglement.idxmin()), display=False)
glue("ent_forget_rank", int(entanglement.rank(ascending=False, method="min")[forget_name]), display=False)
glue("ent_n_classes", len(entanglement), display=False)

# %% [markdown]
# Each pattern holds {glue:text}`ent_pattern_size` of the model's {glue:text}`ent_n_channels`
# penultimate channels ($q$ = {glue:text}`ent_q_percent:.0f`%). The most similar pair of
# patterns is {glue:text}`ent_top_pair` (Jaccard {glue:text}`ent_top_pair_overlap:.2f`). Taking
# each class's mean overlap with the others as its *entanglement*,
# {glue:text}`ent_most_entangled` is the most entangled class and
# {glue:text}`ent_least_entangled` the least; the class to forget,
# {glue:text}`forget_class`, ranks {glue:text}`ent_forget_rank` of {glue:text}`ent_n_classes`.
#
# ## Shared and unique features of the class to forget
#
# The paper's picture, for one class: its pattern splits into channels that some other
# class's pattern also contains (shared, $P_k \cap \bigcup_{j \ne k} P_j$) and channels only it
# has (unique). Below, every column is one channel of the forgotten class's pattern and every
# row a class; a filled cell means that class's pattern contains the channel too.

# %% tags=["hide-input"]
glue("forget_class", forget_name, display=False)
split = patterns.split(k)
partner = overlap.loc[forget_name].drop(forget_name)
glue("ent_n_shared", len(split["shared"]), display=False)
glue("ent_n_unique", len(split["unique"]), display=False)
glue("ent_partner", str(partner.idxmax()), display=False)
glue("ent_partner_overlap", float(partner.max()), display=False)
fig = pattern_membership(patterns, k)
glue_figure("fig-01-pattern", fig)

# %% [markdown]
# :::{glue:figure} fig-01-pattern
# :name: fig-01-pattern
#
# The feature pattern of the class to forget. Top: each column is one channel of its pattern,
# each row a class; a filled cell means that class's pattern holds the channel too (shared
# channels left of the red line, unique ones right of it). Bottom: each other class's Jaccard
# overlap with it.
# :::

# %% [markdown]
# Of the {glue:text}`ent_pattern_size` channels of {glue:text}`forget_class`'s pattern,
# {glue:text}`ent_n_shared` also belong to another class's pattern and {glue:text}`ent_n_unique`
# to no other; its closest neighbour is {glue:text}`ent_partner` (Jaccard
# {glue:text}`ent_partner_overlap:.2f`). In MeGU's terms, the shared channels are what an
# unlearning method must leave intact for the neighbours, and the unique ones what it may
# erase. Chapter {doc}`Fragment-Align <04_fragment_align>` follows these two groups of channels through MeGU and UNSIR.
#
# ## Overlap and confusion
#
# If overlapping patterns mean shared concepts, the original model should confuse classes
# whose patterns overlap. For every pair of classes we set their overlap against how often
# the original model mistakes one for the other on the test set (the mean of the two
# directions' confusion rates). The correlation is Spearman's rank correlation (many pairs
# have no overlap at all, so ranks, not a linear fit, are the honest summary).

# %% tags=["hide-input"]
test_labels = data.targets("test")
logits = ml.predict_logits(original, data.test_x, device=cfg.device)
confusion = confusion_rates(logits, test_labels, data.class_names())
pairs = overlap_confusion(overlap, confusion)
rho = spearman(pairs.overlap, pairs.confusion)
most_confused = pairs.loc[pairs.confusion.idxmax()]
glue("ent_rho_confusion", rho, display=False)
glue("ent_n_pairs", len(pairs), display=False)
glue("ent_confused_pair", str(most_confused.pair), display=False)
glue("ent_confused_rate", float(most_confused.confusion), display=False)
glue("ent_confused_overlap", float(most_confused.overlap), display=False)
glue("ent_confusion_verdict", "consistent with" if rho > 0.2 else ("no support for" if rho == rho else
                                                                   "undefined for"), display=False)
fig = labelled_scatter(pairs, "overlap", "confusion", label="pair", annotate=5, logy=True,
                       xlabel="Jaccard overlap of the two classes' patterns",
                       ylabel="confusion rate (%, symlog scale)",
                       title=f"{len(pairs)} class pairs, Spearman ρ = {rho:.2f}")
glue_figure("fig-01-confusion", fig)

# %% [markdown]
# :::{glue:figure} fig-01-confusion
# :name: fig-01-confusion
#
# Each point is a pair of classes: the overlap of their feature patterns against how often the
# original model confuses them on the test set (the mean of both directions, symlog scale). The
# five most confused pairs are named.
# :::

# %% [markdown]
# Over the {glue:text}`ent_n_pairs` pairs of classes the rank correlation between pattern
# overlap and confusion is ρ = {glue:text}`ent_rho_confusion:.2f`. The pair the model confuses
# most, {glue:text}`ent_confused_pair` ({glue:text}`ent_confused_rate:.1f`% of their test
# images, averaged over both directions), has a pattern overlap of
# {glue:text}`ent_confused_overlap:.2f`. This is {glue:text}`ent_confusion_verdict` the paper's
# premise that the features a model shares between classes are the ones its concepts are
# entangled by (we call ρ > 0.2 consistent with it).
#
# The pattern size $q$ is our choice. If the premise holds, the correlation should survive
# other choices; whether it does is part of the test, and the verdict at the end of the page
# reads it. The same computation for other values of $q$, on the same features:

# %% tags=["hide-input"]
q_values = sorted({0.05, 0.1, 0.2, 0.3, q})
sensitivity = []
for qq in q_values:
    p = class_patterns(features, labels, data.class_names(), qq)
    pq = overlap_confusion(p.overlap(), confusion)
    sensitivity.append({"q": qq, "channels per pattern": int(p.members[0].sum()),
                        "Spearman ρ (overlap, confusion)": spearman(pq.overlap, pq.confusion),
                        f"shared channels of {forget_name}": len(p.split(k)["shared"]),
                        f"unique channels of {forget_name}": len(p.split(k)["unique"])})
pd.DataFrame(sensitivity).set_index("q").round(2)

# %% [markdown]
# ## Forgetting difficulty
#
# The hypothesis predicts an asymmetry: a class whose features are mostly shared should be
# lost quickly once the model stops seeing it (its neighbours pull the shared features to
# themselves), while a class with features of its own should survive. We test it with the
# simplest "unlearning" there is — fine-tuning the original on the retain set only (the
# `finetune` baseline, shortened to the epochs set in the parameters) — forgetting a few
# classes one at a time, spread over the entanglement ranking (the class to forget always
# among them). The table gives each class's test accuracy before and after, the share of it
# that is left, and the other classes' mean accuracy before and after. This check is ours;
# the other methods' version of it is in the chapter on the experiments.

# %% tags=["hide-input"]
ranked = list(entanglement.sort_values(ascending=False).index)
n_pick = min(int(difficulty_classes), len(ranked))
picked = [ranked[int(round(i))] for i in np.linspace(0, len(ranked) - 1, n_pick)] if n_pick > 1 else ranked[:n_pick]
if n_pick and forget_name not in picked:  # always include the class to forget, in place of its nearest pick
    nearest = min(picked, key=lambda c: abs(entanglement[c] - entanglement[forget_name]))
    picked[picked.index(nearest)] = forget_name
difficulty = forgetting_difficulty(original, data, picked, epochs=difficulty_epochs, seed=seed, device=cfg.device)
difficulty["entanglement"] = difficulty["class"].map(entanglement)
difficulty.set_index("class")[["entanglement", "acc_before", "acc_after", "left", "others_before",
                               "others_after"]].round(2)

# %% tags=["hide-input"]
if len(difficulty):
    rho_left = spearman(difficulty.entanglement, difficulty.acc_after)
    lost, kept = difficulty.loc[difficulty.acc_after.idxmin()], difficulty.loc[difficulty.acc_after.idxmax()]
    fig = labelled_scatter(difficulty, "entanglement", "acc_after", label="class", highlight=request.forget,
                           ylim=(-3, 103), xlabel="entanglement (mean pattern overlap with the other classes)",
                           ylabel="test accuracy of the class after fine-tuning (%)",
                           title=f"Plain fine-tuning on the retain set, {difficulty_epochs:g} epoch(s): "
                                 f"Spearman ρ = {rho_left:.2f}")
else:  # difficulty_classes = 0: the section is skipped
    rho_left, lost, kept = float("nan"), None, None
    fig = notice_figure("difficulty_classes = 0: no class was fine-tuned away")
glue_figure("fig-01-difficulty", fig)
glue("ent_rho_left", rho_left, display=False)
glue("ent_n_difficulty", len(difficulty), display=False)
glue("ent_difficulty_epochs", float(difficulty_epochs), display=False)
for tag, row in (("lost", lost), ("kept", kept)):
    glue(f"ent_{tag}_class", str(row["class"]) if row is not None else "none", display=False)
    glue(f"ent_{tag}_before", float(row.acc_before) if row is not None else float("nan"), display=False)
    glue(f"ent_{tag}_after", float(row.acc_after) if row is not None else float("nan"), display=False)

# %% [markdown]
# :::{glue:figure} fig-01-difficulty
# :name: fig-01-difficulty
#
# Each point is one class forgotten by plain fine-tuning on the retain set: its entanglement
# (mean pattern overlap with the other classes) against its test accuracy afterwards; the
# class this page forgets in red.
# :::
#
# After {glue:text}`ent_difficulty_epochs:g` epoch(s) of fine-tuning without it,
# {glue:text}`ent_lost_class` falls from {glue:text}`ent_lost_before:.0f`% to
# {glue:text}`ent_lost_after:.0f`% test accuracy, while {glue:text}`ent_kept_class` goes from
# {glue:text}`ent_kept_before:.0f`% to {glue:text}`ent_kept_after:.0f`%. Over the
# {glue:text}`ent_n_difficulty` classes tried, the rank correlation between entanglement and
# the accuracy that survives is ρ = {glue:text}`ent_rho_left:.2f` (a handful of points: read it
# as a direction, not a measurement). A negative ρ is the paper's asymmetry: entangled classes
# vanish under plain fine-tuning, because their shared features go on serving the neighbours
# and nothing of their own is left to recognise them by, while classes with unique features
# survive and need an unlearning method that erases those features on purpose. It is not the
# whole story: with a small $q$ many classes have no pattern overlap at all and tie at zero on
# the horizontal axis, yet some of them vanish too — a pattern of a few top channels misses
# similarity that the model's confusions show. This is where MeGU must earn its keep: forget
# the unique part of a class without pulling the shared part away from the classes that keep it.

# %% tags=["remove-cell"]
by_q = pd.DataFrame(sensitivity).set_index("q")
verdict = vd.entanglement_verdict(rho, by_q["Spearman ρ (overlap, confusion)"].to_dict(),
                                  by_q[f"unique channels of {forget_name}"].to_dict(), rho_left, q=q,
                                  forget=forget_name)
glue("ent_verdict", Markdown(verdict.markdown()), display=False)


# %% [markdown]
# ## Verdict
#
# ```{glue:md} ent_verdict
# :format: myst
# ```
