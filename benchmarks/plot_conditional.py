"""Plot lrpredict's conditional law over the recorded optimal LRs (docs/img/conditional_batch.png).

python benchmarks/plot_conditional.py      # needs the plot extra (matplotlib)
"""

from __future__ import annotations

import math
from pathlib import Path

from lrpredict.registry import conditional_batch_law_id, load_law

from fit_conditional_batch import DEFAULT_SWEEPS, arch_points

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "conditional_batch.png"


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, arch in zip(axes, ("dense", "moe"), strict=True):
        points = arch_points(DEFAULT_SWEEPS, arch)
        ax.scatter(
            [math.exp(p.log_ratio_batch) for p in points],
            [math.exp(p.log_ratio_lr) for p in points],
            s=12,
            alpha=0.6,
            label="recorded optimum (Eq.2 vertex)",
        )
        law = load_law(conditional_batch_law_id(arch))
        low, high = law.domain["B_ratio"]
        ratios = [r for r in (2 ** (k / 8) for k in range(-48, 33)) if low <= r <= high]  # the fitted domain only
        ax.plot(ratios, [law.lr_batch.factor(r, 1.0) for r in ratios], color="black", label=law.id)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("B / B_opt")
        ax.set_title(f"{arch}: s_below={law.lr_batch.s_below.value:.2f}, s_above={law.lr_batch.s_above.value:.2f}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("η*(B) / η*(B_opt)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Optimal LR away from the optimal batch (Step Law sweeps)")
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == "__main__":
    main()
