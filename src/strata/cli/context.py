"""The `strata.Client` a command runs over: one per invocation, made from the global
options on first use and closed when the command ends."""

from __future__ import annotations

import click

from strata.api import Client


def client(ctx: click.Context) -> Client:
    """The invocation's client (`--root`, else the default state root)."""
    top = ctx.find_root()
    made = top.obj.get("client")
    if isinstance(made, Client):
        return made
    made = Client(
        top.obj.get("root"),
        config=top.obj.get("config"),
        snapshotter=top.obj.get("snapshotter", "auto"),
    )
    top.obj["client"] = made
    top.call_on_close(made.close)
    return made
