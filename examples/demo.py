"""`make demo`: runs strata's main job on the bundled example (filled in as the engine lands)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STRATA = Path(sys.executable).with_name("strata")


def main() -> int:
    project = HERE / "guide"
    print(f"$ strata build --call=outline {project}", flush=True)
    return subprocess.call([str(STRATA), "build", "--call=outline", str(project)])


if __name__ == "__main__":
    sys.exit(main())
