"""``python -m model_export.package_verdict``, kept so that existing commands keep working.

The code is model_export/evaluation/package_verdict.py (``python -m model_export.evaluation.package_verdict``)."""

import sys

from model_export.evaluation.package_verdict import main

if __name__ == "__main__":
    sys.exit(main())
