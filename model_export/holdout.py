"""``python -m model_export.holdout``, kept so that existing commands keep working.

The code is model_export/evaluation/holdout.py (``python -m model_export.evaluation.holdout``)."""

import sys

from model_export.evaluation.holdout import main

if __name__ == "__main__":
    sys.exit(main())
