"""``python -m model_export.segmentation``, kept so that existing commands keep working.

The code is model_export/evaluation/segmentation.py (``python -m model_export.evaluation.segmentation``)."""

import sys

from model_export.evaluation.segmentation import main

if __name__ == "__main__":
    sys.exit(main())
