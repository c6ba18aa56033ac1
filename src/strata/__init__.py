"""strata: a daemonless container image builder that reads Dockerfiles as BuildKit does."""

from strata.errors import BuildError, DockerfileError, StrataError

__all__ = ["BuildError", "DockerfileError", "StrataError"]
__version__ = "0.1.0"
