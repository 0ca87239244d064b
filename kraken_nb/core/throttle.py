"""Logging that cannot flood: the 1st, 2nd, 4th, 8th… occurrence of each kind is logged.

A hostile or broken peer can send thousands of bad frames a second, and a
user callback can fail on every event. Logging each one would bury
everything else (and cost more than the frame). ``ThrottledLog`` counts every
occurrence per key and logs only when the count reaches a power of two,
saying how many occurrences there were so far; the first one keeps its
traceback when asked. It reads no clock, so the core can use it and tests
are deterministic.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

__all__ = ["ThrottledLog"]


class ThrottledLog:
    """Counts occurrences per key; logs the 1st, 2nd, 4th, 8th… of each."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.counts: Counter[str] = Counter()

    def log(self, level: int, key: str, message: str, *args: Any, exc_info: bool = False) -> bool:
        """Count one occurrence of ``key``; log it if its count is a power of two. Return whether logged.

        ``exc_info`` is honoured for the first occurrence only.
        """
        self.counts[key] += 1
        count = self.counts[key]
        if count & (count - 1):
            return False
        if count == 1:
            self.logger.log(level, message, *args, exc_info=exc_info)
        else:
            self.logger.log(level, message + " (%d so far; logging the 1st, 2nd, 4th, 8th…)", *args, count)
        return True

    def warning(self, key: str, message: str, *args: Any, exc_info: bool = False) -> bool:
        """``log`` at WARNING."""
        return self.log(logging.WARNING, key, message, *args, exc_info=exc_info)
