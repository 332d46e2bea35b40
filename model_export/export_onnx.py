"""``python model_export/export_onnx.py``, kept so that existing commands keep working.

The code is model_export/export/package.py (``python -m model_export.export.package``)."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not from this folder
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from model_export.export.package import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
