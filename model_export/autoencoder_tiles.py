"""``python -m model_export.autoencoder_tiles``, kept so that existing commands keep working.

The code is model_export/evaluation/autoencoder_tiles.py (``python -m model_export.evaluation.autoencoder_tiles``)."""

import sys

from model_export.evaluation.autoencoder_tiles import main

if __name__ == "__main__":
    sys.exit(main())
