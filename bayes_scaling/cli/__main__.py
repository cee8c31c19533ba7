"""``python -m bayes_scaling.cli``: the same as the ``bayes-scaling`` command."""

import sys

from bayes_scaling.cli import main

sys.exit(main())
