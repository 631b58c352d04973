"""``python -m course_grader COMMAND ...``: see :mod:`course_grader.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
