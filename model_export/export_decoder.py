"""``python -m model_export.export_decoder``, kept so that existing commands keep working.

The code is model_export/export/decoder.py (``python -m model_export.export.decoder``)."""

import sys

from model_export.export.decoder import main

if __name__ == "__main__":
    sys.exit(main())
