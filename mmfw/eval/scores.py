"""Which benchmark metrics are scores: copied to a run's metrics.json as <benchmark>/<key>,
shown and plotted by mmfw-report."""

from __future__ import annotations

SCORE_SUFFIXES = ("accuracy", "_rate")  # accuracies, and rates such as short_answer_rate


def is_score(key: str) -> bool:
    """``chance`` or a key ending in one of ``SCORE_SUFFIXES``."""
    return key == "chance" or key.endswith(SCORE_SUFFIXES)
