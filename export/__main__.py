"""`python -m export SOURCE --out DIR`: see `export.cli`."""

import sys

from export.cli import main

sys.exit(main())
