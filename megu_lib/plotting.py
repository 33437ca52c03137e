"""Figures for the book: small functions that take data or tidy DataFrames and return a Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch


def show_examples(data, per_class: int = 6, seed: int = 0, level: str | None = None, highlight=()):
    """A grid of training images, one row per class; rows named in ``highlight`` are marked."""
    names = data.class_names(level)
    labels = data.targets("train", level)
    g = torch.Generator().manual_seed(seed)
    fig, axes = plt.subplots(len(names), per_class, figsize=(per_class * 0.9, len(names) * 0.95))
    for c, name in enumerate(names):
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)[:per_class]]
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                img = data.train_x[idx[j]].permute(1, 2, 0).squeeze(-1).numpy()
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        axes[c, 0].text(-4, data.image_shape[1] / 2, name, ha="right", va="center", fontsize=9,
                        color="crimson" if name in highlight else "black",
                        fontweight="bold" if name in highlight else "normal")
    fig.subplots_adjust(left=0.22, wspace=0.05, hspace=0.05)
    return fig


def per_class_bars(df: pd.DataFrame, x: str = "class", y: str = "accuracy", hue: str = "model",
                   title: str = "", highlight=()):
    """Grouped bars of per-class accuracy (percent) for several models."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
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
    ax.legend(loc="lower left", frameon=True, fontsize=8)
    fig.tight_layout()
    return fig
