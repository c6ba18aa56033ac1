"""How long parsing a large Dockerfile takes: prints the median of several runs in ms.

The file is about 5,000 lines mixing stages, continuations (with comments and blank lines
inside), heredocs, JSON and shell forms, ENV/LABEL pairs and flags, the shapes a parser meets.
Goal: well under 100 ms. Run: .venv/bin/python bench/parse.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import time

from strata.dockerfile.parser import parse


def generate_dockerfile(target_lines: int = 5000) -> str:
    """A syntactically valid Dockerfile of about `target_lines` lines."""
    lines = ["# syntax=docker/dockerfile:1", "# check=skip=all", ""]
    block = 0
    while len(lines) < target_lines:
        block += 1
        lines += [
            f"# stage {block} builds part {block}",
            f"FROM --platform=$BUILDPLATFORM debian:bookworm AS stage{block}",
            f'ARG VERSION_{block}="1.{block}" OTHER',
            f'ENV PATH=/opt/{block}/bin:$PATH LANG=C.UTF-8 NAME="value {block}"',
            f'LABEL org.example.part="{block}" maintainer="team@example.com"',
            "RUN --mount=type=cache,target=/var/cache/apt \\",
            "    apt-get update \\",
            "    # a comment inside the continuation",
            "    && apt-get install -y --no-install-recommends \\",
            "       ca-certificates curl git \\",
            "",
            "    && rm -rf /var/lib/apt/lists/*",
            "COPY --chown=1000:1000 --link src/ /app/src/",
            'COPY ["requirements.txt", "/app/"]',
            "RUN <<EOF",
            "set -eu",
            f"echo building part {block}",
            "for i in 1 2 3; do echo $i; done",
            "EOF",
            "COPY <<-'CONF' /etc/app.conf",
            f"\tkey = {block}",
            "\tother = $NOT_EXPANDED",
            "CONF",
            "WORKDIR /app",
            "EXPOSE 8080 8443/tcp",
            'HEALTHCHECK --interval=30s CMD ["curl", "-f", "http://localhost/"]',
            "ONBUILD RUN echo triggered",
            'ENTRYPOINT ["/app/run"]',
            'CMD ["--serve"]',
            "",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    text = generate_dockerfile()
    line_count = text.count("\n")
    parse(text)  # warm-up: imports, regex compilation
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        dockerfile = parse(text)
        timings.append((time.perf_counter() - started) * 1000)
    print(f"lines: {line_count}")
    print(f"instructions: {len(dockerfile.children)}")
    print(f"heredocs: {sum(len(node.heredocs) for node in dockerfile.children)}")
    print(f"runs: {runs}")
    print(f"median ms: {statistics.median(timings):.1f}")
    print(f"min ms: {min(timings):.1f}")


if __name__ == "__main__":
    main()
