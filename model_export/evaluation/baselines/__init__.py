"""Baselines of the usefulness test that need no diffusion model (issue #33): change pairs a user could make from the
same real maps and images as the generated datasets, to train the same change-detection nets on.

* ``copy-paste`` (after Self-Pair, WACV 2023, :mod:`.copy_paste`): real objects of other windows pasted in, real
  objects painted over with real ground, one mild global appearance jitter; the label where pixels were pasted or
  painted; as much change as the generated sample of the same index.
* ``random-pairing`` (after STAR, ICCV 2021, :mod:`.random_pairing`): two unrelated real windows, the label where their
  maps differ.

Both write the LEVIR-CD layout the dataset command writes (:mod:`.writer`), from the dataset command's own windows
(:mod:`.sources`), deterministic by seed::

    python -m model_export.evaluation.baselines copy-paste --semantic MAP... --image IMAGE... --count N --tile 256 --seed 0 --out DIR

``python -m model_export.evaluate ... --baseline copy-paste=DIR`` trains the usefulness test's nets on them, beside
the generated arms.
"""

from .copy_paste import CopyPasteSettings, apply_jitter, copy_paste_sample, find_donors
from .make import METHODS, make_baseline
from .random_pairing import random_pair_sample
from .sources import generated_changed_share, load_sources
from .writer import BASELINE_FILE, load_baseline

__all__ = ["BASELINE_FILE", "METHODS", "CopyPasteSettings", "apply_jitter", "copy_paste_sample", "find_donors",
           "generated_changed_share", "load_baseline", "load_sources", "make_baseline", "random_pair_sample"]
