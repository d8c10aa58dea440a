"""``python -m waystation`` runs the command-line interface."""

from waystation.cli import main

raise SystemExit(main())
