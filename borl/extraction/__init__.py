"""Policy extraction: implicit best-of-N over policy samples scored by a critic, or explicit AWR."""

from borl.extraction.awr import awr_weights, weighted_update
from borl.extraction.base import EXTRACTIONS, Extraction
from borl.extraction.implicit import best_of_n, choose, score_candidates

__all__ = [
    "EXTRACTIONS",
    "Extraction",
    "awr_weights",
    "best_of_n",
    "choose",
    "score_candidates",
    "weighted_update",
]
