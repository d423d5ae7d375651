"""The garbage collector in worker processes: freeze the start-up heap, pause per batch.

CPython's cyclic collector walks every tracked object it owns on a full
collection. A worker holds a large, permanent heap from start-up (SQLAlchemy,
Celery, lxml/premailer, cssutils, Jinja2), and a send batch allocates two
tracked objects per recipient that stay alive until the batch is sent; those
allocations alone set off full collections that walk the whole start-up heap
again and again, 15-20 % of the time spent personalising a wave. Nothing in a
recipient batch can form a cycle (strings, dicts of strings, frozen values),
so the collector has nothing to find there:

- `freeze_start_up_heap` moves everything alive at worker start-up into the
  permanent generation (`gc.freeze`), which collections skip; this is the
  standard remedy for long-lived CPython services (and keeps forked children
  from touching, and so copying, the parent's pages). Rendering a variant
  loads and caches far more (templates, parsed CSS), so the renderer freezes
  again after each new variant (`freeze_long_lived`).
- `collector_paused` holds the collector off while one batch is built, and
  turns it back on afterwards, so garbage made elsewhere is still collected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_start_up_heap() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()


# The same step, named for its other use: after caching something that lives
# as long as the process (a rendered variant and what rendering it loaded).
freeze_long_lived = freeze_start_up_heap


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collections inside the block; the collector's previous state after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
