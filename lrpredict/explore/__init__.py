"""``lrpredict explore``: one offline HTML page over the real API (the ``explore`` extra: plotly).

The page's numbers are ``suggest``'s, precomputed on a grid and interpolated in log space in the browser
(``grid``); the charts are plotly figures built in Python (``charts``); ``page`` writes the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lrpredict.errors import LrpredictError
from lrpredict.paths import checked_path, shown

__all__ = ["write_explorer"]


def write_explorer(
    out: str | Path,
    arch: str = "dense",
    laws: tuple[str, ...] = (),
    *,
    force: bool = False,
    sweeps: str | Path | None = None,
    per_decade: int = 3,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write the explorer page for ``arch`` to ``out`` (refused when it exists, unless ``force``)."""
    target = checked_path("out", out)
    if target.exists() and not force:
        raise LrpredictError("out", shown(str(out)), "a file that does not exist yet (or --force to overwrite it)")
    if target.suffix.lower() not in (".html", ".htm"):
        raise LrpredictError("out", shown(str(out)), "a file name ending in .html")
    if sweeps is not None and not checked_path("sweeps", sweeps).is_dir():
        raise LrpredictError("sweeps", shown(str(sweeps)), "a folder holding steplaw_dense.csv / steplaw_moe.csv")
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise LrpredictError("explore", "plotly", "installed: pip install 'lrpredict[explore]'") from None
    from lrpredict.explore.page import build_page

    text = build_page(arch, laws, sweeps=sweeps, per_decade=per_decade, progress=progress)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LrpredictError("out", shown(str(out)), f"a file this user can write ({exc.strerror})") from None
    return target
