"""`python -m dse <verb> ...`: the same CLI as the `dse` command."""

from dse.cli import main

main()
