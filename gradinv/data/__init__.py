"""Datasets, normalization and the selection of victim batches."""

from gradinv.data.spec import DataSpec
from gradinv.data.victims import VictimBatch

__all__ = ["DataSpec", "VictimBatch"]
