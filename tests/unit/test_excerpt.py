from strata.cli.report import format_error
from strata.errors import DockerfileError
from strata.progress.excerpt import format_excerpt

DOCKERFILE = "FROM busybox\nCOPY app.sh /app/\nRUN /app/app.sh\nRUN false\n"


def test_single_line_range_shows_two_lines_of_context_and_trailing_empty_line() -> None:
    assert format_excerpt(DOCKERFILE, "Dockerfile", 4).splitlines() == [
        "Dockerfile:4",
        "-" * 20,
        "   2 |     COPY app.sh /app/",
        "   3 |     RUN /app/app.sh",
        "   4 | >>> RUN false",
        "   5 |     ",
        "-" * 20,
    ]


def test_multi_line_range_marks_every_line_and_one_line_of_context() -> None:
    text = "FROM a\nRUN a \\\n  b\nCMD x\nCMD y\n"
    lines = format_excerpt(text, "Dockerfile", 2, 3).splitlines()
    assert lines[2:6] == [
        "   1 |     FROM a",
        "   2 | >>> RUN a \\",
        "   3 | >>>   b",
        "   4 |     CMD x",
    ]


def test_error_report_has_excerpt_then_error_line() -> None:
    exc = DockerfileError("boom", file="Dockerfile", line=1, source="FROM a\n")
    report = format_error(exc)
    assert report.startswith("Dockerfile:1\n")
    assert report.endswith("ERROR: failed to build: failed to solve: boom")


def test_errors_outside_a_build_print_one_line() -> None:
    from strata.errors import StoreError

    assert format_error(StoreError("No such image: x")) == "ERROR: No such image: x"
