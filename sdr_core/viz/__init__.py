"""Images, animations and plotly figures of depth refinement (a package being split by concern).

For now every name still lives in :mod:`.colormaps` (the former ``sdr_core/viz.py``); the
next step moves each concern into its own module and keeps this package's names the same.
"""

from __future__ import annotations

from .colormaps import *  # noqa: F403
from .colormaps import __all__  # noqa: F401
