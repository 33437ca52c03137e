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
# # Experiments: MeGU against the baselines
#
# Every method of the registry, on every request of the profile, with several seeds: the
# benchmark of the SSD line of work {cite}`foster2024ssd,tarun2023unsir`, on our data. The
# baselines are retraining from scratch (the gold standard), fine-tuning on the retain set,
# NegGrad+ {cite}`kurmanji2023scrub`, random labels (amnesiac unlearning)
# {cite}`graves2021amnesiac`, UNSIR {cite}`tarun2023unsir`, Bad Teacher
# {cite}`chundawat2023badteacher`, SSD {cite}`foster2024ssd`, SCRUB {cite}`kurmanji2023scrub`,
# SalUn {cite}`fan2024salun` and $\ell_1$-sparse fine-tuning {cite}`jia2023l1sparse`; then
# MeGU {cite}`megu2026`.
#
# Each run is one JSON record (config, seed, environment, metrics, seconds) under
# `results/<profile>/records`; this page runs what is missing and builds everything below from
# the records, so a re-run only adds what is new. A method is good when it ends **close to the
# retrained model** — not at zero forget accuracy or zero MIA — and fast: the *gap* is the
# mean absolute difference to retrain over retain, forget and test accuracy and MIA, in points.

# %% tags=["parameters"]
profile = "main"  # a profile in params/ or a YAML path
dataset = None  # None: the profile's data set; else a name or an image folder
device = None  # None: the profile's device
run = True  # run the experiments without a record (False: only load)
q = 0.1  # share of channels in a class's feature pattern
also = ["full", "full_vit"]  # profiles whose committed records are shown beside this one (never run here)
defaults = "main_defaults"  # the profile of the same runs at reference defaults (None: no such table)

# %% tags=["hide-input"]
from IPython.display import Markdown, display
from myst_nb import glue

from megu_lib import plotting as pl
from megu_lib import stats as st
from megu_lib import tables as tb
from megu_lib import tuning as tu
from megu_lib import verdicts as vd
from megu_lib.entanglement import overlap_with_forgotten
from megu_lib.experiments import (
    better_search_profile,
    clean_run_records,
    committed_records,
    profile_cost,
    verdict_records,
)
from megu_lib.profile import check_parameter, records_setup

check_parameter("run", run, bool, "True or False")
check_parameter("q", q, (int, float), "a fraction in (0, 1]")
check_parameter("also", also, list, "a list of profile names")
check_parameter("defaults", defaults, (str, type(None)), "a profile name or None")
cfg, data, committed = records_setup(profile, dataset=dataset, device=device, run=run)
# every method at the better of its two searches once the profile's repeat is complete
# (notebook.better_search); else the committed searches' records
verdicts = verdict_records(cfg, data, committed)
df, better = verdicts.records, verdicts.better
methods = tb.main_methods(df)

# %% [markdown]
# ## The methods as they ran
#
# What each method does, where it comes from, and how its hyperparameters were set on this
# profile. Every method's docstring on the {doc}`API <../api>` page names what we do differently from its
# reference code.

# %% tags=["remove-input"]
display(Markdown(tb.baselines_markdown(cfg, methods)))

# %% [markdown]
# ### MeGU's hyperparameters
#
# Where each default of MeGU comes from — *paper* where the paper states it, *ours* where the
# paper is silent or where we depart from it ({ref}`method-megu-hp`) — what it means, any value
# this profile sets, and, where the profile tunes MeGU, the value its study chose in each
# scenario (*chosen by tuning*; blank where the study kept what MeGU runs at untuned; *(repeat)*
# where MeGU runs at its repeated study's choice, the better of its two searches).

# %% tags=["remove-input"]
display(tb.megu_hp_table(cfg, better=better).style.set_properties(**{"white-space": "normal"}).set_uuid("megu_hp"))

# %% [markdown]
# ## How every method was tuned
#
# Where the profile has a `tuning` section, every method (MeGU included) gets the same
# protocol: one Optuna study per method and scenario, a seeded TPE sampler, the same number
# of trials, search ranges from the method's declared hyperparameters (narrowed alike for
# every method by the profile), and a cap: a setting that takes longer than retraining is
# infeasible. The objective is the mean gap to a retrained model on a *tuning task* built from
# the training split alone — an original trained on part of it, a retrained reference, and
# metrics on a held-out validation part. The test split, on which the tables below are
# measured, is never read while tuning. Each point below is one trial (a cross: over the
# cap); the line is the best gap so far within the cap.

# %% tags=["hide-input"]
if cfg.tuning is not None and cfg.tuning_section()["use"]:
    studies = tu.study_records(cfg)
    chosen = tu.chosen_table(studies)
    fig = pl.plot_study_histories(tu.trials_frame(studies))
    display(chosen.drop(columns=["chosen"]).round(2).style.hide(axis="index").set_uuid("chosen"))
    display(Markdown("The settings the tables below run at (values other than the method's defaults; "
                     "*repeat* where a method runs at its repeated study's choice, the better of its two "
                     "searches):\n\n" + tu.chosen_markdown(tu.study_records(cfg, better))))
else:
    display(Markdown(f"*Profile `{cfg.name}` has no tuning: every method runs at the values above.*"))
    fig = pl.notice_figure(f"profile {cfg.name!r} has no tuning")
pl.glue_figure("fig-05-studies", fig)

# %% [markdown]
# :::{glue:figure} fig-05-studies
# :name: fig-05-studies
#
# The optimisation history of every study: each trial's gap on the validation split (one colour
# per scenario; a cross where the trial took longer than retraining) and the best gap so far
# within that cap (line).
# :::
#
# ### How much of a choice is the search's luck
#
# Twelve trials of a seeded sampler find a good setting, not the best one, and the same study
# run again need not find the same. On the CPU, float rounding differs between machines: the
# same study, run again from nothing on another machine, draws the same first settings, but
# their gaps differ slightly, and after a few trials the sampler's path parts from the
# committed one. Where such a repeat is committed (`tuning/replicates/` in the profile's
# results; `benchmarks/clean_run.py` makes one as it times the profile from empty caches), here
# is each study's best gap on the validation split beside its repeat's. A method whose best gap
# moves by more than the distance to its neighbours in the ranking owes part of its place to
# the search.

# %% tags=["remove-input"]
if cfg.tuning is not None and cfg.tuning_section()["use"]:
    replicates = tu.replicate_records(cfg)
    rep_table, rep_text = tu.replicate_table(studies, replicates)
    if rep_table.empty:
        display(Markdown(f"*No repeat of profile `{cfg.name}`'s studies is committed yet.*"))
    else:
        repeat_cfg = better_search_profile(cfg)
        used = (repeat_cfg.tuned_from or {}).get("replicate") if repeat_cfg is not None else None
        display(Markdown(f"{tu.replicate_sources(replicates, len(studies), used=used)}\n\n{rep_text}"))
        display(rep_table.round(2).style.format(precision=2, na_rep="—").hide(axis="index")
                .set_uuid("replicates"))

# %% [markdown]
# Fair treatment here means every method gets the better of two searches of the same budget,
# chosen on the tuning task alone. Where a method's repeat was the better of its two searches
# on the tuning task, the grid was run again at the repeat's choice (the profile's
# `notebook.better_search`, `main_repeat` for `main`: the same requests and seeds, each method
# only in the scenarios where its repeat won). Below, each such method's gap on the test side at
# the committed choice and at the repeat's, and MeGU's paired difference to it with the repeat's
# rows in place. Every gap is against the committed retrain runs: two retrainings of the same
# key differ by float rounding, and that difference is not the methods'. Once the repeat is
# complete, every table and verdict after this section reads each method at the better of its
# two searches.
#
# The column *repeat's setting* says whether the repeat chose another setting or the very one
# of the committed study. The second happens often: the two studies run the same seeded
# sampler, and while their trials' gaps differ only by float rounding it proposes the same
# values. Where the setting is the same, the two rows differ only by their runs (the repeat
# trained its originals again, on another machine), so they show how far one setting's result
# moves from one run of the grid to the next.

# %% tags=["remove-input"]
if verdicts.at_repeat is not None:
    repeat_table, repeat_text = tb.repeat_effect(committed, verdicts.at_repeat)
    display(Markdown((f"*Not complete yet: {verdicts.missing}. Below, the methods and seeds it holds so far; "
                      "the tables after this section read the committed searches.*\n\n" if verdicts.missing else "")
                     + repeat_text))
    display(repeat_table.style.hide(axis="index").set_properties(**{"white-space": "normal"})
            .set_uuid("repeat_effect"))
else:
    display(Markdown("*No grid at a repeat's choices here*" + (f" ({verdicts.missing})" if verdicts.missing else "")
                     + "."))

# %% [markdown]
# ### What the whole profile costs from nothing
#
# `benchmarks/clean_run.py` times the profile from empty caches, stage by stage, in its own
# cache and results folders: the tuning studies made again from nothing, then the whole grid.
# The machines these sessions run on differ in speed, so each segment of the measurement
# carries a training-throughput probe taken at its start, and the times are also given scaled
# to the fastest probe's machine (training dominates every stage). Our budget for the main
# profile is four hours on 2 cores.
#
# The committed records were computed in float32. Since 2026-12-04 the library computes in bf16
# autocast on a CPU with bf16 instructions (AVX512-BF16 or AMX), as it always did on a GPU:
# training 1.26-1.38x and evaluation 1.56-1.58x as fast on these machines, the original as
# accurate (`benchmarks/cpu_layout.py --compare precision`; the README's performance section). The second
# measurement below is the whole profile made again from nothing that way — a new run of the
# protocol, its own studies included, not a copy of the committed records.

# %% tags=["remove-input"]
budget = 4 if cfg.name == "main" else None
for run_name, heading in (("clean_run", "**First measurement (float32)**"),
                          ("clean_run_bf16", "**Again, in bf16 autocast**")):
    cost_table, cost_text = profile_cost(cfg, data, budget_hours=budget, name=run_name)
    if cost_table.empty and run_name != "clean_run":
        continue
    display(Markdown(f"{heading}. {cost_text}"))
    if not cost_table.empty:
        display(cost_table.style.format({"probe (images/s)": "{:.0f}", "hours": "{:.2f}",
                                         "hours at the fastest probe": "{:.2f}"}).hide(axis="index")
                .set_uuid(f"profile_cost_{run_name}"))

# %% [markdown]
# ### The grid again from nothing
#
# Each clean run above is also an independent run of the whole protocol: its own tuning studies,
# its own originals and retrained models, on other machines (the second also in another
# precision). Below, each method's mean gap to retrain over all scenarios (each weighted equally)
# and its rank in the grid at the committed searches, in each clean run's grid (its gaps against
# its own retrain runs), and in the records the verdicts read (every method at the better of its
# two searches). What holds in all of them is a finding of the protocol; what moves is the
# search's luck and the machines' rounding.

# %% tags=["remove-input"]
clean, clean_why = clean_run_records(cfg, data)
if clean is not None:
    runs = {"committed searches": committed, "clean run": clean}
    again = clean_run_records(cfg, data, "clean_run_bf16")[0]
    if again is not None:
        runs["clean run, bf16"] = again
    if better is not None:
        runs["verdicts' records"] = df
    replication, replication_text = tb.replication_table(runs, methods)
    display(Markdown(replication_text))
    display(replication.round(2))
else:
    display(Markdown(f"*No complete clean run of profile `{cfg.name}` is committed ({clean_why}).*"))

# %% [markdown]
# The same record sets scenario by scenario: in each, the method closest to retrain with its 95 %
# interval over seeds, whether doing nothing is within that interval, MeGU's gap and rank, and
# MeGU's paired difference to the best baseline of that set (negative: MeGU closer to retrain).
# The verdicts' records share most of their rows with the committed searches; the two clean runs
# are independent of both. A verdict that every set shares does not hang on one search.

# %% tags=["remove-input"]
if clean is not None:
    by_scenario, by_scenario_text = tb.replication_by_scenario(runs, methods)
    display(Markdown(by_scenario_text))
    display(by_scenario.style.set_properties(**{"white-space": "normal"}).set_uuid("replication_by_scenario"))

# %% [markdown]
# ## The tables
#
# One table per scenario, in the paper's layout: methods as rows, mean ± standard deviation
# over seeds and forget targets (a plain mean when there was one run). Accuracies and MIA are
# percentages; time is the method's typical wall-clock seconds on the profile's device (per
# request the median over seeds, then the mean: the book page {doc}`../method`, *Time*); the gap
# is in points. In each column the best method is marked: the one closest to retrain for the
# metrics, the fastest for time, the smallest for the gap (the original model and retrain
# itself, in grey, are references and not marked). The ablations of MeGU have their own
# chapter.

# %% tags=["remove-input"]
if verdicts.note:
    display(Markdown(verdicts.note))
for scenario in tb.scenarios_of(df):
    requests = ", ".join(sorted(df[df.scenario == scenario].request.unique()))
    power = tb.mia_power(df, scenario)
    blind = st.discriminates(st.ranking(df, scenario, methods)) is False
    display(Markdown(f"**{scenario} forgetting** ({requests})"
                     + (" — **cannot discriminate here**: doing nothing (the original) is within the 95 % interval "
                        "of the method closest to retrain." if blind else ".") + f" {power.get('sentence', '')}"))
    columns = tb.TABLE_COLUMNS[:1] + (("gap_no_mia",) if power.get("powerless") else ()) + tb.TABLE_COLUMNS[1:]
    table = tb.results_table(df, scenario, methods, columns=columns)
    display(tb.style_table(table, uuid=f"exp_{scenario}"))

# %% tags=["hide-input"]
summary = tb.gap_summary(df, methods)
glue("gap_sentence", Markdown(summary["sentence"]), display=False)
glue("best_method", summary["best"], display=False)
glue("best_gap", summary["best_gap"], display=False)
glue("megu_gap", summary["focus_gap"], display=False)
ranking = tb.gap_ranking(df, None, methods)
ranking.rename(columns=tb.RANKING_LABELS).round(2)

# %% [markdown]
# The ranking above: per seed, a method's gap averaged over the requests of each scenario and
# then over the scenarios, each weighted equally; then its mean and 95 % interval over the
# seeds. *original* is doing nothing. In plain words:
#
# ```{glue:md} gap_sentence
# :format: myst
# ```
#
# The same gap per scenario, method by method:

# %% tags=["hide-input"]
fig = pl.plot_gap_ranking(df, methods)
pl.glue_figure("fig-05-ranking", fig)

# %% [markdown]
# :::{glue:figure} fig-05-ranking
# :name: fig-05-ranking
#
# Each method's gap to retrain per scenario (points; the mean over the scenario's requests per
# seed, then over seeds, with its 95 % interval cut at 0); the methods in their pooled order,
# MeGU in red, the paper's settings in light red, the original (doing nothing) in grey.
# :::

# %% [markdown]
# ## How sure we can be: intervals over seeds
#
# The tables above pool seeds and forget targets in one standard deviation. Here the unit is
# the seed (each seed trains its own original and draws its own random requests): a method's
# gap is averaged per seed over the requests of a scenario (for *all*, over the scenarios, each
# weighted equally), and given a 95 % Student-t interval over the seeds. *Doing nothing* is the
# original model itself: where its interval overlaps the closest method's, the scenario cannot
# tell methods apart on this profile. The last column compares MeGU with the closest baseline on
# the same requests and seeds (a bootstrap over seeds of the difference in gap; negative: MeGU
# is closer to retrain).

# %% tags=["hide-input"]
standing = st.standing(df, methods)
glue("standing_sentence", Markdown(" ".join(filter(None, (st.standing_sentence(standing), tb.idle_note(df, methods))))),
     display=False)
# cells wrap here (the page's other tables keep "mean ± std" on one line)
st.format_standing(standing).style.set_properties(**{"white-space": "normal"}).set_uuid("standing")

# %% [markdown]
# ```{glue:md} standing_sentence
# :format: myst
# ```

# %% tags=["remove-cell"]
sub = df[df.scenario == "subclass"].groupby("method")["forget_acc"].mean()
has_sub = {"retrain", "megu"} <= set(sub.index)
glue("sub_retrain_forget", f"{sub['retrain']:.1f} %" if has_sub else "n/a", display=False)
glue("sub_megu_forget", f"{sub['megu']:.1f} %" if has_sub else "n/a", display=False)
print(f"subclass scenario, forget-set accuracy: retrain {sub.get('retrain', float('nan')):.1f} %, "
      f"MeGU {sub.get('megu', float('nan')):.1f} %")

# %% [markdown]
# **The subclass scenario is where MeGU's design and retraining part ways.** The forgotten fine
# class keeps its coarse label (a shirt is still a "top"), and a model retrained without it
# can still put its samples in the right coarse class from their siblings: retrain's
# forget-set accuracy here is {glue:text}`sub_retrain_forget`. MeGU, as the paper defines it,
# sends every forgotten sample to a label *outside* its own coarse class; its forget-set
# accuracy is {glue:text}`sub_megu_forget`. Where the first figure is far above the second,
# MeGU forgets more than retraining would, and its gap in this scenario comes from the
# relabelling rule itself, not from the fine-tuning.

# %% [markdown]
# ## At the reference defaults
#
# Every method at the hyperparameters its reference code uses (no tuning; profile
# `main_defaults`), on some of the requests and seeds above (named under the table: the
# reference schedules are long, 30 to 50 minutes of CPU per request and seed): how much of
# each method's standing above comes from tuning. Its intervals rest on fewer seeds, so they
# are wider than the first table's. Below it, each method's gap tuned and at its defaults on the
# runs both tables hold. Two things to keep in mind when reading it: the tuning caps every
# setting at retraining's time, which some reference schedules exceed (named under the table),
# and the do-nothing row, the same recipe in both, differs between its two columns only through
# each profile's own training runs: that difference is the scale of the noise here.

# %% tags=["remove-input"]
at_defaults, why = committed_records(defaults, data) if defaults and cfg.tuning is not None else (None, "")
if at_defaults is not None:
    display(st.format_standing(st.standing(at_defaults, tb.main_methods(at_defaults))).style
            .set_properties(**{"white-space": "normal"}).set_uuid("standing_defaults"))
    seeds = sorted({int(s) for s in at_defaults.seed})
    display(Markdown(f"Requests: {', '.join(sorted(at_defaults.request.unique()))}; "
                     f"seeds {', '.join(map(str, seeds))}. " + tb.idle_note(at_defaults)))
    effect, effect_text = tb.tuning_effect(df, at_defaults, methods)
    display(Markdown(effect_text + " The mean gap to retrain (points) of each method on those runs:"))
    display(effect.style.format("{:.2f}", na_rep="—").set_uuid("tuning_effect"))
else:
    display(Markdown("*No second table here*" + (f" ({why})" if why else "") + "."))

# %% [markdown]
# ## Collateral damage and entanglement
#
# The paper's argument is that concepts share features, so that erasing a class bluntly
# damages the retained classes that share the most with it. For the first class request of
# the profile we measure, for each retained class, its feature overlap with the forgotten
# class in the original model (the Jaccard index of their feature patterns, chapter
# {doc}`Entanglement <01_entanglement>`; our operationalisation) and its test-accuracy change after each method,
# against the original model. A method that only removes the forgotten class leaves every
# other class where it was; retrain's curve (grey) is what a perfect method would do.

# %% tags=["hide-input"]
class_requests = list(df[df.scenario == "class"].request.unique())
if class_requests:
    target = class_requests[0]
    first = df[df.request == target].iloc[0]
    seed, forget = int(first.seed), first.forget[0]
    original = cfg.original_model(data, seed)
    overlap = overlap_with_forgotten(original, data, forget, q=q, seed=seed,
                                            device=cfg.device)
    collateral = tb.collateral_frame(df, target, overlap, methods)
    fig = pl.plot_collateral(collateral, forget)
else:
    collateral = None
    print("this profile has no class request: no collateral-damage analysis")
    fig = pl.notice_figure("no class request on this profile")
pl.glue_figure("fig-05-collateral", fig)

# %% [markdown]
# :::{glue:figure} fig-05-collateral
# :name: fig-05-collateral
#
# One panel per method: each retained class's change in test accuracy against the original
# model (points) after forgetting the first class request, against its feature overlap with
# the forgotten class; retrain's in grey in every panel, with each method's least-squares trend.
# :::

# %% tags=["hide-input"]
if collateral is not None:
    damage = tb.collateral_summary(collateral)
    display(damage.round(2))
name = f"*{forget}*" if collateral is not None else "the forgotten class"
glue("collateral_forget", Markdown(name), display=False)

# %% [markdown]
# The table summarises the panels: the mean change in test accuracy over all retained
# classes, over the half that shares the most features with {glue:md}`collateral_forget`
# and over the other half (points; negative is damage), and the rank correlation between a
# class's overlap and its damage (positive: the more a class shares, the more it loses;
# undefined when a method changes no class). The paper predicts MeGU's damage to be small
# and not concentrated on the entangled classes.
#
# ## Time against closeness to retrain
#
# The last picture puts the two goals of unlearning side by side: time on the horizontal axis
# (log scale), the gap to retrain on the vertical one. The dotted line is retrain's own time:
# a method to the right of it is slower than simply retraining. The best methods sit in the
# lower left corner.

# %% tags=["hide-input"]
fig = pl.plot_time_vs_gap(df, methods)
pl.glue_figure("fig-05-time", fig)

# %% [markdown]
# :::{glue:figure} fig-05-time
# :name: fig-05-time
#
# Each method's typical time per request (log scale; the median over seeds, the book page
# {doc}`../method`, *Time*) against its mean gap to retrain, with the
# 95 % interval over seeds, one panel per scenario; retrain at gap 0 and its time as the dotted
# line. The best methods sit in the lower left corner.
# :::

# %% [markdown]
# ## Other models and devices
#
# The paper's architectures (ResNet18, ViT) need a GPU (profiles `full` and `full_vit`). Their
# records, when they have been run and committed under `results/<profile>/records`, are only
# loaded here — rebuilding the book needs no GPU — and put beside this profile: each method's
# mean gap to retrain and its rank under every profile. A first look at ResNet18 on one GPU
# (one seed, every method at this profile's tuned settings) is on the page {doc}`../reproduce`,
# *On a GPU*.

# %% tags=["remove-input"]
frames = {tb.profile_label(cfg.name, df): df}
left_out = {}
for name in also:
    extra, why = tb.other_records([name], data, exclude=(cfg.name,))
    left_out.update(why)
    if extra is not None:
        frames[tb.profile_label(name, extra)] = extra
if len(frames) > 1:
    comparison = tb.profile_comparison(frames, methods)
    display(comparison.round(2))
else:
    display(Markdown(f"*No complete records of {', '.join(f'`{a}`' for a in also) or 'other profiles'} yet:* they "
                     "are made on a GPU with `python -m megu_lib run <profile>` (see *Reproduce*) and committed; this "
                     "section shows a profile once all its records are."))
if left_out:
    display(Markdown(tb.left_out_note(left_out)))

# %% tags=["remove-cell"]
glue("exp_verdict", Markdown(vd.experiments_verdict(df).markdown()), display=False)

# %% [markdown]
# ## Verdict
#
# MeGU against the baselines, scenario by scenario, by the rule of chapter {doc}`Claims <07_claims>` (rank by the
# mean gap over seeds, and a paired bootstrap interval of the difference to the closest
# baseline):
#
# ```{glue:md} exp_verdict
# :format: myst
# ```
