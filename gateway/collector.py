"""The garbage collector's settings for a serving gateway process.

Layer: process set-up (``serve`` calls it once the gateway has started). CPython's
defaults (a young-generation collection every 700 net container allocations, a full
one every 100 of those when enough objects were promoted) suit short programs. A
gateway keeps hundreds of objects per connected charger alive for hours and allocates
dozens per message, so with thousands of chargers the collector keeps scanning the same
long-lived sessions: measured with ``python -m gateway.hotpath --stations 1000``,
it took a large share of the CPU (docs/performance.md, "Garbage collection").

Two changes, both standard for long-running Python servers:

- ``gc.freeze()`` once start-up is done: the modules, mapping tables and compiled
  schemas live as long as the process, so no collection need scan them again.
- A young-generation threshold of :data:`YOUNG_THRESHOLD` instead of 700: far fewer
  collections, each of which finds most of a message's objects already freed by
  reference counting. Cyclic garbage waits longer, bounded by the threshold (a few MB).
"""

from __future__ import annotations

import gc
import logging
from typing import Final

log = logging.getLogger(__name__)

YOUNG_THRESHOLD: Final = 50_000


def tune_for_serving() -> None:
    """Freeze what start-up built and raise the young-generation threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.info(
        "garbage collector: %d start-up objects frozen, thresholds %s",
        gc.get_freeze_count(),
        gc.get_threshold(),
    )
