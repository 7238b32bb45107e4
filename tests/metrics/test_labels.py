"""Label accuracy: the multiset match of inferred and true labels, whatever their order."""

from __future__ import annotations

import torch

from gradinv.metrics.labels import label_multiset_accuracy


def test_label_accuracy_is_the_multiset_match_whatever_the_order():
    truth = torch.tensor([0, 0, 1, 2])
    assert label_multiset_accuracy(truth, torch.tensor([2, 1, 0, 0])) == 1.0
    assert label_multiset_accuracy(truth, torch.tensor([0, 1, 1, 1])) == 0.5
