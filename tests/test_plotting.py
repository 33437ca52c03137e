"""The book's figure functions: each returns a Figure with the expected axes and labels (tiny inputs)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from megu_lib import plotting
from megu_lib.entanglement import class_patterns

NAMES = ["cat", "dog", "fox", "owl"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _frame(k=4, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((k, k)), index=NAMES[:k], columns=NAMES[:k])


def test_matrix_heatmap_labels_and_highlight():
    fig = plotting.matrix_heatmap(_frame(), title="overlap", xlabel="class j", ylabel="class i",
                                  cbar_label="Jaccard", highlight=("dog",))
    ax, cbar = fig.axes
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("overlap", "class j", "class i")
    assert cbar.get_ylabel() == "Jaccard"
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert {t.get_text() for t in ax.get_xticklabels() if t.get_color() == "crimson"} == {"dog"}
    assert len(ax.texts) == 16  # annotated: a small matrix


def test_matrix_heatmap_big_matrix_is_not_annotated():
    big = pd.DataFrame(np.eye(20), index=[f"c{i}" for i in range(20)], columns=[f"c{i}" for i in range(20)])
    fig = plotting.matrix_heatmap(big)
    assert len(fig.axes[0].texts) == 0


def test_heatmaps_side_by_side_share_one_scale():
    frames = {"text": _frame(seed=0), "features": _frame(seed=1) * 2, "uniform": _frame(seed=2)}
    fig = plotting.heatmaps_side_by_side(frames, xlabel="label l", ylabel="concept c", cbar_label="T[c, l]",
                                         title="judges")
    assert len(fig.axes) == 4  # three panels and the colour bar
    assert [ax.get_title() for ax in fig.axes[:3]] == list(frames)
    assert fig.axes[0].get_ylabel() == "concept c" and fig.axes[1].get_ylabel() == ""
    assert all(ax.get_xlabel() == "label l" for ax in fig.axes[:3])
    assert fig.axes[3].get_ylabel() == "T[c, l]"
    limits = {ax.collections[0].get_clim() for ax in fig.axes[:3]}
    assert len(limits) == 1
    assert fig._suptitle.get_text() == "judges"


def test_pattern_membership_orders_shared_before_unique():
    torch.manual_seed(0)
    feats = torch.rand(80, 20)
    labels = torch.arange(80) % 4
    feats[labels == 1, :3] += 2
    feats[labels == 2, :2] += 2  # class 2 shares channels 0, 1 with class 1
    p = class_patterns(feats, labels, NAMES, q=0.2)
    fig = plotting.pattern_membership(p, 1)
    ax, ax2 = fig.axes
    parts = p.split(1)
    assert f"{len(parts['shared'])} shared | {len(parts['unique'])} unique" in ax.get_xlabel()
    assert ax.get_ylabel() == "class whose pattern contains the channel"
    assert ax2.get_xlabel() == "Jaccard overlap with 'dog'"
    assert [t.get_text() for t in ax2.get_yticklabels()] == ["owl", "fox", "cat"]


def test_labelled_scatter_names_points_and_fits():
    df = pd.DataFrame({"x": [0.0, 0.2, 0.5, 0.9], "y": [1.0, 3.0, 4.0, 9.0], "name": NAMES})
    fig = plotting.labelled_scatter(df, "x", "y", label="name", xlabel="overlap", ylabel="confusion (%)",
                                    title="r = 0.9", fit=True, highlight=("owl",))
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("overlap", "confusion (%)", "r = 0.9")
    assert sorted(t.get_text() for t in ax.texts) == sorted(NAMES)
    assert len(ax.lines) == 1  # the least-squares line
    fig2 = plotting.labelled_scatter(df, "x", "y", label="name", annotate=2)
    assert sorted(t.get_text() for t in fig2.axes[0].texts) == ["fox", "owl"]


def test_grouped_bars_panels_and_legend():
    df = pd.DataFrame({"channels": ["shared", "unique"] * 4, "model": ["a", "a", "b", "b"] * 2,
                       "samples": ["forget"] * 4 + ["retain"] * 4, "activation": np.arange(8.0)})
    fig = plotting.grouped_bars(df, "channels", "activation", "model", col="samples", ylabel="mean activation",
                                fmt=".1f")
    assert [ax.get_title() for ax in fig.axes] == ["forget", "retain"]
    assert fig.axes[0].get_ylabel() == "mean activation"
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is None  # one legend, under the panels
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b"]
    assert len(fig.axes[0].patches) >= 4
    one = plotting.grouped_bars(df[df.samples == "forget"], "channels", "activation", "model", xlabel="channels")
    assert len(one.axes) == 1 and one.axes[0].get_xlabel() == "channels"


def test_image_grid_images_and_noise():
    imgs = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    fig = plotting.image_grid(imgs, titles=list("abcde"), ncols=3, row_labels=["r1", "r2"], title="examples")
    assert len(fig.axes) == 6  # 2 rows x 3, the last one blank
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    assert fig.axes[0].get_ylabel() == "r1" and fig.axes[3].get_ylabel() == "r2"
    noise = torch.randn(4, 1, 8, 8) * 0.3
    fig = plotting.image_grid(noise, noise=True, ncols=4)
    assert len(fig.axes) == 5 and fig.axes[-1].get_ylabel() == "noise (pixel units)"
    im = fig.axes[0].images[0]
    lo, hi = im.get_clim()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(float(noise.abs().max()))
    rgb = plotting.image_grid(torch.rand(2, 3, 8, 8), ncols=2)
    assert len(rgb.axes) == 2


def test_existing_figures_still_work(small):
    fig = plotting.show_examples(small, per_class=2, highlight=("Shirt",))
    assert len(fig.axes) == 2 * len(small.classes)
    df = pd.DataFrame({"class": NAMES * 2, "accuracy": [90.0] * 8, "model": ["a"] * 4 + ["b"] * 4})
    fig = plotting.per_class_bars(df, title="t", highlight=("dog",))
    assert fig.axes[0].get_ylabel() == "test accuracy (%)"
