"""``python -m loralab`` runs the command line."""

from loralab.cli import main

main()
