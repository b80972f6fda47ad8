"""``python -m app.cli``: the ``verbcal`` command without depending on where it is installed."""

from app.cli import main

main()
