"""Split sizes: never a split of 0 or 1 names (np.loadtxt gives a 0-d array for one), the shares asked for, and the
same splits as before for the datasets the old rule served well (15 samples or more at the default shares)."""

from __future__ import annotations

import numpy as np
import pytest

from changeanywhere_qgis.engine.dataset.card import assign_splits, split_sizes

SHARES = [(0.7, 0.1, 0.2), (0.8, 0.0, 0.2), (0.5, 0.25, 0.25), (0.9, 0.05, 0.05), (0.1, 0.45, 0.45), (1.0, 0.0, 0.0)]


@pytest.mark.parametrize("fractions", SHARES)
def test_no_split_of_one_name_and_every_sample_in_one(fractions):
    for count in range(2, 400):
        sizes, notes = split_sizes(count, fractions)
        assert sum(sizes.values()) == count and sizes["train"] >= 2
        assert all(n == 0 or n >= 2 for n in sizes.values()), (count, sizes)
        for split, share in zip(("val", "test"), fractions[1:]):
            if share == 0:
                assert sizes[split] == 0
            elif sizes[split] != round(count * share):
                assert any(split in note for note in notes), (count, sizes, notes)  # the card says why
        splits, _ = assign_splits(count, 7, fractions)
        assert {s: splits.count(s) for s in ("train", "val", "test")} == sizes


def _old_assign_splits(count: int, seed: int) -> list[str]:
    """The rule before: round(count x 10 %) val, round(count x 20 %) test, the seed's permutation."""
    n_val, n_test = round(count * 0.1), round(count * 0.2)
    order = np.random.default_rng([int(seed), 0x5B117]).permutation(count)
    split = ["train"] * count
    for i in order[:n_val]:
        split[i] = "val"
    for i in order[n_val : n_val + n_test]:
        split[i] = "test"
    return split


def test_datasets_of_15_or_more_samples_keep_their_splits():
    for count in [15, 16, 20, 37, 100, 1000]:
        for seed in (0, 5):
            assert assign_splits(count, seed)[0] == _old_assign_splits(count, seed)
    assert split_sizes(10)[0] == {"train": 6, "val": 2, "test": 2}  # 10 gave val 1 before
    assert split_sizes(5)[0] == {"train": 3, "val": 0, "test": 2}
    assert split_sizes(3)[0] == {"train": 3, "val": 0, "test": 0}
