"""gateway.collector: the settings `serve` gives CPython's garbage collector. Checked in
a child process, since freezing the test process's objects would outlive the test."""

from __future__ import annotations

import subprocess
import sys

from gateway.collector import YOUNG_THRESHOLD

_PROBE = """
import gc
from gateway.collector import tune_for_serving
before = gc.get_threshold()
tune_for_serving()
# Cyclic garbage made after start-up is still collected: nothing new is frozen.
class Node:
    pass
node = Node(); node.self = node
del node
frozen = gc.get_freeze_count()
found = gc.collect()
print(before[1], before[2], *gc.get_threshold(), frozen, gc.get_freeze_count(), found)
"""


def test_serving_settings_freeze_start_up_and_raise_the_young_threshold() -> None:
    output = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    middle, old, young_after, middle_after, old_after, frozen, frozen_later, found = map(
        int, output
    )
    assert young_after == YOUNG_THRESHOLD
    assert (middle_after, old_after) == (middle, old)  # the older generations keep theirs
    assert frozen > 1000  # the modules imported so far
    assert frozen_later == frozen
    assert found >= 1  # the cycle was collected
