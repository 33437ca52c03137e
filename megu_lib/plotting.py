"""Figures for the book: small functions that take data or tidy DataFrames and return a Figure.

The first part draws generic figures (images, heatmaps, scatters, bars); the second the
figures of the runner's records (:mod:`megu_lib.tables`, :mod:`megu_lib.claims`).

Every figure is made to be read at page size in the book. Importing this module sets the
house style (:data:`STYLE`: no text below :data:`MIN_FONT_PT`); each function keeps its
figure at most :data:`MAX_WIDTH_IN` wide, so that, saved at :data:`DPI` and shown at half
its pixel size (sharp on high-density screens), it fits the book's column at a 1280 px
window without being scaled down. The chapters show figures through :func:`glue_figure`,
which writes the PNG with its smallest text size (``megu:min_text_px``) for the book's
browser test, and a MyST ``glue:figure`` directive gives it a number and a caption.
"""
from __future__ import annotations

import math
import textwrap

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import matplotlib.transforms
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.colors import ListedColormap

from .errors import check
from .stats import typical_seconds
from .tables import (
    ABLATION_LABELS,
    ABLATIONS,
    GAP_LABELS,
    RANKING_LABELS,
    SCENARIO_ORDER,
    gap_ranking,
    main_methods,
    scenarios_of,
)

#: The book's text column at a 1280 px wide window, in CSS pixels (sphinx-book-theme 1.3 with
#: book/_static/megu.css; measured by the browser test's page check).
COLUMN_PX = 676
#: Dots per inch of the saved figures; they are shown at half their pixel size.
DPI = 200
#: CSS pixels per inch of figure as the book shows it (half of :data:`DPI`).
CSS_PX_PER_INCH = DPI / 2
#: The widest figure (inches) the column shows without scaling it down.
MAX_WIDTH_IN = COLUMN_PX / CSS_PX_PER_INCH
#: The margin (inches) around a saved figure's content.
PAD_IN = 0.04
#: The smallest font size (points) a figure may use.
MIN_FONT_PT = 9.0
#: The floor for text as the reader sees it, in CSS pixels (9 pt at 96 px per inch).
MIN_TEXT_PX = 12.0
#: The colour that marks MeGU in every figure; no baseline gets a red.
MEGU_COLOR = "#c8102e"
#: The house style, set on import (matplotlib rcParams).
STYLE = {
    "font.size": 10.0, "axes.titlesize": 10.5, "axes.labelsize": 10.0, "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0, "legend.fontsize": 9.0, "legend.title_fontsize": 9.0, "figure.titlesize": 11.0,
    "figure.dpi": 100, "savefig.dpi": DPI, "axes.titlelocation": "center",
}
matplotlib.rcParams.update(STYLE)


def text_sizes(fig) -> list[float]:
    """The font sizes (points) of every visible, non-empty text of ``fig``: titles, labels,
    tick labels, annotations, legends."""
    fig.canvas.draw()  # tick labels exist once drawn
    return [float(t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
            if t.get_visible() and t.get_text().strip() and _drawn(t)]


def _drawn(t) -> bool:
    """Whether a text lies inside its figure (tick labels outside an axis' view are not drawn)."""
    box = t.get_window_extent()
    w, h = t.figure.bbox.width, t.figure.bbox.height
    return box.x1 > 0 and box.y1 > 0 and box.x0 < w and box.y0 < h


def legibility(fig) -> dict:
    """How ``fig`` reads in the book: its width (inches), its smallest font (points), the
    scale the column will show it at (1: full size) and its smallest text as displayed (CSS px),
    with ``problems`` (empty when it meets :data:`MIN_TEXT_PX` and fits the column)."""
    sizes = text_sizes(fig)
    # the width as saved: cropped to the content, which texts outside the axes can widen
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    width = float(tight.width) + 2 * PAD_IN
    scale = min(1.0, MAX_WIDTH_IN / width)
    smallest = min(sizes) if sizes else MIN_FONT_PT
    shown = smallest * CSS_PX_PER_INCH / 72 * scale
    problems = []
    if width > MAX_WIDTH_IN + 1e-6:
        problems.append(f"{width:.2f} in wide: the column shows at most {MAX_WIDTH_IN:.2f} in at full size")
    if shown < MIN_TEXT_PX - 1e-6:
        problems.append(f"smallest text {smallest:g} pt is shown at {shown:.1f} px (floor {MIN_TEXT_PX:g} px)")
    return {"width_in": width, "min_font_pt": smallest, "scale": scale, "min_text_px": shown,
            "problems": problems}


def figure_png(fig) -> tuple[bytes, dict]:
    """``fig`` as PNG bytes at :data:`DPI` (cropped to its content) and its size in pixels; the
    PNG carries ``megu:min_text_px``, its smallest text height in image pixels, which the
    book's browser test scales by the displayed size."""
    import io

    from PIL import Image
    sizes = text_sizes(fig)
    smallest = min(sizes) if sizes else MIN_FONT_PT
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_IN, facecolor="white",
                metadata={"megu:min_text_px": f"{smallest * DPI / 72:.2f}", "Software": "megu_lib"})
    png = buf.getvalue()
    width, height = Image.open(io.BytesIO(png)).size
    return png, {"width": width, "height": height, "min_font_pt": smallest}


def glue_figure(name: str, fig) -> None:
    """Glue ``fig`` into the executed notebook under ``name`` for a MyST ``glue:figure``
    directive (which numbers it and adds the caption), shown at half its pixel size (at most
    the column's width), and close it. Returns nothing (a cell ending with it shows nothing);
    :func:`legibility` says how it will read."""
    from IPython.display import Image
    from myst_nb import glue
    check(isinstance(name, str) and name.strip() != "", f"a glued figure needs a name, got {name!r}")
    png, size = figure_png(fig)
    glue(name, Image(data=png, width=min(size["width"] // 2, COLUMN_PX)), display=False)
    plt.close(fig)


def notice_figure(text: str, *, width: float = 5.0):
    """A small figure that only says ``text`` (for a figure a profile cannot draw, so that the
    chapter's numbered figure still has something to show)."""
    fig, ax = plt.subplots(figsize=(width, 0.9))
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.axis("off")
    return fig


def show_examples(data, per_class: int = 6, seed: int = 0, level: str | None = None, highlight=()):
    """A grid of training images, one row per class; rows named in ``highlight`` are marked."""
    names = data.class_names(level)
    labels = data.targets("train", level)
    g = torch.Generator().manual_seed(seed)
    side = min(0.8, (MAX_WIDTH_IN - 1.4) / per_class)  # inches per image: the grid fits the column
    fig, axes = plt.subplots(len(names), per_class, figsize=(1.4 + side * per_class, len(names) * (side + 0.04)))
    for c, name in enumerate(names):
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)[:per_class]]
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                img = data.train_x[idx[j]].permute(1, 2, 0).squeeze(-1).numpy()
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        axes[c, 0].text(-4, data.image_shape[1] / 2, name, ha="right", va="center", fontsize=10,
                        color="crimson" if name in highlight else "black",
                        fontweight="bold" if name in highlight else "normal")
    fig.subplots_adjust(left=1.4 / fig.get_size_inches()[0], right=0.99, top=0.99, bottom=0.01,
                        wspace=0.05, hspace=0.05)
    return fig


def per_class_bars(df: pd.DataFrame, x: str = "class", y: str = "accuracy", hue: str = "model",
                   title: str = "", highlight=()):
    """Grouped bars of per-class accuracy (percent) for several models."""
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.4))
    sns.barplot(data=df, x=x, y=y, hue=hue, ax=ax, palette="deep")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xlabel("")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_ha("right")
        if label.get_text() in highlight:
            label.set_color("crimson")
            label.set_fontweight("bold")
    ax.legend(loc="lower left", frameon=True)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- helpers
def _place_labels(ax, points, labels, colors=None, weights=None, offset=(4, 3)):
    """Name each point (x, y in data units) of ``ax`` with a text that overlaps no other:
    labels that would collide are pushed up or down, with a thin leader line back to their
    point. Returns the annotations."""
    fig = ax.figure
    colors = colors or ["#333333"] * len(labels)
    weights = weights or ["normal"] * len(labels)
    notes = [ax.annotate(str(lab), (x, y), xytext=offset, textcoords="offset points", color=c, fontweight=w,
                         fontsize=9, arrowprops=dict(arrowstyle="-", color="0.6", lw=0.5, shrinkA=0, shrinkB=2))
             for (x, y), lab, c, w in zip(points, labels, colors, weights)]
    fig.canvas.draw()
    _keep_inside(ax, notes)
    if len(notes) < 2:
        return notes
    renderer = fig.canvas.get_renderer()
    px_to_pt = 72 / fig.dpi
    def box(note):  # the text's own box, without its leader line
        note.update_positions(renderer)
        return matplotlib.text.Text.get_window_extent(note, renderer)

    order = sorted(range(len(notes)), key=lambda i: box(notes[i]).y0)
    # the points themselves are obstacles too: a name never covers another method's marker
    centres = ax.transData.transform(np.asarray(points, dtype=float))
    placed = [matplotlib.transforms.Bbox.from_extents(x - 3.5, y - 3.5, x + 3.5, y + 3.5) for x, y in centres]
    for i in order:
        note = notes[i]
        for _ in range(len(notes) * 2):
            here = box(note)
            clash = [b for b in placed if here.overlaps(b)]
            if not clash:
                break
            dy = max(b.y1 for b in clash) - here.y0 + 1  # move above the highest label it touches
            x0, y0 = note.xyann
            note.xyann = (x0, y0 + dy * px_to_pt)
        placed.append(box(note))
    return notes


def _keep_inside(ax, notes):
    """Labels that would stick out of the axes on the right are put left of their point."""
    renderer = ax.figure.canvas.get_renderer()
    right = ax.get_window_extent(renderer).x1
    for note in notes:
        note.update_positions(renderer)
        if matplotlib.text.Text.get_window_extent(note, renderer).x1 > right:
            note.xyann = (-note.xyann[0], note.xyann[1])
            note.set_horizontalalignment("right")



def _mark_ticks(labels, highlight):
    for label in labels:
        if label.get_text() in highlight:
            label.set_color("crimson")
            label.set_fontweight("bold")


def _draw_heatmap(frame: pd.DataFrame, ax, *, fmt: str, vmin, vmax, cmap, annot, cbar, cbar_label, highlight,
                  center=None, cbar_ax=None):
    k = max(frame.shape)
    annot = frame.size <= 225 if annot is None else annot
    sns.heatmap(frame.astype(float), ax=ax, annot=annot, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, center=center,
                cbar=cbar, cbar_ax=cbar_ax, cbar_kws={"label": cbar_label} if cbar else None,
                square=frame.shape[0] == frame.shape[1] and cbar_ax is None,
                annot_kws={"fontsize": 9}, linewidths=0.3 if k <= 30 else 0,
                xticklabels=k <= 40, yticklabels=k <= 40)
    ax.tick_params(labelsize=9)
    for label in ax.get_xticklabels():
        label.set_rotation(40)
        label.set_ha("right")
    for label in ax.get_yticklabels():
        label.set_rotation(0)
    _mark_ticks(ax.get_xticklabels(), highlight)
    _mark_ticks(ax.get_yticklabels(), highlight)


# --------------------------------------------------------------------------- matrices
def matrix_heatmap(frame: pd.DataFrame, *, title: str = "", xlabel: str = "", ylabel: str = "",
                   cbar_label: str = "", fmt: str = ".2f", vmin=None, vmax=None, cmap: str = "viridis",
                   annot: bool | None = None, highlight=(), center=None):
    """A heatmap of a labelled matrix (rows x columns DataFrame), e.g. the Jaccard overlap
    of class patterns, a transition matrix or a label flow. Cells are annotated when the
    matrix has at most 225 of them (``annot`` forces it); rows and columns named in
    ``highlight`` are marked in red. Returns the Figure (one heatmap axis and its colour bar)."""
    rows, cols = frame.shape
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH_IN, max(5.0, 1.8 + 0.5 * cols)), min(9, max(3.8, 1.4 + 0.42 * rows))))
    _draw_heatmap(frame, ax, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, annot=annot, cbar=True,
                  cbar_label=cbar_label, highlight=highlight, center=center)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def heatmaps_side_by_side(frames: dict, *, title: str = "", xlabel: str = "", ylabel: str = "",
                          cbar_label: str = "", fmt: str = ".2f", vmin=None, vmax=None, cmap: str = "viridis",
                          annot: bool | None = None, highlight=(), ncols: int | None = None):
    """Several matrices of the same shape on one colour scale, one panel each ({panel
    title: DataFrame}), ``ncols`` panels per row (by default as many as fit the column at a
    legible size: one per row for ten classes). Within a row only the first panel carries row
    labels. Returns the Figure (one axis per panel, then the shared colour bar's axis)."""
    mats = list(frames.values())
    check(len(mats) > 0, "heatmaps_side_by_side needs at least one matrix")
    rows, cols = mats[0].shape
    if vmin is None:
        vmin = min(float(np.nanmin(f.to_numpy(dtype=float))) for f in mats)
    if vmax is None:
        vmax = max(float(np.nanmax(f.to_numpy(dtype=float))) for f in mats)
    n = len(frames)
    w = 0.45 * cols + 0.3  # inches a panel needs for legible cells
    if ncols is None:
        ncols = max(1, min(n, int((MAX_WIDTH_IN - 2.2) // w)))
    check(isinstance(ncols, int) and ncols >= 1, f"ncols must be a positive integer, got {ncols!r}")
    nrows = math.ceil(n / ncols)
    h = 0.4 * rows + 1.3
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, h * nrows + (0.4 if title else 0)),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.remove()
    for i, (name, frame) in enumerate(frames.items()):
        ax = axes.flat[i]
        _draw_heatmap(frame, ax, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, annot=annot, cbar=False,
                      cbar_label=cbar_label, highlight=highlight)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        first = i % ncols == 0
        ax.set_ylabel(ylabel if first else "")
        if not first:
            ax.set_yticklabels([])
    fig.colorbar(axes.flat[0].collections[0], ax=list(axes.flat[:n]), label=cbar_label, shrink=0.9,
                 aspect=30 * nrows)
    if title:
        fig.suptitle(title)
    return fig


def pattern_membership(patterns, k: int, *, title: str = ""):
    """Which classes' feature patterns contain the channels of class ``k``'s pattern P_k.

    Left: a class x channel grid over the channels of P_k (shared channels first, ordered by
    how many classes have them, then the unique ones), a filled cell where the class's
    pattern P_j contains the channel. Right: each other class's Jaccard overlap with P_k.
    ``patterns``: a :class:`megu_lib.entanglement.Patterns`. Returns the Figure (two axes)."""
    names = list(patterns.classes)
    members = patterns.members.numpy().astype(bool)
    parts = patterns.split(k)
    shared = [int(c) for c in parts["shared"]]
    unique = [int(c) for c in parts["unique"]]
    shared.sort(key=lambda c: -int(members[:, c].sum()))
    order = shared + unique
    grid = pd.DataFrame(members[:, order].astype(float), index=names, columns=[f"{c}" for c in order])
    overlap = patterns.overlap().iloc[k].drop(names[k])
    if len(overlap) > 40:  # many classes: only the 40 closest
        overlap = overlap.sort_values(ascending=False)[:40]
    tall = 0.3 * len(names)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(MAX_WIDTH_IN, 1.4 + tall + 0.9 + 0.26 * len(overlap)),
                                  gridspec_kw={"height_ratios": [tall + 0.4, 0.26 * len(overlap) + 0.2]})
    cmap = ListedColormap(["#f2f2f2", "#3b6ea8"])
    label_channels = len(order) * 0.17 <= MAX_WIDTH_IN - 2.0  # 9 pt channel numbers only where they fit
    sns.heatmap(grid, ax=ax, cmap=cmap, vmin=0, vmax=1, cbar=False, linewidths=0.4, linecolor="white",
                xticklabels=label_channels, yticklabels=len(names) <= 40)
    if shared and unique:
        ax.axvline(len(shared), color=MEGU_COLOR, lw=1.5)
    ax.set_xlabel(f"channels of P[{names[k]}]: {len(shared)} shared | {len(unique)} unique")
    ax.set_ylabel("class whose pattern contains the channel")
    ax.tick_params(axis="x", rotation=90)
    ax.tick_params(axis="y", rotation=0)
    _mark_ticks(ax.get_yticklabels(), (names[k],))
    ax.set_title(title or f"The feature pattern of {names[k]!r}")
    ax2.barh(list(overlap.index)[::-1], list(overlap.values)[::-1], color="#3b6ea8")
    ax2.set_xlabel(f"Jaccard overlap with {names[k]!r}")
    ax2.set_xlim(0, min(1.0, max(0.1, 1.2 * float(overlap.max()) if len(overlap) else 0.1)))
    ax2.set_ylabel("")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- scatter and bars
def labelled_scatter(df: pd.DataFrame, x: str, y: str, *, label: str | None = None, hue: str | None = None,
                     xlabel: str = "", ylabel: str = "", title: str = "", annotate: int | bool = True,
                     fit: bool = False, highlight=(), logy: bool = False, ylim=None):
    """A scatter of ``df[y]`` against ``df[x]``; points named by ``df[label]``.

    ``annotate``: True names every point, an int n names only the n points with the largest
    ``y`` (crowded plots). ``fit``: adds a least-squares line. Points whose label is in
    ``highlight`` are red. ``logy``: a symmetric-log y axis (linear below 1), for rates with
    many zeros. ``ylim``: (low, high). Returns the Figure (one axis)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = ["crimson" if label and v in highlight else "#3b6ea8" for v in (df[label] if label else [None] * len(df))]
    if hue is not None:
        sns.scatterplot(data=df, x=x, y=y, hue=hue, ax=ax, s=45, palette="deep")
    else:
        ax.scatter(df[x], df[y], c=colors, s=45, alpha=0.85, edgecolor="white", linewidth=0.5)
    if fit and len(df) >= 2 and df[x].nunique() > 1:
        slope, icept = np.polyfit(df[x].astype(float), df[y].astype(float), 1)
        xs = np.linspace(float(df[x].min()), float(df[x].max()), 50)
        ax.plot(xs, slope * xs + icept, color="gray", lw=1, ls="--", label="least-squares line")
        ax.legend(loc="best")
    if logy:
        ax.set_yscale("symlog", linthresh=1.0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if label is not None and annotate:
        named = df if annotate is True else df.nlargest(int(annotate), y)
        _place_labels(ax, list(zip(named[x], named[y])), list(named[label]),
                      colors=["crimson" if v in highlight else "#333333" for v in named[label]])
    return fig


def grouped_bars(df: pd.DataFrame, x: str, y: str, hue: str, *, col: str | None = None, xlabel: str = "",
                 ylabel: str = "", title: str = "", ylim=None, fmt: str | None = None, palette: str = "deep"):
    """Grouped bars of ``df[y]`` by ``x`` and ``hue``, one panel per value of ``col`` (if
    given, sharing the y axis). ``fmt``: write each bar's value on it. Returns the Figure."""
    panels = list(dict.fromkeys(df[col])) if col is not None else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(MAX_WIDTH_IN, 3.8), sharey=True, squeeze=False)
    hue_order = list(dict.fromkeys(df[hue]))
    for ax, panel in zip(axes[0], panels):
        part = df if panel is None else df[df[col] == panel]
        sns.barplot(data=part, x=x, y=y, hue=hue, hue_order=hue_order, ax=ax, palette=palette,
                    order=list(dict.fromkeys(df[x])))
        if fmt:
            for container in ax.containers:
                ax.bar_label(container, fmt=f"%{fmt}", fontsize=9, padding=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if panel is not None:
            ax.set_title(str(panel))
        if ylim is not None:
            ax.set_ylim(*ylim)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:  # one legend for all panels, under them
        fig.legend(handles, labels, title=hue, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    if title:
        fig.suptitle(title)
    rows = math.ceil(len(labels) / 4) + 1 if handles else 0  # legend rows and its title
    fig.tight_layout(rect=(0, rows * 0.25 / fig.get_size_inches()[1], 1, 1))
    return fig


# --------------------------------------------------------------------------- images
def image_grid(images, titles=None, *, ncols: int = 6, row_labels=None, noise: bool = False, title: str = "",
               title_colors=None, cbar_label: str = "noise (pixel units)", size: float = 1.05):
    """Images in a grid, ``ncols`` per row, each with an optional title.

    ``images``: (N, C, H, W), uint8 (0..255) or float in [0, 1]; with ``noise=True`` float
    noises of either sign, shown on one symmetric scale: single-channel noises in a diverging
    colour map (blue < 0 < red) with a colour bar, colour noises mapped to [0, 1] around 0.5.
    ``row_labels``: one label per row, written left of it. ``title_colors``: one colour per
    title. ``size``: inches per image. The grid never gets wider than the book's column: fewer
    columns (and more rows) than ``ncols`` where they would not fit. Returns the Figure (N image
    axes, plus a colour bar axis when ``noise``)."""
    images = torch.as_tensor(images).detach().cpu()
    n = len(images)
    extra = (1.0 if row_labels is not None else 0) + (1.0 if noise else 0)
    size = min(size, MAX_WIDTH_IN - extra)
    ncols = max(1, min(ncols, n, int((MAX_WIDTH_IN - extra) // size)))
    nrows = max(1, int(np.ceil(n / ncols)))
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + extra, (size + 0.2 * lines) * nrows + 0.4),
                             squeeze=False)
    scale = float(images.abs().max()) if noise and n else 1.0
    scale = scale if scale > 0 else 1.0
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        if i >= n:
            ax.axis("off")
            continue
        img = images[i].float()
        if images.dtype == torch.uint8:
            img = img / 255
        a = img.permute(1, 2, 0).numpy()
        if a.shape[2] == 1:
            a = a[:, :, 0]
            im = ax.imshow(a, cmap="RdBu_r" if noise else "gray", vmin=-scale if noise else 0,
                           vmax=scale if noise else 1)
        else:
            ax.imshow(np.clip(a / (2 * scale) + 0.5, 0, 1) if noise else np.clip(a[:, :, :3], 0, 1))
        if titles is not None and i < len(titles):
            ax.set_title(str(titles[i]), fontsize=9, color=(title_colors[i] if title_colors is not None else "black"))
    if row_labels is not None:
        for r, lab in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(str(lab), rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if noise and im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=cbar_label)
    return fig


# --------------------------------------------------------------------------- the records' figures
#: Colours for the baselines, none of them red (MeGU's) or grey (the original's).
BASELINE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#bcbd22", "#17becf", "#1b3a6b",
                   "#b8860b", "#00897b", "#6a3d9a", "#4daf4a")


def _method_palette(methods) -> dict:
    """One colour per method: MeGU red, its variants lighter reds, retrain black, the original
    grey, the baselines from :data:`BASELINE_COLORS`."""
    fixed = {"megu": MEGU_COLOR, "megu_paper": "#f28e8e", "retrain": "#111111", "original": "#999999"}
    pal, others = {}, iter(BASELINE_COLORS * 3)
    for m in methods:
        pal[m] = fixed.get(m) or ("#e8a0a0" if str(m).startswith("megu") else next(others))
    return pal


def _interval(r: pd.DataFrame):
    """Error bar lengths [below, above] of a ranking's 95 % intervals, cut at 0 (a gap is never negative)."""
    lo = (r.gap - r.ci_low.astype(float).clip(lower=0)).fillna(0).clip(lower=0)
    hi = (r.ci_high.astype(float) - r.gap).fillna(0).clip(lower=0)
    return [lo.to_numpy(float), hi.to_numpy(float)]


def plot_time_vs_gap(df: pd.DataFrame, methods=None):
    """Typical time (s, log scale; :func:`megu_lib.stats.typical_seconds`) against mean gap to
    retrain (points, with its 95 % interval over seeds), one panel per scenario; retrain sits at
    gap 0 as the reference time to beat. Each point is named, the names pushed apart where they
    would overlap."""
    methods = list(methods) if methods is not None else main_methods(df)
    methods = [m for m in methods if m != "original"]
    scen = scenarios_of(df)
    pal = _method_palette(methods)
    fig, axes = plt.subplots(len(scen), 1, figsize=(MAX_WIDTH_IN, 3.3 * len(scen)), squeeze=False)
    drawn = {}  # scenario -> (ranking, mean seconds), for the names placed afterwards
    for ax, s in zip(axes[:, 0], scen):
        r = gap_ranking(df, s, methods)
        secs = typical_seconds(df[(df.scenario == s) & df.method.isin(methods)])
        drawn[s] = r, secs
        lo, hi = _interval(r)
        for i, (m, row) in enumerate(r.iterrows()):
            ax.errorbar(secs[m], row.gap, yerr=[[lo[i]], [hi[i]]], fmt="*" if m == "megu" else "o",
                        ms=12 if m == "megu" else 6, color=pal[m], capsize=2, lw=0.8, zorder=3)
        if "retrain" in secs.index:
            ax.plot(secs["retrain"], 0, "s", ms=7, color=pal["retrain"], zorder=3)
            ax.axvline(secs["retrain"], color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylim(bottom=min(-0.05 * float(np.nanmax(r.ci_high.astype(float).fillna(r.gap))), -0.1))
        ax.set_ylabel("gap to retrain (pts)")
        ax.set_title(f"{s} forgetting")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time per request (s, log scale)")
    fig.tight_layout()
    for ax, s in zip(axes[:, 0], scen):  # names last: they are placed on the final layout
        r, secs = drawn[s]
        names = list(r.index) + (["retrain"] if "retrain" in secs.index else [])
        points = [(secs[m], (r.loc[m, "gap"] if m in r.index else 0.0)) for m in names]
        _place_labels(ax, points, names, colors=[pal[m] for m in names],
                      weights=["bold" if m == "megu" else "normal" for m in names])
    return fig


def plot_gap_ranking(df: pd.DataFrame, methods=None):
    """Mean gap to retrain per method (bars, with the 95 % interval over seeds), one panel per
    scenario, the methods in one order (their pooled rank) across the panels; MeGU in its red
    and the do-nothing original in grey."""
    scen = scenarios_of(df)
    order = list(gap_ranking(df, None, methods).index)
    pal = _method_palette(order)
    fig, axes = plt.subplots(1, len(scen), figsize=(MAX_WIDTH_IN, 0.9 + 0.27 * len(order)), sharey=True,
                             squeeze=False)
    for ax, s in zip(axes[0], scen):
        r = gap_ranking(df, s, methods).reindex(order)
        colors = [pal[m] if m in ("megu", "megu_paper", "original") else "#1f77b4" for m in r.index]
        ax.barh(range(len(r)), r.gap.fillna(0), xerr=_interval(r), color=colors, capsize=2,
                error_kw={"lw": 0.8})
        ax.set_yticks(range(len(r)), r.index)
        ax.set_xlabel("gap (pts)")
        ax.set_title(f"{s}")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].invert_yaxis()
    _mark_ticks(axes[0, 0].get_yticklabels(), ("megu",))
    fig.tight_layout()
    return fig


def plot_profile_comparison(table: pd.DataFrame):
    """Grouped bars: each method's mean gap to retrain under each profile of
    :func:`megu_lib.tables.profile_comparison` (shorter is closer to retrain)."""
    gap = RANKING_LABELS["gap"]
    long = pd.DataFrame([dict(method=m, profile=label, gap=table.loc[m, (label, gap)])
                         for label in dict.fromkeys(table.columns.get_level_values(0)) for m in table.index
                         if np.isfinite(table.loc[m, (label, gap)])])
    fig = grouped_bars(long, "method", "gap", "profile", ylabel="mean gap to retrain (pts)")
    fig.set_size_inches(MAX_WIDTH_IN, 4.2)
    for ax in fig.axes:
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
    fig.tight_layout()
    return fig

def plot_collateral(frame: pd.DataFrame, forget: str, *, ncols: int = 3):
    """One panel per method: each retained class's accuracy change (points) against its
    feature overlap with the forgotten class; retrain's in grey in every panel."""
    methods = list(dict.fromkeys(frame.method))
    shown = [m for m in methods if m != "retrain"] or methods
    ncols = min(ncols, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, 2.0 * nrows + 0.7), sharex=True, sharey=True,
                             squeeze=False)
    ref = frame[frame.method == "retrain"]
    for ax, m in zip(axes.flat, shown):
        g = frame[frame.method == m]
        if len(ref) and m != "retrain":
            ax.scatter(ref.overlap, ref.change, s=12, color="0.65", label="retrain")
        color = MEGU_COLOR if m == "megu" else "tab:blue"
        ax.scatter(g.overlap, g.change, s=16, color=color, label=m, zorder=3)
        if g.overlap.nunique() >= 3:  # least-squares trend: damage growing with overlap slopes down
            slope, icpt = np.polyfit(g.overlap, g.change, 1)
            xs = np.array([g.overlap.min(), g.overlap.max()])
            ax.plot(xs, icpt + slope * xs, color=color, lw=1)
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_title(m, fontweight="bold" if m == "megu" else "normal")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(shown):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(f"overlap with {forget!r}")
    for ax in axes[:, 0]:
        ax.set_ylabel("Δ test acc. (pts)")
    fig.suptitle(f"Collateral damage after forgetting {forget!r} (grey: retrain)")
    fig.tight_layout()
    return fig

def plot_ablations(effects: pd.DataFrame):
    """Change in gap to retrain when each component is removed (points), per scenario."""
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.6))
    order = [ABLATION_LABELS[a] for a in ("megu_paper", *ABLATIONS) if ABLATION_LABELS[a] in set(effects.component)]
    sns.barplot(data=effects, y="component", x="delta_gap", hue="scenario", order=order, ax=ax, palette="deep",
                hue_order=[s for s in SCENARIO_ORDER if s in set(effects.scenario)])
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_xlabel("gap minus full MeGU's gap (pts; > 0: the part helps)")
    ax.set_ylabel("")
    ax.legend(title="scenario", loc="best")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig

def plot_sensitivity(table: pd.DataFrame):
    """One panel per hyperparameter: the mean gap to retrain and its parts (points) against
    the value (log scale); the profile's value marked by a dotted line."""
    axes_names = list(dict.fromkeys(table.axis))
    ncols = min(2, len(axes_names))
    nrows = math.ceil(len(axes_names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, 2.7 * nrows + 0.7), sharey=True,
                             squeeze=False)
    keys = [k for k in GAP_LABELS if k in table.columns]
    for ax in axes.flat[len(axes_names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, axes_names):
        sub = table[table.axis == name].sort_values("value")
        for k in keys:
            ax.plot(sub.value, sub[k], "o-" if k == "gap" else ".--", lw=2.2 if k == "gap" else 1,
                    color="black" if k == "gap" else None, label=GAP_LABELS[k])
        d = sub[sub.default]
        if len(d):
            ax.axvline(d.value.iloc[0], color="0.5", ls=":", lw=1)
        if sub.value.min() > 0 and sub.value.max() / sub.value.min() >= 4:
            ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xticks(sorted(sub.value.unique()))
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("|MeGU − retrain| (pts)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), frameon=False)
    rows = math.ceil(len(labels) / 3)
    fig.tight_layout(rect=(0, rows * 0.25 / fig.get_size_inches()[1], 1, 1))
    return fig

def plot_claims(claims: pd.DataFrame):
    """The numeric claims: our figure (bar, green if the claim holds, with its 95 % interval
    over seeds) against the paper's (dashed line), one panel per claim and a bar per data set / model."""
    from .claims import VERDICTS
    num = claims[claims.unit.isin(["points", "% lower", "% saved"]) & claims.value.notna()]
    keys = list(dict.fromkeys(num.claim))
    if not keys:
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.text(0.5, 0.5, "no numeric claim could be tested on these records", ha="center", va="center")
        ax.axis("off")
        return fig
    ncols = min(2, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, 3.0 * nrows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    many_data, many_methods = num.data.nunique() > 1, num.method.nunique() > 1
    for ax, k in zip(axes.flat, keys):
        sub = num[num.claim == k]
        colors = ["tab:green" if v == VERDICTS[0] else "tab:red" if v == VERDICTS[1] else "0.6" for v in sub.verdict]
        ax.bar(range(len(sub)), sub.value, color=colors, width=0.6)
        if {"low", "high"} <= set(sub.columns) and np.isfinite(sub.low.astype(float)).any():
            lo = (sub.value - sub.low.astype(float)).clip(lower=0).fillna(0)
            hi = (sub.high.astype(float) - sub.value).clip(lower=0).fillna(0)
            ax.errorbar(range(len(sub)), sub.value, yerr=[lo, hi], fmt="none", ecolor="black", capsize=3, lw=1)
        ax.axhline(sub.target.iloc[0], color="black", ls="--", lw=1.2, label="paper")
        labels = ["\n".join(([m] if many_methods else []) + ([d] if many_data or not many_methods else []))
                  for m, d in zip(sub.method, sub.data)]
        ax.set_xticks(range(len(sub)), labels)
        ax.set_ylabel(sub.unit.iloc[0])
        ax.set_title(sub.short.iloc[0] or k)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend()
    fig.tight_layout()
    return fig

def plot_study_histories(trials: pd.DataFrame, *, ncols: int = 3):
    """One panel per method: each trial's gap on the validation split (points; one colour per
    scenario, a cross when the trial took longer than retraining) and the best gap so far
    within the cap (line) — the optimisation history of every study."""
    methods = list(dict.fromkeys(trials.method))
    scen = [s for s in SCENARIO_ORDER if s in set(trials.scenario)]
    colors = dict(zip(scen, sns.color_palette("colorblind", len(scen))))
    ncols = min(ncols, len(methods))
    nrows = math.ceil(len(methods) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, 2.1 * nrows + 0.8), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    for ax, m in zip(axes.flat, methods):
        for s in scen:
            sub = trials[(trials.method == m) & (trials.scenario == s)].sort_values("trial")
            if not len(sub):
                continue
            ok = sub.within_cap & sub.gap.notna()
            ax.plot(sub.trial[ok], sub.gap[ok], "o", ms=3.5, color=colors[s], alpha=0.8)
            ax.plot(sub.trial[~ok], sub.gap[~ok], "x", ms=4, color=colors[s], alpha=0.8)
            best = sub.gap.where(ok).cummin().ffill()  # an over-cap trial keeps the best so far
            ax.step(sub.trial, best, where="post", color=colors[s], lw=1.6, label=s)
        ax.set_title(m)
        ax.grid(alpha=0.3)
        if (trials.gap.dropna() > 0).all():  # gaps span decades: a log scale shows the best-so-far lines
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    for ax in axes[:, 0]:
        ax.set_ylabel("gap on validation (pts, log)" if axes[0, 0].get_yscale() == "log"
                      else "gap on validation (pts)")
    for ax in axes[-1, :]:
        ax.set_xlabel("trial")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, [f"{lab} forgetting" for lab in labels], loc="lower center", ncol=len(labels),
               frameon=False)
    fig.tight_layout(rect=(0, 0.3 / fig.get_size_inches()[1], 1, 1))
    return fig


# --------------------------------------------------------------------------- per-example privacy
def plot_privacy_auc(table: pd.DataFrame):
    """U-LiRA's AUC per model (points, with the 95 % bootstrap interval over targets), most
    exposed at the top; 50 % (unlearned cannot be told from retrained) marked. ``table``:
    :func:`megu_lib.shadows.privacy_table`. The anchors keep their colours (original grey,
    retrain black), MeGU its red."""
    t = table.sort_values("auc", ascending=False)
    pal = _method_palette(t.index)
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 0.9 + 0.3 * len(t)))
    for i, (m, row) in enumerate(t.iterrows()):
        ax.errorbar(row.auc, i, xerr=[[row.auc - row.auc_lo], [row.auc_hi - row.auc]],
                    fmt="*" if m == "megu" else "o", ms=12 if m == "megu" else 6, color=pal[m], capsize=2, lw=0.8)
    ax.axvline(50, color="0.4", ls=":", lw=1)
    ax.set_yticks(range(len(t)), t.index)
    _mark_ticks(ax.get_yticklabels(), ("megu",))
    ax.invert_yaxis()
    ax.set_xlabel("U-LiRA AUC (%): 50 = unlearned looks retrained")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_roc_curves(curves: dict, *, highlight=("original", "retrain", "megu", "megu_paper")):
    """ROC curves of the attack on log-log axes (the low-FPR end is where an attack exposes
    single examples with confidence): the models in ``highlight`` in their colours, the other
    methods thin; the diagonal is chance. ``curves``: {model: RocSummary}."""
    pal = _method_palette(curves)
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN * 0.75, 4.2))
    floor = min(1.0 / max(c.n_neg for c in curves.values()), 1e-3)
    for m, c in curves.items():
        strong = m in highlight
        fpr, tpr = np.maximum(c.fpr, floor), np.maximum(c.tpr, floor)
        ax.plot(fpr, tpr, color=pal[m], lw=2.0 if strong else 0.9, alpha=1.0 if strong else 0.55,
                ls="--" if m == "retrain" else "-", label=m if strong else None, zorder=3 if strong else 2)
    ax.plot([floor, 1], [floor, 1], color="0.6", lw=0.8, ls=":", label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1.05)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="lower right", fontsize=STYLE["legend.fontsize"], title="thin: other methods",
              title_fontsize=STYLE["legend.fontsize"])
    fig.tight_layout()
    return fig


def plot_confidence_examples(values: dict, examples, *, labels=None):
    """Per target example (one panel each), its logit-scaled confidence under each model (one
    row per model, one dot per shadow that forgot it): what U-LiRA fits its Gaussians to.
    ``values``: {model: (n_shadows, n_targets) array with NaN where not forgotten};
    ``examples``: target columns to show; ``labels``: a title per example."""
    names = list(values)
    pal = _method_palette(names)
    fig, axes = plt.subplots(len(examples), 1, figsize=(MAX_WIDTH_IN, 0.6 + 0.32 * len(names) * len(examples)),
                             squeeze=False)
    rng = np.random.default_rng(0)
    for k, (ax, j) in enumerate(zip(axes[:, 0], examples)):
        for i, m in enumerate(names):
            x = values[m][:, j]
            x = x[np.isfinite(x)]
            ax.plot(x, i + rng.uniform(-0.15, 0.15, len(x)), "o", ms=4, color=pal[m], alpha=0.8)
            ax.plot([x.mean()], [i], "|", ms=14, mew=2, color=pal[m])
        ax.set_yticks(range(len(names)), names)
        _mark_ticks(ax.get_yticklabels(), ("megu",))
        ax.invert_yaxis()
        title = labels[k] if labels is not None else f"target {j}"
        ax.set_title(textwrap.fill(title, 64), loc="left")  # a long title would widen the figure past the column
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("logit-scaled confidence on the true label, log(p / (1 − p))")
    fig.tight_layout()
    return fig


def plot_auc_by_shadows(spread: pd.DataFrame):
    """U-LiRA's AUC against the number of shadow models (one dot per random draw of shadows,
    the mean as a bar), one colour per model. ``spread``: rows of
    :func:`megu_lib.shadows.auc_by_shadows` with a ``model`` column."""
    models = list(dict.fromkeys(spread.model))
    pal = _method_palette(models)
    sizes = sorted(spread.shadows.unique())
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN * 0.75, 3.2))
    width = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        for k, n in enumerate(sizes):
            a = spread[(spread.model == m) & (spread.shadows == n)].auc.to_numpy()
            x = k + (i - (len(models) - 1) / 2) * width
            ax.plot(np.full(len(a), x), a, "o", ms=3, color=pal[m], alpha=0.6)
            ax.plot([x - width / 3, x + width / 3], [a.mean()] * 2, color=pal[m], lw=2.5,
                    label=m if k == 0 else None)
    ax.axhline(50, color="0.4", ls=":", lw=1)
    ax.set_xticks(range(len(sizes)), [str(n) for n in sizes])
    ax.set_xlabel("shadow models the attack rests on")
    ax.set_ylabel("U-LiRA AUC (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=STYLE["legend.fontsize"])
    fig.tight_layout()
    return fig
