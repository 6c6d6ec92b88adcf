"""``per_session``: memoize a set-up function once per pytest session.

The testlib modules (``export_testlib``, ``torchvision_testlib``) are plain
functions of pytest's ``tmp_path_factory`` rather than conftest fixtures (a
conftest in a test folder would shadow the ``from conftest import ...`` of
test modules collected after it); this decorator gives them fixture-like
once-per-session results.
"""

from __future__ import annotations

import functools

_CACHE: dict = {}


def per_session(fn):
    """Memoizes ``fn(factory, *args)`` per pytest session (factories are unhashable)."""
    @functools.wraps(fn)
    def wrapper(factory, *args):
        key = (fn.__module__, fn.__name__, id(factory), args)
        if key not in _CACHE:
            _CACHE[key] = fn(factory, *args)
        return _CACHE[key]
    return wrapper
