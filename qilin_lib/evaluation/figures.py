"""Notebook 05's figures, drawn from the eval_*.json files (never from numbers held in the notebook)."""

from __future__ import annotations

from pathlib import Path

from .. import plots
from ..paths import figures_dir
from .results import Results, mode_value

KNOWLEDGE_MODES = ("generate", "loglik", "cloze_sum", "cloze_calibrated")


def plot_knowledge(profile: str, bench: str = "cmexam") -> Path | None:
    """figures/<profile>/eval_knowledge_<bench>.png: accuracy per stage and scoring mode, taught vs
    control diseases, with chance as a line (tiny profile)."""
    res = Results(profile)
    models = [m for m in res.models if res.get(m, bench, "loglik", "by_group")]
    if not models:
        return None
    fig, axes = plots.plt.subplots(1, len(KNOWLEDGE_MODES), figsize=(3.0 * len(KNOWLEDGE_MODES), 3.2), sharey=True)
    width = 0.38
    for ax, mode in zip(axes, KNOWLEDGE_MODES):
        for k, group in enumerate(("taught", "control")):
            values = [mode_value(res, m, bench, mode, group=group) or 0.0 for m in models]
            xs = [i + (k - 0.5) * width for i in range(len(models))]
            ax.bar(xs, values, width, color=plots.PALETTE[k], label=group)
        ax.axhline(100 / _options(res, models[0], bench), color="grey", lw=0.8, ls="--", label="chance")
        ax.set_xticks(range(len(models)), models)
        ax.set_title(mode)
    axes[0].set_ylabel("accuracy (%)")
    axes[-1].legend(frameon=False, fontsize=8)
    fig.suptitle(f"{bench}: knowledge injection by stage ({profile})", y=1.04)
    return plots.save(fig, figures_dir(profile), f"eval_knowledge_{bench}")


def _options(res: Results, model: str, bench: str) -> int:
    """Options per item, as the run recorded it (chance = 1 / options)."""
    return max(res.by_key[(model, bench)]["protocol"].get("n_options") or 2, 2)
