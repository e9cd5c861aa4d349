"""One logger for ``replk_mm.ops`` and lines that are worth saying once per process."""
import logging
import threading

logger = logging.getLogger('replk_mm.ops')

_lock = threading.Lock()
_said = set()


def log_once(key, msg, level=logging.WARNING):
    with _lock:
        if key in _said:
            return
        _said.add(key)
    logger.log(level, msg)


def forget_logged():
    """Say every line again (tests)."""
    with _lock:
        _said.clear()
