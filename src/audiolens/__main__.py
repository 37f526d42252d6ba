"""``python -m audiolens``: the command line, also for launchers that start modules
(``torchrun --nproc-per-node 2 -m audiolens reproduce ...``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
