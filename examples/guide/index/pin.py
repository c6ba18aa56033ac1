"""Pins one package of this index in requirements.txt, as `go get module@version`
updates go.mod in Docker's guide.

    python3 index/pin.py NAME==VERSION

The pin replaces the line that names NAME, or is added at the end; the other lines are
kept as they are. A version the index does not serve is refused before the file is
touched, so a typo fails here rather than in the next build. It needs only the standard
library, so it runs in the example's base image:

    strata run -v "$PWD:$PWD" -w "$PWD" python:3.11 \\
        python3 index/pin.py greetings==1.1
"""

import re
import sys
from pathlib import Path

PACKAGES = Path(__file__).resolve().parent / "packages"
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def normalized(name):
    """PEP 503's form of a project name: case and runs of -_. do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def served_versions(name):
    """The versions of `name` that the index has a wheel for."""
    versions = []
    for wheel in PACKAGES.glob("*.whl"):
        project, version = wheel.name.split("-")[:2]
        if normalized(project) == normalized(name):
            versions.append(version)
    return sorted(versions)


def pin(requirements, name, version):
    """`requirements`' text with NAME pinned to VERSION, and the line it replaced (None
    when NAME was not there)."""
    pinned = f"{name}=={version}"
    lines = requirements.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and normalized(match.group(1)) == normalized(name):
            replaced, lines[index] = line, pinned
            break
    else:
        replaced = None
        lines.append(pinned)
    return "".join(line + "\n" for line in lines), replaced


def main(argv):
    match = REQUIREMENT.match(argv[0]) if len(argv) == 1 else None
    if match is None:
        print("usage: python3 index/pin.py NAME==VERSION", file=sys.stderr)
        return 2
    name, version = match.groups()
    versions = served_versions(name)
    if version not in versions:
        have = ", ".join(versions) or "none"
        print(f"{name}=={version}: not in the index (versions: {have})", file=sys.stderr)
        return 1
    path = Path("requirements.txt")
    text, replaced = pin(path.read_text(), name, version)
    path.write_text(text)
    # worded as `go get` reports what it did to go.mod
    if replaced is None:
        print(f"added {name}=={version}")
    else:
        print(f"changed {replaced.strip()} => {name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
