"""The fine-tuning recipe's numpy parts, which run without the train extra: CutMix on cached
feature maps mixes exactly the share of each sample that the loss is told about."""

from __future__ import annotations

import numpy as np
import pytest

from vision.tools.finetune import cutmix


def test_cutmix_pastes_one_box_from_the_partner_and_reports_the_share_kept() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        # sample i is filled with the value i, so every cell says whose map it came from
        maps = np.broadcast_to(np.arange(6, dtype=np.float32)[:, None, None, None], (6, 4, 14, 14))
        maps = maps.copy()
        partner, share = cutmix(maps, rng)
        assert sorted(partner) == list(range(6))
        for i in range(6):
            own = maps[i, 0] == i
            if partner[i] != i:
                assert float(own.mean()) == pytest.approx(share)  # the label weight: area kept
                rows, cols = np.nonzero(~own)
                box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
                assert box == (~own).sum()  # one rectangle
                assert np.all(maps[i][:, ~own] == partner[i])
            assert np.all(maps[i] == maps[i, :1])  # every channel mixed alike
        assert 0.0 <= share <= 1.0
