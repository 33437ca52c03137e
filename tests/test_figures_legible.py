"""Every figure of the book reads at page size: at the book's scale (ten classes, the main
profile's thirteen methods, three scenarios, five seeds) no figure is wider than the column and
no text is shown below the floor; names in the time-vs-gap plot do not overlap; MeGU has a colour
no baseline shares; the PNG carries its smallest text size for the browser test."""
import io
import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from PIL import Image  # noqa: E402

from megu_lib import claims as cl  # noqa: E402
from megu_lib import experiments as ex  # noqa: E402
from megu_lib import plotting as pl  # noqa: E402
from megu_lib import tables as tb  # noqa: E402
from megu_lib.entanglement import class_patterns  # noqa: E402

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
METHODS = ["original", "retrain", "finetune", "neggrad", "random_label", "unsir", "bad_teacher", "ssd", "scrub",
           "salun", "l1_sparse", "megu", "megu_paper"]
BASE = dict(retain_acc=92.0, forget_acc=0.0, test_acc=90.0, mia=20.0)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _records(seeds=range(5)) -> pd.DataFrame:
    """Main-sized records: four class requests, one subclass, two random, methods with close
    gaps and times (the crowded case for labels)."""
    rng = np.random.default_rng(0)
    requests = [("class", f"class:{c}") for c in ("Shirt", "Pullover", "Trouser", "Bag")] + \
        [("subclass", "subclass:Shirt"), ("random", "random:0.01"), ("random", "random:0.1")]
    offsets = {m: rng.uniform(0, 6) for m in METHODS}
    offsets.update(retrain=0.0, original=15.0)
    times = {m: 20 + 10 * (i % 3) for i, m in enumerate(METHODS)}  # many methods at the same time
    rows = []
    for (scenario, request), seed, method in itertools.product(requests, seeds, METHODS):
        m = {k: BASE[k] + offsets[method] * (1 + 0.1 * rng.standard_normal()) for k in BASE}
        rows.append(dict(config="t", dataset="fashion_mnist", arch="small_cnn", scenario=scenario,
                         forget=[request.split(":")[1]], request=request, method=method, seed=seed,
                         seconds=times[method] * (1 + 0.05 * seed), test_forget_acc=0.0,
                         test_retain_acc=m["test_acc"], mia_loss=m["mia"],
                         per_class={c: 85.0 - offsets[method] * i / 10 for i, c in enumerate(CLASSES)}, **m))
    return ex.add_gaps(pd.DataFrame(rows))


def _matrix(k=10, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((k, k)), index=CLASSES[:k], columns=CLASSES[:k])


def _figures():
    """(name, Figure) for every figure function, on inputs of the book's size."""
    df = _records()
    torch.manual_seed(0)
    feats = torch.rand(400, 32)
    labels = torch.arange(400) % 10
    for c in range(10):
        feats[labels == c, c:c + 4] += 2
    patterns = class_patterns(feats, labels, CLASSES, q=0.2)
    pairs = pd.DataFrame({"overlap": np.linspace(0, 0.6, 45), "confusion": np.linspace(0, 20, 45),
                          "pair": [f"{a}–{b}" for a, b in itertools.combinations(CLASSES, 2)]})
    bars = pd.DataFrame({"class": CLASSES * 3, "accuracy": np.linspace(50, 99, 30),
                         "model": ["original"] * 10 + ["retrain"] * 10 + ["MeGU"] * 10})
    long = pd.DataFrame({"channels": ["shared", "unique"] * 6, "model": ["original", "original", "megu", "megu",
                                                                          "unsir", "unsir"] * 2,
                         "samples": ["forget"] * 6 + ["retain"] * 6, "activation": np.linspace(0.1, 2.0, 12)})
    overlap = pd.Series(np.linspace(0.05, 0.5, 9), index=[c for c in CLASSES if c != "Shirt"])
    sensitivity = pd.DataFrame([dict(axis=a, value=v, default=v == 1.0, gap=g, retain_acc=g / 2, forget_acc=g,
                                     test_acc=g / 3, mia=g * 2)
                                for a in ("lr", "epochs", "noise_scale", "alpha") for v, g in
                                zip((0.1, 0.3, 1.0, 3.0), (5.0, 3.0, 2.0, 4.0))])
    trials = pd.DataFrame([dict(method=m, scenario=s, trial=t, gap=1 + (t * 7 % 5), within_cap=t % 6 != 5)
                           for m in METHODS[2:] for s in ("class", "subclass", "random") for t in range(12)])
    profiles = tb.profile_comparison({"main (CPU)": df, "full (GPU)": df}, tb.main_methods(df))
    yield "show_examples", None
    yield "per_class_bars", pl.per_class_bars(bars, title="Forgetting 'Shirt'", highlight=("Shirt",))
    yield "matrix_heatmap", pl.matrix_heatmap(_matrix(), title="T", xlabel="label", ylabel="concept",
                                              cbar_label="similarity")
    yield "heatmaps_side_by_side", pl.heatmaps_side_by_side({"text judge": _matrix(), "features judge": _matrix(
        seed=1)}, xlabel="candidate label l", ylabel="concept c", cbar_label="T[c, l]")
    yield "pattern_membership", pl.pattern_membership(patterns, 6)
    yield "labelled_scatter", pl.labelled_scatter(pairs, "overlap", "confusion", label="pair", annotate=5, fit=True)
    yield "grouped_bars", pl.grouped_bars(long, "channels", "activation", "model", col="samples", fmt=".2f")
    yield "image_grid", pl.image_grid(torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8),
                                      titles=["Shirt → Pullover"] * 16, ncols=8)
    yield "image_grid(noise)", pl.image_grid(torch.randn(6, 1, 28, 28), titles=["positive"] * 6, noise=True)
    yield "plot_time_vs_gap", pl.plot_time_vs_gap(df, METHODS)
    yield "plot_gap_ranking", pl.plot_gap_ranking(df, METHODS)
    yield "plot_collateral", pl.plot_collateral(tb.collateral_frame(df, "class:Shirt", overlap, METHODS), "Shirt")
    yield "plot_profile_comparison", pl.plot_profile_comparison(profiles)
    yield "plot_ablations", pl.plot_ablations(pd.DataFrame(
        [dict(component=tb.ABLATION_LABELS[a], delta_gap=d, scenario=s) for a, d in zip(tb.ABLATIONS, range(5))
         for s in ("class", "subclass", "random")]))
    yield "plot_sensitivity", pl.plot_sensitivity(sensitivity)
    yield "plot_claims", pl.plot_claims(cl.check_claims(df))
    yield "plot_study_histories", pl.plot_study_histories(trials)
    # per-example privacy at the main profile's size: 14 models, 32 shadows, 250 targets
    from megu_lib.privacy import roc_summary
    rng = np.random.default_rng(1)
    models = ["original", "retrain", *METHODS[2:]]
    auc = pd.DataFrame({"auc": np.linspace(95, 50, len(models))}, index=models)
    auc["auc_lo"], auc["auc_hi"] = auc.auc - 3, auc.auc + 3
    yield "plot_privacy_auc", pl.plot_privacy_auc(auc)
    yield "plot_roc_curves", pl.plot_roc_curves({m: roc_summary(rng.normal(k / 5, 1, 2000), rng.normal(0, 1, 2000))
                                                 for k, m in enumerate(models)})
    values = {m: np.where(rng.random((32, 250)) < 0.5, rng.normal(3, 2, (32, 250)), np.nan)
              for m in ["reference", "original", "retrain", "megu", "megu_paper", "finetune"]}
    yield "plot_confidence_examples", pl.plot_confidence_examples(
        values, [0, 1, 2], labels=["the most remembered target (Ankle boot): the original's mean is +0.1 over the "
                                   "reference, a title longer than the column", "a median target (Bag)", "least"])
    yield "plot_auc_by_shadows", pl.plot_auc_by_shadows(pd.DataFrame(
        [dict(model=m, shadows=n, repeat=r, auc=60 + rng.normal(0, 10 / n)) for m in ("original", "retrain", "megu")
         for n in (12, 16, 24, 32) for r in range(20 if n < 32 else 1)]))


def test_every_figure_fits_the_column_and_reads_at_page_size(small):
    problems = {}
    for name, fig in _figures():
        if fig is None:  # needs the real data set
            fig = pl.show_examples(small, per_class=8, highlight=("Shirt",))
        reading = pl.legibility(fig)
        if reading["problems"]:
            problems[name] = reading["problems"]
        plt.close(fig)
    assert problems == {}


def test_legibility_flags_small_text_and_wide_figures():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_title("fine")
    assert pl.legibility(fig)["problems"] == []
    ax.set_xlabel("tiny", fontsize=6)
    assert "shown at 8.3 px" in pl.legibility(fig)["problems"][0]
    wide, ax = plt.subplots(figsize=(12, 3))
    ax.set_title("legible in itself")
    reading = pl.legibility(wide)
    assert 9 < reading["width_in"] <= 12 and reading["scale"] == pytest.approx(pl.MAX_WIDTH_IN / reading["width_in"])
    beyond, ax = plt.subplots(figsize=(6, 3))  # a text outside the figure widens what is saved
    ax.annotate("a long name near the right edge", (1.0, 0.5), xycoords="axes fraction")
    assert any("wide" in p for p in pl.legibility(beyond)["problems"])
    assert any("wide" in p for p in reading["problems"])


def test_time_vs_gap_names_do_not_overlap_and_stay_inside():
    fig = pl.plot_time_vs_gap(_records(), METHODS)
    renderer = fig.canvas.get_renderer()
    assert pl.legibility(fig)["problems"] == []
    for ax in fig.axes:
        right = ax.get_window_extent(renderer).x1
        assert all(matplotlib.text.Text.get_window_extent(t, renderer).x1 <= right + 1 for t in ax.texts)
        boxes = [matplotlib.text.Text.get_window_extent(t, renderer) for t in ax.texts]  # without leader lines
        assert len(boxes) == len(METHODS) - 1  # every method but the original, retrain included
        clashes = [(a.get_text(), b.get_text()) for (a, ba), (b, bb) in
                   itertools.combinations(zip(ax.texts, boxes), 2) if ba.overlaps(bb)]
        assert clashes == []
        centres = [ax.transData.transform(t.xy) for t in ax.texts]  # no name covers a marker
        assert not [(t.get_text(), i) for t, b in zip(ax.texts, boxes) for i, (x, y) in enumerate(centres)
                    if b.contains(x, y)]


def test_error_bars_stay_at_or_above_zero():
    df = _records()
    fig = pl.plot_gap_ranking(df, METHODS)
    for ax in fig.axes:
        for line in ax.collections:  # the error bars
            for seg in line.get_segments():
                assert seg[:, 0].min() >= -1e-9


def test_megu_has_a_colour_of_its_own():
    pal = pl._method_palette(METHODS)
    megu = np.array(to_rgb(pal["megu"]))
    for m in METHODS:
        if m.startswith("megu"):
            continue
        r, g, b = to_rgb(pal[m])
        assert np.abs(np.array([r, g, b]) - megu).sum() > 0.5, m
        assert not (r > 0.6 and g < 0.35 and b < 0.35), f"{m} is red"


def test_figure_png_records_its_smallest_text():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("title", fontsize=12)
    ax.set_xlabel("label", fontsize=9)
    png, size = pl.figure_png(fig)
    img = Image.open(io.BytesIO(png))
    assert float(img.text["megu:min_text_px"]) == pytest.approx(9 * pl.DPI / 72, abs=0.01)
    assert img.size == (size["width"], size["height"])
    assert size["width"] <= 3 * pl.DPI + 1


def test_a_name_is_pushed_off_another_points_marker():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_xlim(0, 3)
    ax.set_ylim(0, 2)
    points = [(1.0, 1.0), (1.15, 1.06)]  # b sits where a's name would be written
    ax.plot(*zip(*points), "o")
    notes = pl._place_labels(ax, points, ["a long name", "b"])
    renderer = fig.canvas.get_renderer()
    x, y = ax.transData.transform(points[1])
    assert not matplotlib.text.Text.get_window_extent(notes[0], renderer).contains(x, y)
