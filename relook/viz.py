"""Pictures for notebooks: temporal screenshot strips (matplotlib). Chain viewers build on these."""
from __future__ import annotations

from typing import Sequence


def show_shots(result, title: str | None = None, width: float = 15.0, crop: tuple[int, int] | None = None):
    """The temporal screenshots of one RenderResult side by side; an invalid render says why.
    `crop=(w, h)` shows only the top-left corner, where small test pages live."""
    import matplotlib.pyplot as plt

    shots = list(range(len(result.screenshots)))
    n = max(1, len(shots))
    fig, axes = plt.subplots(1, n, figsize=(width, width / n * 0.6), squeeze=False)
    for ax in axes[0]:
        ax.axis("off")
    if not shots:
        axes[0][0].text(0.5, 0.5, f"no screenshots\n{result.error}: {result.detail}", ha="center", va="center",
                        wrap=True, fontsize=11, color="crimson")
    for ax, i in zip(axes[0], shots):
        img = result.pixels(i)
        if crop:
            img = img[: crop[1], : crop[0]]
        ax.imshow(img)
        t = result.timepoints[i] if i < len(result.timepoints) else i
        ax.set_title(f"t = {'load' if t == 0 else f'+{t / 1000:g} s'}", fontsize=10)
    status = "valid" if result.valid else f"INVALID: {result.error} ({result.detail})"
    fig.suptitle(f"{title + ' — ' if title else ''}{status}", fontsize=11,
                 color="black" if result.valid else "crimson")
    fig.tight_layout()
    return fig


def shots_grid(results: Sequence, titles: Sequence[str], crop: tuple[int, int] | None = (800, 450)):
    """One row per render: compare several pages (or several turns) at the same time points."""
    import matplotlib.pyplot as plt

    n_rows = len(results)
    n_cols = max([len(r.screenshots) for r in results] + [1])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 2.6 * n_rows), squeeze=False)
    for row, (res, name) in enumerate(zip(results, titles)):
        for col in range(n_cols):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(res.screenshots):
                img = res.pixels(col)
                ax.imshow(img[: crop[1], : crop[0]] if crop else img)
            elif col == 0:
                ax.text(0.5, 0.5, f"{res.error}", ha="center", va="center", color="crimson")
            if row == 0 and col < len(res.timepoints):
                t = res.timepoints[col]
                ax.set_title("load" if t == 0 else f"+{t / 1000:g} s", fontsize=10)
        axes[row][0].set_ylabel(name, fontsize=9)
    fig.tight_layout()
    return fig
