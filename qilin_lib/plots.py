"""Figures, one matplotlib style. Every figure is saved as PNG (for the README/notebooks) and PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: papermill and CI have no display
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "legend.frameon": False,
    # CJK labels render with whatever CJK font the machine has; names in figures stay ASCII otherwise.
    "font.family": ["DejaVu Sans"],
}
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def figure(width: float = 6.0, height: float = 3.2):
    plt.rcParams.update(STYLE)
    return plt.subplots(figsize=(width, height))


def save(fig, directory: str | Path, name: str) -> Path:
    """Save `name`.png and `name`.pdf; PDF metadata dates are dropped so reruns give identical files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / f"{name}.png"
    fig.savefig(png, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(directory / f"{name}.pdf", bbox_inches="tight", metadata={"CreationDate": None, "Creator": None,
                                                                          "Producer": None})
    plt.close(fig)
    return png


def stacked_bars(groups: dict[str, dict[str, float]], title: str, ylabel: str):
    """One bar per outer key, stacked by inner key (e.g. corpus -> subset -> characters)."""
    fig, ax = figure()
    labels = sorted({inner for parts in groups.values() for inner in parts})
    bottoms = [0.0] * len(groups)
    for color, label in zip(PALETTE * 4, labels):
        values = [parts.get(label, 0.0) for parts in groups.values()]
        ax.bar(list(groups), values, bottom=bottoms, label=label, color=color)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig, ax
