"""The errors a user can cause. Every one is a `StrataError` and prints without a traceback.

Internal bugs stay ordinary exceptions: they should be loud. All user-facing error
classes live in this one module (as httpx's `_exceptions.py`), so the tree below is the
whole contract; code elsewhere raises them and never defines its own.

    StrataError                     exit_code 1 unless said otherwise
    ├── DockerfileError             a place in a Dockerfile: file, line, end_line, source
    │   ├── UnknownTargetError      `--target` names no stage; `stages` lists those that do
    │   └── LintViolation           `# check=error=true` and the target has findings
    ├── UnplacedError               rejected deep down, before the place is known; a
    │   │                           caller's `located(where)` turns it into a DockerfileError
    │   ├── InstructionError        an instruction BuildKit rejects (flags, arguments)
    │   │   └── MountError          a `RUN --mount` value
    │   ├── ShellError              a word BuildKit's lexer refuses (`reason`, `word`)
    │   ├── ConfigError             an instruction value rejected at dispatch
    │   ├── SourceError             an ADD git reference or checksum
    │   ├── PlatformError           a platform string containerd would not parse
    │   └── ImageReferenceError     an image name distribution/reference would not parse
    ├── IgnorePatternError          a `.dockerignore` / `--exclude` pattern (`pattern`)
    ├── SourceNotFoundError         a COPY/ADD source missing from its tree (`path`)
    ├── PatternSyntaxError          a malformed COPY/ADD wildcard
    ├── ChmodSyntaxError            a `--chmod` value
    ├── UsageError                  a bad command-line option or argument (`option`)
    ├── StoreError                  the state root refused: missing image, corrupt blob
    ├── PrivilegeError              not root, or no CAP_SYS_ADMIN, for a build or a run
    ├── ExecError                   a container process failed or did not start
    ├── BuildError                  a build failed at a step: file, line, end_line, source
    │   └── StepProcessError        ... a RUN, whose container is kept for a debug shell
    ├── RegistryError               a registry refused, failed or was unreachable
    └── Interrupted                 SIGINT / SIGTERM: exit 130 / 143

`located(where)` is how a place is attached: a block that calls code raising an
`UnplacedError` runs under it, instead of catching and re-raising by hand (httpx's
`request_context` does the same for requests). `reraised_as(Kind, kinds)` likewise
turns a lower layer's error into the caller's kind with the same message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from strata.gotext import go_quote

if TYPE_CHECKING:
    from collections.abc import Sequence

    from strata.plan.result import PlanWarning
    from strata.solver.failed import FailedContainer


class StrataError(Exception):
    """Base of every error a person can fix: bad input, a missing file, a failing step."""

    exit_code: int = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


# -- errors with a place in a Dockerfile -------------------------------------------------


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


class UnknownTargetError(DockerfileError):
    """`--target` names no stage; `stages` lists the names that do exist."""

    def __init__(self, message: str, *, file: str, stages: Sequence[str]) -> None:
        super().__init__(message, file=file)
        self.stages = tuple(stages)


class LintViolation(DockerfileError):
    """`# check=error=true` and the target has lint findings: the build fails with
    `lint violation found for rules: ...` after conversion (BuildKit linter.go `Error`).

    `warnings` are the findings themselves, which BuildKit reports before failing; the
    plan they belonged to is not returned, so they travel with the error."""

    def __init__(self, rules: Sequence[str], warnings: Sequence[PlanWarning], *, file: str) -> None:
        super().__init__(f"lint violation found for rules: {', '.join(rules)}", file=file)
        self.warnings = tuple(warnings)


# -- errors raised before their place is known -------------------------------------------


class UnplacedError(StrataError):
    """A value rejected by code that does not know where it was written (a lexer, a
    flag or platform parser). The caller that knows the place runs the call under
    `located(where)`, which re-raises it as a `DockerfileError` at that place."""


class InstructionError(UnplacedError):
    """An instruction that BuildKit rejects, before a place in the file is attached.

    `parse_instruction` turns it into a DockerfileError with the node's lines; code that
    validates at dispatch time (mount options, say) wraps it the same way.
    """


class MountError(InstructionError):
    """A `--mount` value BuildKit rejects; the caller attaches the RUN's location."""


class ShellError(UnplacedError):
    """A word that BuildKit's lexer refuses: an unterminated quote or brace, a
    bad `${...}` form, or a `${VAR?message}` whose variable is unset.

    `str()` is BuildKit's full text, `failed to process "<word>": <reason>`;
    `reason` is the part after the colon (`X: is not allowed to be unset`) and
    `word` the input. Callers add the Dockerfile line when they wrap it.
    """

    def __init__(self, reason: str, *, word: str) -> None:
        super().__init__(f"failed to process {go_quote(word)}: {reason}")
        self.reason = reason
        self.word = word


class ConfigError(UnplacedError):
    """An instruction value BuildKit rejects at dispatch; the caller adds the location."""


class SourceError(UnplacedError):
    """A git reference or checksum BuildKit rejects; the caller adds the location."""


class PlatformError(UnplacedError):
    """A platform string containerd would not parse; the caller adds where it came from."""


class ImageReferenceError(UnplacedError):
    """An image name that distribution/reference would not parse. (Not `ReferenceError`,
    which would shadow Python's builtin.)"""


class Place(Protocol):
    """Where something is written: what `located` needs of a location (the frontend's
    `Location` is one)."""

    @property
    def file(self) -> str: ...
    @property
    def start_line(self) -> int: ...
    @property
    def end_line(self) -> int: ...
    @property
    def source(self) -> str | None: ...


@contextlib.contextmanager
def located(
    where: Place,
    kinds: type[StrataError] | tuple[type[StrataError], ...] = UnplacedError,
    *,
    prefix: str = "",
) -> Iterator[None]:
    """Re-raise an error of `kinds` (by default any `UnplacedError`) from the block as a
    `DockerfileError` at `where`, its message kept after `prefix`, as BuildKit's
    `parser.WithLocation` wraps one. Other errors pass through untouched."""
    try:
        yield
    except kinds as exc:
        raise DockerfileError(
            prefix + exc.message,
            file=where.file,
            line=where.start_line,
            end_line=where.end_line,
            source=where.source,
        ) from None


@contextlib.contextmanager
def reraised_as(
    make: Callable[[str], Exception],
    kinds: type[StrataError] | tuple[type[StrataError], ...],
    *,
    prefix: str = "",
) -> Iterator[None]:
    """Re-raise an error of `kinds` from the block as `make(prefix + its message)`: a
    lower layer's refusal in the words of the layer that called it (a lexer's error as
    a config error, a mount's as an instruction's). Other errors pass through."""
    try:
        yield
    except kinds as exc:
        raise make(prefix + exc.message) from None


# -- errors in the build context ---------------------------------------------------------


class IgnorePatternError(StrataError):
    """A `.dockerignore` (or `--exclude`) pattern that BuildKit refuses.

    The message is BuildKit's (`syntax error in pattern`,
    `illegal exclusion pattern: "!"`); `pattern` is the offending entry.
    """

    def __init__(self, message: str, *, pattern: str) -> None:
        super().__init__(message)
        self.pattern = pattern


class SourceNotFoundError(StrataError):
    """A literal COPY/ADD source that is not in its tree; BuildKit's `"/<path>": not found`."""

    def __init__(self, path: str) -> None:
        super().__init__(f'"{path}": not found')
        self.path = path


class PatternSyntaxError(StrataError):
    """A malformed wildcard; the text is Go's `path.ErrBadPattern`."""

    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


class ChmodSyntaxError(StrataError):
    """A `--chmod` value that is neither an octal mode nor a symbolic one."""


# -- errors of the command line, the store, the runtime and the build --------------------


class UsageError(StrataError):
    """A bad command-line option or argument; `option` names it."""

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class StoreError(StrataError):
    """The state root refused an operation: a missing image, a corrupt blob, a bad archive."""


class PrivilegeError(StrataError):
    """strata was asked to build or run without the privileges that takes (root, or
    CAP_SYS_ADMIN): said before any work, naming what is missing."""


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


class StepProcessError(BuildError):
    """A RUN's process failed and its container was kept for a debug shell."""

    def __init__(
        self,
        message: str,
        container: FailedContainer,
        *,
        file: str | None = None,
        line: int = 0,
        end_line: int | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message, file=file, line=line, end_line=end_line, source=source)
        self.container = container


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
