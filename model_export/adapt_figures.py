"""``python -m model_export.adapt_figures``, kept so that existing commands keep working.

The code is model_export/adaptation/figures.py (``python -m model_export.adaptation.figures``)."""

import sys

from model_export.adaptation.figures import main

if __name__ == "__main__":
    sys.exit(main())
