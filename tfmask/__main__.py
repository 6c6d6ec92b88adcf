"""``python -m tfmask`` runs the command line."""

from tfmask.cli import main

raise SystemExit(main())
