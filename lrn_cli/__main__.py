"""``python -m lrn_cli`` runs the ``lrn`` command."""

from lrn_cli.cli import main

if __name__ == "__main__":
    main()
