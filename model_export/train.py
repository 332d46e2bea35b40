"""``python -m model_export.train``, kept so that existing commands keep working.

The code is model_export/training/train.py (``python -m model_export.training.train``)."""

import sys

from model_export.training.train import main

if __name__ == "__main__":
    sys.exit(main())
