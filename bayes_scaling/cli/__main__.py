"""``python -m bayes_scaling.cli``: the same as the ``bayes-scaling`` command."""

import sys

from . import main

sys.exit(main())
