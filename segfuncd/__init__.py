"""segfuncd: a self-hosted runtime for Segment-style Destination Functions.

Data flows intake -> store -> delivery -> runner; admin only reads. See the module
docstrings for what lives where; nothing here imports `daemon` or `ctl`.
"""

__version__ = "0.1.0"
