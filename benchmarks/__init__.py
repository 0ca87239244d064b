"""Side-by-side benchmarks of kraken_nb: core throughput, end to end, DataFrames, widget bandwidth.

Run ``python -m benchmarks`` (``--quick`` for a tiny corpus, ``--only NAME``
for one benchmark). Every figure is a ratio or a comparison measured in the
same run, because shared machines are too noisy for absolute thresholds.
Generated corpora are cached in ``benchmarks/.corpus/`` and results written to
``benchmarks/results/``.
"""

from __future__ import annotations

__all__: list[str] = []
