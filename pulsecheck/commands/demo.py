"""demo: the main job of `make run`."""

from __future__ import annotations

from pathlib import Path

import click

from pulsecheck.commands.common import App, pass_app


@click.command()
@click.option(
    "--dir",
    "workdir",
    default="demo-output",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the throwaway database and outputs go (recreated each run).",
)
@pass_app
def demo(app: App, workdir: str) -> None:
    """Walk the sample portfolio through the product, printing what happens."""
    from pulsecheck.demo.story import DEMO_NOW, run_demo

    run_demo(Path(workdir), app.settings.now_override or DEMO_NOW, click.echo)


COMMANDS = [demo]
