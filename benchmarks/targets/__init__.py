"""The serving targets of the benchmark, one module per kind (see ``base.py``)."""
