"""`python -m lib ...`: the command line; see `lib.cli`."""

from lib.cli import main

raise SystemExit(main())
