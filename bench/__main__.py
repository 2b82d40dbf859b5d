"""``python -m bench``: see ``bench.cli``."""

import os
import sys

from bench.cli import main

if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # temporalio/sdk-python#300: the interpreter can abort while tearing down
