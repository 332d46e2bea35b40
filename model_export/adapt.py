"""``python -m model_export.adapt``, kept so that existing commands keep working.

The code is model_export/adaptation/adapt.py (``python -m model_export.adaptation.adapt``)."""

import sys

from model_export.adaptation.adapt import main

if __name__ == "__main__":
    sys.exit(main())
