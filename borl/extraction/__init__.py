"""Policy extraction: implicit best-of-N over policy samples scored by a critic."""

from borl.extraction.implicit import best_of_n, choose, score_candidates

__all__ = ["best_of_n", "choose", "score_candidates"]
