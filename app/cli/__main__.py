"""`python -m app.cli ...` runs the `vibetune` command."""

import sys

from app.cli.main import main

sys.exit(main())
