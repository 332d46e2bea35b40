"""In QGIS the estimate before long work goes to the algorithm's feedback (the Processing log)."""

from __future__ import annotations

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback


class _Recorder(QgsProcessingFeedback):
    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []

    def pushInfo(self, info: str) -> None:  # noqa: N802 (QGIS's name)
        self.infos.append(info)
        super().pushInfo(info)


def test_the_estimate_is_pushed_to_the_feedback(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    feedback = _Recorder()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value > 1 else None)  # the estimate is all we need
    outputs = {p: str(tmp_path / f"{p}.tif") for p in ("OUTPUT_PRE_IMAGE", "OUTPUT_POST_IMAGE", "OUTPUT_PRE_MAP",
                                                        "OUTPUT_POST_MAP", "OUTPUT_CHANGE_MASK")}
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        processing_run("changeanywhere:generatechangesample", {
            "SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "MODEL": str(tiny_model_dir), "STEPS": 10,
            "SEED": 1, "DEVICE": 1, **outputs, "OUTPUT_RECORD": str(tmp_path / "sample.json"),
        }, feedback=feedback)
    estimates = [line for line in feedback.infos if line.startswith("estimate: ")]
    assert len(estimates) == 1 and "121 tiles x 10 steps on the cpu: about" in estimates[0], feedback.infos
    assert list(tmp_path.iterdir()) == []
