"""Project commands for the Kedro CLI: `kedro replay <manifest>` (also `diffusion-bridge replay <manifest>`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="diffusion-bridge")
def cli() -> None:
    """Commands of the diffusion-bridge project."""


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the inputs and print the plan without running anything.")
def replay(manifest: Path, dry_run: bool) -> None:
    """Run a recorded run again: same pipelines, parameters and input versions (checked by content hash)."""
    from diffusion_bridge.runs.replay import plan_replay, read_manifest
    from diffusion_bridge.runs.replay import replay as run_again

    if dry_run:
        plan = plan_replay(read_manifest(manifest), Path.cwd())
        click.echo(f"Replay of run {plan.run_id}: {plan.command()} (+ the {len(plan.parameters)} recorded parameter groups)")
        return
    plan, _ = run_again(manifest, Path.cwd())
    click.echo(f"Replayed run {plan.run_id}: {plan.command()}")
