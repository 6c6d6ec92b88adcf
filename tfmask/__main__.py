"""``python -m tfmask`` = the ``tfmask`` command."""

import sys

from tfmask.cli import main

if __name__ == "__main__":
    sys.exit(main())
