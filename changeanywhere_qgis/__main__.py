"""``python -m changeanywhere_qgis generate | simulate | info | dataset``: the command line lives in cli/."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
