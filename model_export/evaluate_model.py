"""``python -m model_export.evaluate_model``, kept so that existing commands keep working.

The code is model_export/evaluation/model_card.py (``python -m model_export.evaluation.model_card``)."""

import sys

from model_export.evaluation.model_card import main

if __name__ == "__main__":
    sys.exit(main())
