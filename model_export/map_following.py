"""``python -m model_export.map_following``, kept so that existing commands keep working.

The code is model_export/evaluation/map_following.py (``python -m model_export.evaluation.map_following``)."""

import sys

from model_export.evaluation.map_following import main

if __name__ == "__main__":
    sys.exit(main())
