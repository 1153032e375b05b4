"""`python -m jaxglmm ...`: the `jaxglmm` command line (see jaxglmm.cli)."""
import sys

from .cli import main

sys.exit(main())
