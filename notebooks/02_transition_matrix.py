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
# # The transition matrix: which concept is close to which
#
# MeGU does not push a forgotten sample towards *any* wrong label: it sends it to a label that
# is semantically close, so that the shared features keep meaning what they meant. The
# closeness comes from a **transition matrix** $T$: $T[c, l]$ scores how similar concept $c$
# (the forgotten data's concept) is to label $l$ of the model. It is estimated once, from a few
# exemplars per class, cached, and reused for every request.
#
# **The paper's** judge is a zero-shot multimodal LLM asked an in-context True/False question
# (the prompt is below, verbatim). **Ours**: the scoring of one prompt from the next-token
# logits, the row normalisation, and every other judge in this chapter — a text-embedding
# judge that runs offline (`text`), the trained model's own features (`features`), CLIP
# (`clip`), and a `uniform` judge that knows nothing (the "no guidance" ablation). Each judge
# fills the same matrix; this chapter puts them side by side.

# %% tags=["parameters"]
profile = "main"  # a profile in params/ (or a YAML path): data set, model, schedule, seeds...
dataset = None  # None: the profile's data set; else a name or an image folder
forget_class = None  # None: the profile's notebook.forget_class
seed = None  # None: the profile's first seed
device = None  # None: the profile's device
judges = ["text", "features", "uniform"]  # judges that run offline, without downloading weights
vlm_model = None  # a local folder (or cached Hugging Face id) of an image-text-to-text model: adds the paper's judge
clip_model = None  # a local folder (or cached id) of a CLIP-like model: adds the clip judge
n_exemplars = 10  # exemplars per class (MeGU's default)

# %% tags=["hide-input"]
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the book never downloads weights behind the reader's back

import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

import megu_lib as ml
from megu_lib import verdicts as vd
from megu_lib.concepts import judge_agreement, nearest_table
from megu_lib.entanglement import confusion_rates
from megu_lib.judges import get_judge
from megu_lib.plotting import glue_figure, heatmaps_side_by_side, matrix_heatmap
from megu_lib.profile import chapter_setup

setup = chapter_setup(profile, dataset=dataset, device=device, seed=seed, forget_class=forget_class)
cfg, seed, data, request, original = setup.cfg, setup.seed, setup.data, setup.request, setup.original
forget_name = setup.forget_name
weights = {"vlm": vlm_model, "clip": clip_model}
run = list(dict.fromkeys(list(judges) + [j for j in ("vlm", "clip") if weights[j] is not None]))
print(f"profile {cfg.name!r}: {data.name}; judges: {', '.join(run)}; MeGU uses the {cfg.judge!r} judge")

# %% [markdown]
# ## The paper's prompt
#
# For a query image of class $k$ and each candidate label $l$, the paper shows the model three
# images — an exemplar of $l$ (answered True), an exemplar of another class $p$ (answered
# False) and the query (left open) — with this prompt, here for the candidate label
# {glue:text}`forget_class`:

# %%
print(ml.build_prompt(forget_name))

# %% [markdown]
# Our reading of the score (the paper gives none): $P(\text{True}) / (P(\text{True}) +
# P(\text{False}))$ from the next-token logits, averaged over the $n$ exemplars of class $k$;
# each row is then min-max normalised over the labels $l \ne k$, and the concept's own label is
# set to 0.
#
# {glue:text}`tm_vlm_note`

# %% tags=["remove-cell"]
glue("forget_class", forget_name, display=False)
if vlm_model is not None:
    note = (f"The paper's judge ran here, on the local model {vlm_model!r}; its matrix is the `vlm` panel "
            "below.")
else:
    note = (f"The paper's judge could not run for this page: it needs the weights of a multimodal LLM "
            f"(by default {get_judge('vlm').default_model_id}), and the book is built offline, without "
            f"downloading them. The matrices below come from the offline judges {', '.join(run)}; MeGU's "
            f"experiments use the {cfg.judge!r} judge. Re-run this page with the parameter "
            "vlm_model='/path/to/model' to add the paper's judge.")
glue("tm_vlm_note", note, display=False)

# %% [markdown]
# ## The judges' matrices
#
# Every judge estimates $T$ for the class scenario (concepts = labels = the classes) from the
# same {glue:text}`tm_n_exemplars` exemplars per class. Rows are the concept, columns the
# candidate label; darker means less similar. The diagonal is 0 by construction (a sample is
# never sent to its own label).

# %% tags=["hide-input"]
matrices = {}
for j in run:
    options = {"model_id": weights[j]} if weights.get(j) is not None else {}
    matrices[j] = ml.estimate_transition_matrix(data, j, request=request, model=original, n_exemplars=n_exemplars,
                                                seed=seed, device=cfg.device, **options)
glue("tm_n_exemplars", n_exemplars, display=False)
fig = heatmaps_side_by_side({f"{j} judge": tm.to_frame() for j, tm in matrices.items()}, vmin=0, vmax=1,
                            xlabel="candidate label l", ylabel="concept c", cbar_label="T[c, l] (row min-max)",
                            annot=False, highlight=request.forget)
glue_figure("fig-02-judges", fig)

# %% [markdown]
# :::{glue:figure} fig-02-judges
# :name: fig-02-judges
#
# The transition matrix T of each judge, on one colour scale: rows are the concept c, columns
# the candidate label l, darker is less similar; the diagonal is 0 by construction. The class to
# forget is marked in red.
# :::

# %% [markdown]
# The judge MeGU uses in the experiments, in full:

# %% tags=["hide-input"]
main = cfg.judge if cfg.judge in matrices else run[0]
fig = matrix_heatmap(matrices[main].to_frame(), title=f"T from the {main!r} judge", xlabel="candidate label l",
                     ylabel="concept c", cbar_label="T[c, l]", vmin=0, vmax=1, highlight=request.forget)
glue_figure("fig-02-main", fig)

# %% [markdown]
# :::{glue:figure} fig-02-main
# :name: fig-02-main
#
# T from the judge MeGU uses in the experiments, with its values (each row min-max normalised
# over the other labels).
# :::

# %% [markdown]
# ## Nearest concepts
#
# For each class, the three labels each judge finds closest (best first). These are the
# labels MeGU's perturbing rule will prefer for that class's forgotten samples (chapter
# {doc}`Label perturbation <03_label_perturbation>`). A judge with no opinion (`uniform`) ties everywhere.

# %% tags=["hide-input"]
nearest = nearest_table(matrices, top=3)
for j in matrices:
    glue(f"tm_nearest_{j}", nearest.loc[forget_name, j], display=False)
glue("tm_main_judge", main, display=False)
glue("tm_main_nearest", nearest.loc[forget_name, main], display=False)
nearest

# %% [markdown]
# For {glue:text}`forget_class`, the {glue:text}`tm_main_judge` judge ranks
# {glue:text}`tm_main_nearest` closest.
#
# ## Do the judges agree?
#
# Two summaries, ours: the Spearman rank correlation of two judges' rows (over the candidate
# labels, averaged over the classes), and the top-1 agreement — the share of classes whose
# single closest label is the same for both. A judge that ties a whole row (`uniform`) ranks
# nothing, so both are undefined for it (shown empty).

# %% tags=["hide-input"]
agreement = judge_agreement(matrices)
spearman_table = agreement.pivot(index="judge_a", columns="judge_b", values="spearman").loc[run, run]
top1_table = agreement.pivot(index="judge_a", columns="judge_b", values="top1").loc[run, run]
fig = matrix_heatmap(spearman_table, title="Agreement of the judges' rankings", vmin=-1, vmax=1, cmap="RdBu_r",
                     xlabel="judge", ylabel="judge", cbar_label="mean Spearman ρ of rows", annot=True)
top1_table.round(1).rename_axis(index="top-1 agreement (%)", columns="")
glue_figure("fig-02-agreement", fig)

# %% [markdown]
# :::{glue:figure} fig-02-agreement
# :name: fig-02-agreement
#
# The mean Spearman rank correlation of two judges' rows (over the candidate labels, averaged
# over the classes); empty for a judge that ties a whole row.
# :::

# %% tags=["remove-cell"]
a, b = (run[0], run[1]) if len(run) >= 2 else (run[0], run[0])
glue("tm_judge_a", a, display=False)
glue("tm_judge_b", b, display=False)
glue("tm_pair_spearman", float(spearman_table.loc[a, b]), display=False)
glue("tm_pair_top1", float(top1_table.loc[a, b]), display=False)

# %% [markdown]
# The {glue:text}`tm_judge_a` and {glue:text}`tm_judge_b` judges correlate at
# ρ = {glue:text}`tm_pair_spearman:.2f` and pick the same closest label for
# {glue:text}`tm_pair_top1:.0f`% of the classes. The judges look at different things — names
# (`text`), what the trained network itself has learnt (`features`), images and names together
# (`vlm`, `clip`) — so there is no reason for them to agree closely; where they differ, the
# choice of judge changes the perturbing labels, which chapter
# {doc}`Label perturbation <03_label_perturbation>` measures.
#
# ## Cost
#
# The judge runs once per data set (and model, for `features`) and is cached; our MeGU
# reports its time apart from the unlearning time (a one-off cost, shared by every request).
# Seconds are those of
# the run that filled the cache (so a page rebuilt from the cache shows the original cost);
# "loading" is the part spent loading weights.

# %% tags=["hide-input"]
cost = pd.DataFrame([{"judge": j, "seconds": tm.seconds, "loading (s)": tm.details.get("load_seconds", 0.0),
                      "device": tm.details.get("device"), "from cache": tm.from_cache,
                      "weights": tm.model_id or "none"} for j, tm in matrices.items()]).set_index("judge")
for j, tm in matrices.items():
    glue(f"tm_seconds_{j}", float(tm.seconds), display=False)
glue("tm_main_seconds", float(matrices[main].seconds), display=False)
cost.round(3)

# %% [markdown]
# The {glue:text}`tm_main_judge` judge took {glue:text}`tm_main_seconds:.2f` s for the whole
# matrix. The paper's judge asks one three-image question per (exemplar, candidate label)
# pair — $K \times n \times K$ prompts, {glue:text}`tm_n_prompts` for this data set — which is
# why it is estimated once and cached rather than per request.

# %% tags=["remove-cell"]
glue("tm_n_prompts", len(data.class_names()) ** 2 * n_exemplars, display=False)

# %% [markdown]
# ## Are the judges' neighbours plausible?
#
# A judge's nearest concepts cannot be checked against the paper's (it publishes no matrix),
# but they can be set against what the trained model itself confuses: for each class, is the
# judge's closest label among the two classes the original model mistakes it for most often
# on the test set? Chance is two in $K - 1$.

# %% tags=["hide-input"]
confusion = confusion_rates(ml.predict_logits(original, data.test_x, device=cfg.device), data.targets("test"),
                            data.class_names())
frames = {j: tm.to_frame() for j, tm in matrices.items() if j != "uniform"}
verdict = vd.judges_verdict(frames, confusion, forget_name, used=cfg.judge) if frames else None
glue("tm_verdict", Markdown(verdict.markdown() if verdict else "*Only the uniform judge ran: no neighbours to "
                            "judge.*"), display=False)
vd.judge_plausibility(frames, confusion).round(1) if frames else None


# %% [markdown]
# ## Verdict
#
# ```{glue:md} tm_verdict
# :format: myst
# ```
