"""The errors a user can cause. Every one is a `StrataError` and prints without a traceback.

Internal bugs stay ordinary exceptions: they should be loud.
"""

from __future__ import annotations


class StrataError(Exception):
    """Base of every error a person can fix: bad input, a missing file, a failing step."""

    exit_code: int = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class DockerfileError(StrataError):
    """A Dockerfile that cannot be read or built, pointing at the lines to blame.

    `line` and `end_line` are 1-based; 0 means the error has no place in the file
    (an empty Dockerfile, say). `source` is the Dockerfile's text when known, so a
    printer can show the excerpt around the line as BuildKit does.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str = "Dockerfile",
        line: int = 0,
        end_line: int | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.end_line = end_line if end_line is not None else line
        self.source = source


class UsageError(StrataError):
    """A bad command-line option or argument; `option` names it."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class StoreError(StrataError):
    """The state root refused an operation: a missing image, a corrupt blob, a bad archive."""


class ExecError(StrataError):
    """A process in a container failed or could not start."""

    def __init__(self, message: str, *, exit_status: int | None = None) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class BuildError(StrataError):
    """A build failed at a step; carries the Dockerfile location of the step when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int = 0,
        end_line: int | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.end_line = end_line if end_line is not None else line
        self.source = source


class RegistryError(StrataError):
    """A registry refused, failed or could not be reached; `registry` names the host
    (`docker.io`, `127.0.0.1:5000`) so the message can say where to look."""

    def __init__(self, message: str, *, registry: str | None = None) -> None:
        super().__init__(message)
        self.registry = registry


class Interrupted(StrataError):
    """The user stopped the operation (SIGINT: exit 130, SIGTERM: exit 143)."""

    def __init__(self, message: str = "interrupted", *, signal_number: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number
