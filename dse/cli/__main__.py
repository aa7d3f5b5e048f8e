"""`python -m dse.cli <verb> ...`."""

from dse.cli import main

main()
