"""`python -m client`: see client/_cli.py."""

import sys

from client._cli import main

sys.exit(main())
