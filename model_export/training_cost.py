"""``python -m model_export.training_cost``, kept so that existing commands keep working.

The code is model_export/training/cost.py (``python -m model_export.training.cost``)."""

import sys

from model_export.training.cost import main

if __name__ == "__main__":
    sys.exit(main())
