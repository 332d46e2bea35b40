"""``python -m model_export.evaluate``, kept so that existing commands keep working.

The code is model_export/evaluation/dataset_report.py (``python -m model_export.evaluation.dataset_report``)."""

import sys

from model_export.evaluation.dataset_report import main

if __name__ == "__main__":
    sys.exit(main())
