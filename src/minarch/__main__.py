"""``python -m minarch`` is the ``minarch`` command."""

from minarch.cli import main

main()
