"""lrpredict: peak learning rate, weight decay and batch size for LLM pre-training from published scaling laws.

>>> import lrpredict
>>> s = lrpredict.suggest(lrpredict.ModelConfig(params="1B", tokens="20B"))
>>> s.lr, s.batch_tokens, s.law
"""

from lrpredict.architecture import Architecture, ParamCounts, count_parameters
from lrpredict.config import ModelConfig
from lrpredict.errors import LawFileError, LrpredictError, MissingInputError
from lrpredict.laws import LawFile
from lrpredict.registry import laws, load_law
from lrpredict.suggest import Factor, LrRange, Suggestion, compare, suggest
from lrpredict.units import parse_size

__version__ = "0.1.0"

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
    "compare",
    "count_parameters",
    "laws",
    "load_law",
    "parse_size",
    "suggest",
]
