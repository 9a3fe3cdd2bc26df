"""``python -m brillm_core``: the engine's command line without the app."""

import sys

from .cli import main

sys.exit(main())
