"""``python -m cephalo.cli``: the ``cephalo`` command."""

from cephalo.cli.main import main

main()
