"""lrpredict: peak learning rate, weight decay and batch size for LLM pre-training from published scaling laws.

>>> import lrpredict
>>> s = lrpredict.suggest(params="1B", tokens="20B")  # or a ModelConfig, or a dict of its fields
>>> s.law, s.status, f"{s.lr:.3g}"
('steplaw-2025', 'confirmed', '0.000996')

``print(s)`` shows the command line's summary; ``lrpredict.transfer(proxy, hparams, target)`` carries a tuned
proxy's hyperparameters to a target (the Transfer paradigm, docs/transfer.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# What suggest needs is imported now (suggest loads all of it anyway); the rest of the API when first used (PEP 562
# __getattr__ below), so `import lrpredict` and `lrpredict suggest` do not build the transfer models (issue 21).
from lrpredict.architecture import Architecture, ParamCounts, count_parameters
from lrpredict.config import ModelConfig
from lrpredict.errors import LawFileError, LrpredictError, MissingInputError
from lrpredict.laws import LawFile
from lrpredict.registry import laws, load_law
from lrpredict.suggest import compare, suggest
from lrpredict.suggestion import Factor, LrRange, Suggestion
from lrpredict.units import parse_size

if TYPE_CHECKING:  # what __getattr__ loads on first use, for type checkers and editors
    from lrpredict import transfer
    from lrpredict.transfer import TransferPlan


def _version() -> str:
    """The installed distribution's version (pyproject.toml); a source tree that was never installed says so."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lrpredict")
    except PackageNotFoundError:
        return "0+unknown"


# name -> (module, attribute; None: the module itself, e.g. lrpredict.transfer is a callable module)
_LAZY: dict[str, tuple[str, str | None]] = {
    "transfer": ("lrpredict.transfer", None),
    "TransferPlan": ("lrpredict.transfer", "TransferPlan"),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # importlib.metadata is read only when someone asks for the version
        return _version()
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attribute is None else getattr(module, attribute)
    raise AttributeError(f"module 'lrpredict' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})


__all__ = [
    "Architecture",
    "Factor",
    "LawFile",
    "LawFileError",
    "LrRange",
    "LrpredictError",
    "MissingInputError",
    "ModelConfig",
    "ParamCounts",
    "Suggestion",
    "TransferPlan",
    "compare",
    "count_parameters",
    "laws",
    "load_law",
    "parse_size",
    "suggest",
    "transfer",
]
