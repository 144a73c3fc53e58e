"""The built analysis grid on disk: built once, then read by every worker and every restart.

Building the Beijing grid at resolution 9 takes ~10 s and leaves a worker ~300 MB heavier than the grid itself
(the overlay's transients stay in the allocator). The grid is therefore written once, to a NumPy archive
(``.npz``, no pickles) in the instance folder, and a worker that needs it — including a freshly recycled one —
reads it in well under a second. The file name carries a fingerprint of everything the grid depends on (the
districts' codes and geometries, the resolution, the demand source and its file, the grid format), so a new
district layer or demand layer gets a new file and an old file is never read for new inputs. Files nobody
reads any more are removed: each read marks its file as used, and writing a new one keeps only the
``KEEP_GRIDS`` most recently used (every resolution and demand source a deployment asks for fits).
"""
from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geoservice.memory import release_freed_memory

LOGGER = logging.getLogger(__name__)

# Bump when build_grid's output changes meaning: old files are then ignored (and replaced).
GRID_FORMAT = 1
KEEP_GRIDS = 8  # grid files kept in a folder, most recently used first (3 resolutions x a few demand sources)
_COLUMNS = ("h3", "adcode", "district", "clipped", "area_m2", "x", "y", "lon", "lat", "demand")


def fingerprint(districts: gpd.GeoDataFrame, resolution: int, demand_key: Any,
                demand_file: Path | None) -> str:
    """A digest of every input of the grid: the same inputs give the same file name, other inputs another."""
    h = hashlib.sha256()
    h.update(json.dumps([GRID_FORMAT, resolution, repr(demand_key)]).encode())
    for code, geom in zip(districts["adcode"], districts.geometry, strict=True):
        h.update(str(code).encode())
        h.update(shapely.to_wkb(geom, output_dimension=2))
    if demand_file is not None and demand_file.is_file():
        stat = demand_file.stat()
        h.update(f"{demand_file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def write(grid: gpd.GeoDataFrame, path: Path) -> None:
    """Write ``grid`` atomically (a temporary file renamed into place): readers never see half a file."""
    arrays: dict[str, np.ndarray] = {c: grid[c].to_numpy(dtype=str if c in ("h3", "adcode") else None)
                                     for c in _COLUMNS}
    wkb = shapely.to_wkb(grid.geometry.to_numpy(), output_dimension=2)
    lengths = np.fromiter((len(b) for b in wkb), dtype=np.int64, count=len(wkb))
    arrays["wkb"] = np.frombuffer(b"".join(wkb), dtype=np.uint8)
    arrays["wkb_offsets"] = np.concatenate([[0], np.cumsum(lengths)])
    arrays["attrs"] = np.array(json.dumps(grid.attrs, ensure_ascii=False))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path, cell_shapes: bool = True) -> gpd.GeoDataFrame:
    """The grid written by :func:`write`, with the same columns, dtypes, order and ``attrs``.

    Without ``cell_shapes`` the pieces' polygons are not decoded and the geometry column is empty (see
    :func:`without_shapes`).
    """
    with np.load(path, allow_pickle=False) as data:
        columns = {c: data[c] for c in _COLUMNS}
        attrs = json.loads(str(data["attrs"]))
        if cell_shapes:
            offsets = data["wkb_offsets"]
            blob = data["wkb"].tobytes()
            geometry = shapely.from_wkb(np.array([blob[a:b] for a, b in itertools.pairwise(offsets)], dtype=object))
            del blob
        else:
            geometry = np.full(len(columns["h3"]), None, dtype=object)
            columns |= _compact(columns["h3"], columns["adcode"])
    frame = pd.DataFrame({c: columns[c] for c in _COLUMNS if c != "demand"})
    grid = gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")
    grid["demand"] = columns["demand"]
    grid.attrs.update(attrs)
    if not cell_shapes:
        grid.attrs["cell_shapes"] = False
    del geometry, columns, frame
    release_freed_memory()
    return grid


def without_shapes(grid: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``grid`` as the web app keeps it: an empty (all-None) geometry column, H3 indexes as 64-bit integers
    (:func:`~geoservice.analysis.grid.cell_strings` reads either form) and district codes as a categorical.

    The service's coverage, gaps, week profile, placement and maps read only the pieces' positions, areas,
    demand and H3 ids. Beijing r9 (224k pieces): the polygons are ~150 MiB, the H3 and district code strings
    ~29 MiB, every other column ~12 MiB; the light form keeps ~15 MiB. Notebooks keep the full grid.
    """
    frame = pd.DataFrame(grid.drop(columns=grid.geometry.name))
    for name, column in _compact(grid["h3"].to_numpy(), grid["adcode"].to_numpy()).items():
        frame[name] = column
    out = gpd.GeoDataFrame(frame, geometry=np.full(len(grid), None, dtype=object), crs=grid.crs)
    out.attrs.update(grid.attrs, cell_shapes=False)
    return out


def _compact(h3_ids: np.ndarray, adcodes: np.ndarray) -> dict[str, Any]:
    return {"h3": np.array([int(c, 16) for c in h3_ids.tolist()], dtype=np.uint64),
            "adcode": pd.Categorical(adcodes.astype(str))}


def load_or_build(folder: Path, key: str, build: Callable[[], gpd.GeoDataFrame],
                  cell_shapes: bool = True) -> gpd.GeoDataFrame:
    """The grid stored under ``key`` in ``folder``, building and storing it first if there is none (the file
    always has the pieces' polygons; ``cell_shapes=False`` returns the grid :func:`without_shapes`).

    A folder that cannot be written (read-only deployment) or a damaged file only costs a rebuild: the grid
    is then built in memory and the reason logged, never raised to the planner.
    """
    path = folder / f"grid-{key}.npz"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a+")  # noqa: SIM115 - held for the block below
    except OSError as exc:
        LOGGER.warning("analysis grid cannot be stored in %s (%s): kept in memory only", folder, exc)
        return shaped(build(), cell_shapes)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers asking at once: one builds, the other reads
        if path.is_file():
            try:
                grid = read(path, cell_shapes)
                os.utime(path)  # used now: the cleanup keeps it
                return grid
            except (OSError, ValueError, KeyError) as exc:
                LOGGER.warning("analysis grid %s is unreadable (%s): building it again", path, exc)
        grid = build()
        try:
            write(grid, path)
        except OSError as exc:
            LOGGER.warning("analysis grid cannot be stored in %s (%s): kept in memory only", folder, exc)
        else:
            remove_stale(folder, keep=path)
        return shaped(grid, cell_shapes)


def shaped(grid: gpd.GeoDataFrame, cell_shapes: bool) -> gpd.GeoDataFrame:
    """``grid`` as asked: unchanged, or :func:`without_shapes` with the freed memory given back."""
    if cell_shapes:
        return grid
    light = without_shapes(grid)
    del grid
    release_freed_memory()
    return light


def remove_stale(folder: Path, keep: Path, kept: int = KEEP_GRIDS) -> list[Path]:
    """Remove the grid files of ``folder`` beyond the ``kept`` most recently used (never ``keep``), with their
    lock files; returns what was removed. A file another process still reads stays readable until it closes it."""
    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    files = sorted((p for p in folder.glob("grid-*.npz") if p != keep), key=used, reverse=True)
    removed = []
    for stale in files[max(kept - 1, 0):]:
        try:
            stale.unlink()
            stale.with_suffix(".lock").unlink(missing_ok=True)
        except OSError as exc:
            LOGGER.warning("old analysis grid %s could not be removed (%s)", stale, exc)
            continue
        removed.append(stale)
    if removed:
        LOGGER.info("removed %d old analysis grid file(s) from %s", len(removed), folder)
    return removed
