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
# # Original vs. retrain: what "forgetting a class" means
#
# Before any unlearning method, the two models every method is measured against: the
# **original** model, trained on the whole training set, and the **retrained** model,
# trained from scratch on the retain set only — the gold standard of unlearning. A good
# unlearning method produces a model that behaves like the retrained one, in much less time.
#
# This chapter runs on the profile's data set and model (by default Fashion-MNIST and the
# small CNN on the CPU) and forgets one class (by default "Shirt").

# %% tags=["parameters"]
profile = "main"  # a profile in params/ (or a YAML path): data set, model, schedule, seeds...
dataset = None  # None: the profile's data set; else a name or an image folder
forget_class = None  # None: the profile's notebook.forget_class
seed = None  # None: the profile's first seed
device = None  # None: the profile's device
rerun = False  # True: retrain here even where the profile's committed records hold this run

# %% tags=["hide-input"]
import pandas as pd
from myst_nb import glue

from megu_lib.experiments import request_records
from megu_lib.plotting import glue_figure, per_class_bars, show_examples
from megu_lib.profile import chapter_setup, check_parameter

check_parameter("rerun", rerun, bool, "True or False")
setup = chapter_setup(profile, dataset=dataset, device=device, seed=seed, forget_class=forget_class)
cfg, seed, data, request, original = setup.cfg, setup.seed, setup.data, setup.request, setup.original
print(f"profile {cfg.name!r}: {cfg.description}")
print(data)
print(request)

# %% [markdown]
# ## The data
#
# A few training images of each class; the class to forget is marked in red.

# %% tags=["hide-input"]
fig = show_examples(data, per_class=8, seed=seed, highlight=request.forget)
glue_figure("fig-00-examples", fig)

# %% [markdown]
# :::{glue:figure} fig-00-examples
# :name: fig-00-examples
#
# A few training images of each class; the class this page forgets is marked in red.
# :::

# %% [markdown]
# ## Training the original and retraining without the class
#
# Both models use the same architecture, schedule and seed; the retrained model starts
# from a fresh initialisation (every layer, not only the last) and never sees the
# forgotten class. Both are evaluated exactly as the experiments evaluate every method. On a
# profile whose experiments are committed (the main one), the two rows below are the
# experiments' own records of this seed and class — the runs that chapter
# [Experiments](05_experiments.ipynb) ranks every method against —, and nothing is retrained
# here (the parameter `rerun` retrains anyway). Elsewhere both runs are made here and cached
# by a hash of everything that determines them, so a re-run of this page does not train again.
# The chapters after this one work on the original trained here, from the same recipe and
# seed; on another kind of CPU, or in bf16 where the record was made in float32, its figures can
# move from the record's by about a point on one class (the book page *Reproduce*).

# %% tags=["hide-input"]
records, committed = request_records(cfg, data, request, ["retrain"], seed, original=original, run=rerun)
rows = {name: dict(rec["metrics"]) for name, rec in records.items()}
accuracies = {name: rec["per_class"] for name, rec in records.items()}
retrain_seconds = records["retrain"]["seconds"]
table = pd.DataFrame(rows).T[["retain_acc", "forget_acc", "test_acc", "test_retain_acc",
                              "test_forget_acc", "mia", "mia_loss"]]
table["seconds"] = [records["original"]["train_seconds"], retrain_seconds]
print(f"the experiments' committed records of seed {seed} (finished {records['retrain']['finished'][:10]}); "
      "nothing retrained here" if committed else "made here, as the experiments make them")
table.T.round(2)  # one row per measure: the page's column holds it whole

# %% tags=["remove-cell"]
for name, metrics in rows.items():
    for key, value in metrics.items():
        glue(f"{name}_{key}", value, display=False)
glue("retrain_seconds", retrain_seconds, display=False)
glue("forget_class", request.forget[0], display=False)
glue("n_forget", len(request.forget_idx), display=False)

# %% [markdown]
# The original model classifies {glue:text}`original_test_forget_acc:.1f`% of the test images of
# the class {glue:text}`forget_class` correctly and {glue:text}`original_test_acc:.1f`% of all
# test images. The retrained model, which never saw the {glue:text}`n_forget` forget samples,
# gets {glue:text}`retrain_test_forget_acc:.1f`% of that class right (it cannot predict a label it
# never learnt) and {glue:text}`retrain_test_retain_acc:.1f`% of the other classes' test images
# (original: {glue:text}`original_test_retain_acc:.1f`%). Retraining took
# {glue:text}`retrain_seconds:.0f` s: this is the cost an unlearning method has to beat.
#
# The membership-inference attack (MIA, entropy-based) calls
# {glue:text}`retrain_mia:.1f`% of the forget samples "members" of the retrained model's
# training set, against {glue:text}`original_mia:.1f`% for the original. The retrained
# figure is not zero: a model that never saw a sample can still be confident about it.
# This is why unlearning methods are compared with retrain's MIA, not with zero.

# %% [markdown]
# ## Where the forgotten class goes
#
# Per-class test accuracy of both models. Forgetting one class leaves the others almost
# untouched when the model is retrained; the classes that share features with the
# forgotten one are where an unlearning method is most likely to do collateral damage.

# %% tags=["hide-input"]
per_class = pd.concat([
    pd.DataFrame({"class": list(acc), "accuracy": list(acc.values()), "model": name})
    for name, acc in accuracies.items()])
fig = per_class_bars(per_class, title=f"Forgetting {request.forget[0]!r}", highlight=request.forget)
glue_figure("fig-00-per-class", fig)

# %% [markdown]
# :::{glue:figure} fig-00-per-class
# :name: fig-00-per-class
#
# Test accuracy per class of the original model and of the model retrained without the
# forgotten class (marked in red).
# :::
