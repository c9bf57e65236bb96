"""The progress callback that long steps report to: ``progress(fraction,
label)``, with ``fraction`` in [0, 1]. Operators pass ``ctx.set_progress``."""

from typing import Callable, Optional

Progress = Optional[Callable[[float, str], None]]
