"""Docker's spellings of strata's commands, so a script's `docker image ls`, `docker
builder prune` or `docker buildx du` works with `strata` in place of `docker`; and
`strata image prune`, which has no shorter name.

Each group maps Docker's sub-command names to the command that already does the work
(`image ls` is `strata images`, `buildx du` is `strata du`), imported only when that
sub-command runs. `system df` is the build cache's `du`: strata keeps no containers or
volumes, and `strata images` shows the images' sizes.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping

import click

from strata.cli.context import client
from strata.progress.units import human_size

__all__ = ["COMMANDS"]

PRUNE_DANGLING_WARNING = (
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
)
PRUNE_ALL_WARNING = (
    "WARNING! This will remove all images without at least one container associated to"
    " them.\nAre you sure you want to continue?"
)


class AliasGroup(click.Group):
    """A group whose sub-commands are commands of other modules, by `module:attribute`,
    imported on first use."""

    def __init__(self, *args: object, aliases: Mapping[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.aliases = dict(aliases)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.aliases})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.aliases:
            module_name, _, attribute = self.aliases[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)


def alias_group(name: str, help_text: str, aliases: Mapping[str, str]) -> AliasGroup:
    return AliasGroup(name, help=help_text, aliases=aliases)


@click.command("prune")
@click.option(
    "-a",
    "--all",
    "all_images",
    is_flag=True,
    help="Remove all unused images, not just dangling ones.",
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="Provide filter values (until=24h, label=k=v, label!=k).",
)
@click.pass_context
def image_prune_command(
    ctx: click.Context, all_images: bool, force: bool, filters: tuple[str, ...]
) -> None:
    """Remove unused images (untagged ones; with -a every image)."""
    from strata.api import PRUNE_KEYS, parse_image_filters
    from strata.cli.cache import confirm

    parse_image_filters(filters, keys=PRUNE_KEYS)  # a bad filter fails before the prompt
    if not force and not confirm(PRUNE_ALL_WARNING if all_images else PRUNE_DANGLING_WARNING):
        return
    report = client(ctx).prune_images(all=all_images, filters=filters)
    out = sys.stdout
    if report.removed:
        out.write("Deleted Images:\n")
        # docker image prune's own spelling: `untagged: NAME`, `deleted: DIGEST`.
        out.write("".join(f"{r.action}: {r.what}\n" for r in report.removed))
        out.write("\n")
    out.write(f"Total reclaimed space: {human_size(report.reclaimed)}\n")


IMAGES = "strata.cli.images"
image_group = alias_group(
    "image",
    "Manage images (docker image ls, inspect, rm, history, pull, tag, save, load, prune).",
    {
        "build": "strata.cli.build:build",
        "history": "strata.cli.history:history_command",
        "import": f"{IMAGES}:import_command",
        "inspect": f"{IMAGES}:inspect_command",
        "list": f"{IMAGES}:images_command",
        "load": f"{IMAGES}:load_command",
        "ls": f"{IMAGES}:images_command",
        "prune": "strata.cli.docker_aliases:image_prune_command",
        "pull": "strata.cli.registry:pull_command",
        "remove": f"{IMAGES}:rmi_command",
        "rm": f"{IMAGES}:rmi_command",
        "save": f"{IMAGES}:save_command",
        "tag": f"{IMAGES}:tag_command",
    },
)
builder_group = alias_group(
    "builder",
    "Manage builds (docker builder build, prune, du).",
    {
        "build": "strata.cli.build:build",
        "du": "strata.cli.cache:du_command",
        "prune": "strata.cli.cache:prune_command",
    },
)
buildx_group = alias_group(
    "buildx",
    "Docker buildx's spellings (buildx build, du, prune).",
    {
        "b": "strata.cli.build:build",
        "build": "strata.cli.build:build",
        "du": "strata.cli.cache:du_command",
        "prune": "strata.cli.cache:prune_command",
    },
)
system_group = alias_group(
    "system",
    "Docker system's spellings (system df: the build cache's disk usage).",
    {"df": "strata.cli.cache:du_command"},
)

COMMANDS: list[click.Command] = [image_group, builder_group, buildx_group, system_group]
