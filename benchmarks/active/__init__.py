"""The active-learning benchmark: a pool-based run of the AIFT/ACFT loop.

``python -m benchmarks.active_learning`` drives it; this package holds its parts:
``datasets`` (the data and the model factory), ``methods`` (how each selection method
picks labels, through ``activeserve.core``), ``loop`` (one trial: rounds of selection
and continuous fine-tuning through ``activeserve.trainer``), ``summary`` (labels to
the target, area under the curve, labels saved) and ``output`` (table, JSON, plot).
"""
