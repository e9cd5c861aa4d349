"""The marker of expected errors, and how the command-line tools report them.

An *expected* error is a bad input (a missing dataset, a checkpoint that does not fit, a config
mistake, a full disk, an image the model cannot take ...) whose message already names the file
or value and the fix. Its traceback only hides that message under library frames (after the
runner's config dump of several hundred lines), so the tools print the message alone. Every
other exception is a bug and keeps its traceback.

Each such error class derives from :class:`UserError` besides its usual built-in base
(``class ConfigError(ValueError, UserError)``), so ``except ValueError`` keeps working. This
module needs nothing but the standard library: any layer may import it.
"""
import contextlib
import os
import re
import sys

__all__ = ['MissingFileError', 'TRACEBACK_ENV', 'UserError', 'report_user_errors']

# Set to 1 to see the traceback of expected errors too (e.g. to report a wrong message).
TRACEBACK_ENV = 'REPLK_TRACEBACK'


class UserError(Exception):
    """Marker base: an expected error whose message names the problem and the fix."""


class MissingFileError(FileNotFoundError, UserError):
    """A file or folder the user named does not exist; the message names it."""


@contextlib.contextmanager
def report_user_errors(tool):
    """Exit with ``TOOL: ErrorType: message`` (status 1, no traceback) on a :class:`UserError`.

    For a tool's ``if __name__ == '__main__':`` block; ``main(argv)`` itself still raises, so
    tests and callers see the exception. ``REPLK_TRACEBACK=1`` re-raises with the traceback.
    """
    try:
        yield
    except UserError as exc:
        if os.environ.get(TRACEBACK_ENV, '').lower() in ('1', 'true', 'yes'):
            raise
        sys.stderr.flush()
        sys.exit(f'{tool}: {type(exc).__name__}: {_message(exc)}')


def _message(exc):
    message = str(exc)
    # torch's DataLoader re-raises a worker's error as the same type with a message of
    # "Caught X in DataLoader worker process N.\nOriginal Traceback ...\npackage.module.X: <msg>"
    if message.startswith('Caught ') and '\nOriginal Traceback' in message:
        found = re.findall(r'\n(?:[\w.]+\.)?' + re.escape(type(exc).__name__) + r': (.*)',
                           message.rstrip())
        if found:
            return f'{found[-1]} (in a data loader worker)'
    return message
