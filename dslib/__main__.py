"""``python -m dslib ...`` = the ``dslib`` command."""

import sys

from dslib.cli import main

sys.exit(main())
