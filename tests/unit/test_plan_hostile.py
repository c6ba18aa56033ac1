"""Hostile Dockerfiles (deep `${...}` nesting, NUL bytes in paths, doubling ARGs, huge
lines) plan or fail with a StrataError at a line: never a RecursionError, a ValueError
or a hang. Hypothesis picks the sizes and places; examples are few and bounded."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strata.dockerfile.parser import parse
from strata.errors import DockerfileError, StrataError
from strata.plan.convert import plan_build
from tests.unit.test_plan_fuzz import _resolve

PATH_LINES = [
    "COPY {p} /dest/",
    "COPY a {p}",
    "ADD {p} /dest/",
    "WORKDIR {p}",
    "RUN --mount=type=cache,target={p} true",
    "COPY --from=base {p} /x",
]


@st.composite
def hostile_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["nesting", "nul", "nul-arg", "doubling", "huge"]))
    if kind == "nesting":
        depth = draw(st.integers(1, 12_000))
        inner = draw(st.sampled_from(["x", "$A", '"q"', "}", ""]))
        return "ENV X=" + "${A:-" * depth + inner + "}" * draw(st.integers(depth - 1, depth))
    if kind in ("nul", "nul-arg"):
        path = draw(st.text(alphabet="ab/\0.", min_size=1, max_size=8))
        line = draw(st.sampled_from(PATH_LINES))
        if kind == "nul-arg":
            return f"ARG P={path}\n" + line.format(p="$P")
        return line.format(p=path)
    if kind == "doubling":
        count = draw(st.integers(10, 40))
        chain = "".join(f"ARG A{i}=${{A{i - 1}}}${{A{i - 1}}}\n" for i in range(1, count + 1))
        return f"ARG A0=ab\n{chain}RUN echo $A{count}"
    return "ENV BIG=" + "v" * draw(st.integers(100_000, 2_000_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_line(), min_size=1, max_size=3))
def test_hostile_dockerfiles_plan_or_fail_at_a_line(lines: list[str]) -> None:
    text = "FROM busybox AS base\n" + "\n".join(lines) + "\n"
    try:
        df = parse(text)
    except StrataError:
        return
    try:
        plan_build(df, target=None, build_args={}, resolve_image=_resolve)
    except DockerfileError as exc:
        assert exc.line > 0
    except StrataError:
        pass
