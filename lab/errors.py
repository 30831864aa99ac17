"""Errors a user can act on.  The CLI prints them as one line, never as a traceback."""

MAX_SHOWN = 60  # characters of a user's wrong value quoted in a message


def shown(value: object) -> str:
    """value's repr for an error message, cut to MAX_SHOWN characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


class LabError(Exception):
    """A problem with the user's input or the host, described in one clear line."""


class BootError(LabError):
    """The guest did not come up (kernel panic, hang before readiness, QEMU died).  workdir:
    the VM's folder, kept, with its console log, QEMU's argv and stderr (the evidence)."""

    def __init__(self, message: str, workdir: object = None) -> None:
        super().__init__(message)
        self.workdir = workdir


class GuestTimeout(LabError):
    """A bounded wait on the guest ran out."""
