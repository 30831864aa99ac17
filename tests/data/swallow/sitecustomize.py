"""Loaded by the pytest an interrupt test starts (PYTHONPATH, REMAPLAB_SWALLOW_MARK set): the
first paramiko channel that pytest frees holds its __del__ open for a while, inside the bare
`except: pass` paramiko's own Channel.__del__ has, and touches that file so that the test sends
its signal then: a KeyboardInterrupt raised there is lost, as one can be in the real one.
Any other Python that inherits PYTHONPATH is left alone."""

import os
import sys
import time

_MARK = os.environ.get("REMAPLAB_SWALLOW_MARK")


def _patch() -> None:
    try:
        import paramiko.channel
    except ImportError:
        return

    def _del(self: paramiko.channel.Channel) -> None:
        try:
            if _MARK and not os.path.exists(_MARK):
                open(_MARK, "w").close()
                time.sleep(5)  # the signal arrives here
            self.close()
        except:  # noqa: E722 - exactly what paramiko's Channel.__del__ does
            pass

    paramiko.channel.Channel.__del__ = _del  # type: ignore[method-assign]


if _MARK and sys.orig_argv[1:3] == ["-m", "pytest"]:
    _patch()
