"""Path arithmetic of the Dockerfile frontend: Go's path.Clean/Join and BuildKit's
NormalizePath, which keeps an absolute path as written but cleans a relative one joined
to the working directory (util/system/path.go). Both shapes reach op identities, so they
must match BuildKit exactly.
"""

from __future__ import annotations

from strata.gotext import go_path_base, go_path_clean

# Go's path.Clean and path.Base under the names the planner reads them by.
clean = go_path_clean
base_name = go_path_base


def join(*elements: str) -> str:
    """Go's path.Join: join the non-empty elements with `/` and clean; all empty → ``."""
    kept = [e for e in elements if e]
    if not kept:
        return ""
    return clean("/".join(kept))


def normalize_path(parent: str, new_path: str, *, keep_slash: bool) -> str:
    """BuildKit's NormalizePath for Linux: relative paths join `parent`, absolute stay."""
    original = new_path
    if parent == "":
        parent = "/"
    if not parent.startswith("/"):
        parent = join("/", parent)
    if new_path == "":
        new_path = parent
    if not new_path.startswith("/"):
        new_path = join(parent, new_path)
    if keep_slash:
        if original.endswith("/") and not new_path.endswith("/"):
            new_path += "/"
        elif original.endswith("/."):
            if new_path != "/":
                new_path += "/"
            new_path += "."
    return new_path


def normalize_workdir(current: str, requested: str) -> str:
    """The WORKDIR after `WORKDIR requested` with `current` in effect."""
    return normalize_path(current, requested, keep_slash=False)


def relative_to_workdir(workdir: str, path: str) -> str:
    """A COPY/ADD destination resolved against WORKDIR, keeping a trailing `/` or `/.`.

    Source: dockerfile2llb/convert.go `pathRelativeToWorkingDir`.
    """
    if path.startswith("/"):
        return normalize_path("/", path, keep_slash=True)
    if path in (".", ""):
        path = "./"
    return normalize_path(workdir, path, keep_slash=True)
