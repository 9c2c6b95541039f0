"""The activeserve SDK: predictions with uncertainty, and review of flagged samples."""
