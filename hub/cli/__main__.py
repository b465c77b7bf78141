"""``python -m hub.cli`` runs the same command as ``retail-hub``."""

from hub.cli import main

main()
