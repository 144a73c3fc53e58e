"""The walking network: what a pedestrian can use from an OpenStreetMap PBF extract, as a compact graph.

:func:`read_pbf` reads an extract with ``pyrosm`` (a maintained reader), keeps pyrosm's walking network
(footways, paths, pedestrian streets, steps, crossings, sidewalks, residential/service/living_street/unclassified/
tertiary... roads; pyrosm already leaves out motorways, ``access=private`` and ``foot=no``) and additionally drops
trunk roads without a sidewalk. :class:`Network` is the graph: node coordinates and undirected edges with their
length in metres; shortest walks are Dijkstra over a ``scipy.sparse`` CSR matrix, and points snap to the nearest
network node (pyrosm splits ways at every vertex, so a node is within a few metres of the nearest edge) through
a k-d tree in a local planar projection. Each store persists the arrays (:meth:`Network.to_bytes`), so a restart
does not re-read the PBF.
"""
from __future__ import annotations

import dataclasses
import io
import math
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

EARTH_R_M = 6_371_008.8
# Trunk roads a pedestrian may use only where they have a sidewalk (OSM ``sidewalk=*``).
SIDEWALK_YES = {"both", "left", "right", "yes"}
TRUNK = {"trunk", "trunk_link"}
# Ways pyrosm's walking filter keeps that a pedestrian cannot use anyway.
EXCLUDED_HIGHWAYS = {"motorway", "motorway_link", "construction", "proposed", "raceway"}


class NetworkError(ValueError):
    """A PBF that cannot be read or has no walking network; the message names the file."""


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """Nodes (WGS-84 lon/lat) and undirected edges (node indices, length in metres)."""

    lon: np.ndarray
    lat: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    length_m: np.ndarray
    source: str = ""

    @property
    def nodes(self) -> int:
        """Number of nodes."""
        return int(self.lon.size)

    @property
    def edges(self) -> int:
        """Number of (undirected) edges."""
        return int(self.src.size)

    @cached_property
    def _origin(self) -> tuple[float, float]:
        return float(np.mean(self.lon)), float(np.mean(self.lat))

    def project(self, lon: np.ndarray | float, lat: np.ndarray | float) -> np.ndarray:
        """Local equirectangular metres around the network's centre (good to <0.1 % over a city)."""
        lon0, lat0 = self._origin
        x = np.radians(np.asarray(lon, dtype=float) - lon0) * EARTH_R_M * math.cos(math.radians(lat0))
        y = np.radians(np.asarray(lat, dtype=float) - lat0) * EARTH_R_M
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y)])

    @cached_property
    def _tree(self) -> cKDTree:
        return cKDTree(self.project(self.lon, self.lat))

    @cached_property
    def matrix(self) -> csr_matrix:
        """The symmetric CSR matrix of edge lengths (parallel edges: the shortest wins)."""
        n = self.nodes
        # scipy sums duplicate entries, so keep only the shortest of each (src, dst) pair: sort longest first,
        # then the last occurrence of each pair is its shortest.
        order = np.argsort(-self.length_m, kind="stable")
        a = np.concatenate([self.src, self.dst])[np.concatenate([order, order])]
        b = np.concatenate([self.dst, self.src])[np.concatenate([order, order])]
        w = np.concatenate([self.length_m, self.length_m])[np.concatenate([order, order])]
        key = a.astype(np.int64) * n + b
        _, last = np.unique(key[::-1], return_index=True)
        keep = len(key) - 1 - last
        w_keep = np.maximum(w[keep], 0.01)  # a zero-length edge would vanish from a sparse matrix
        return csr_matrix((w_keep, (a[keep], b[keep])), shape=(n, n))

    def snap(self, lon: Sequence[float], lat: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node of each point and its distance in metres."""
        dist, idx = self._tree.query(self.project(np.asarray(lon), np.asarray(lat)))
        return np.asarray(idx, dtype=np.int64), np.asarray(dist, dtype=float)

    def lengths_from(self, sources: Sequence[int], limit_m: float = math.inf) -> np.ndarray:
        """Shortest network metres from the nearest of ``sources`` to every node (inf beyond ``limit_m``)."""
        out = dijkstra(self.matrix, directed=False, indices=list(sources), limit=limit_m, min_only=True)
        return np.asarray(out, dtype=float)

    def to_bytes(self) -> bytes:
        """The arrays as one compressed ``.npz`` blob (what the stores persist)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, lon=self.lon, lat=self.lat, src=self.src, dst=self.dst, length_m=self.length_m,
                            source=np.array(self.source))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Network:
        """The network :meth:`to_bytes` wrote."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return cls(z["lon"], z["lat"], z["src"].astype(np.int32), z["dst"].astype(np.int32),
                       z["length_m"].astype(float), str(z["source"]))


def _keep(edges: Any) -> Any:
    """The edges a pedestrian can use (pyrosm's walking filter, minus trunk roads without sidewalks)."""
    highway = edges["highway"].astype(str)
    sidewalk = edges["sidewalk"].astype(str) if "sidewalk" in edges.columns else highway.map(lambda _: "")
    access = edges["access"].astype(str) if "access" in edges.columns else highway.map(lambda _: "")
    foot = edges["foot"].astype(str) if "foot" in edges.columns else highway.map(lambda _: "")
    keep = ~highway.isin(EXCLUDED_HIGHWAYS) & ~(highway.isin(TRUNK) & ~sidewalk.isin(SIDEWALK_YES))
    keep &= ~access.isin({"private", "no"}) | foot.isin({"yes", "designated", "permissive"})
    keep &= ~foot.isin({"no"})
    return edges[keep]


def read_pbf(path: Path, bbox: tuple[float, float, float, float] | None = None,
             progress: Callable[[str], None] = lambda _: None) -> Network:
    """The walking network of the PBF extract at ``path`` (optionally cut to ``bbox`` W,S,E,N).

    Raises :class:`NetworkError` naming the file when it is missing, not a PBF, truncated, or has no walking ways.
    """
    if not path.is_file():
        raise NetworkError(f"{path}: no such file")
    with path.open("rb") as fh:
        head = fh.read(16)
    # An OSM PBF starts with a 4-byte header length and a BlobHeader whose type is "OSMHeader".
    if head[4:6] != b"\x0a\x09" or head[6:15] != b"OSMHeader":
        raise NetworkError(f"{path}: not an OpenStreetMap PBF file (no OSMHeader block)")
    import pyrosm

    progress(f"reading {path} ({path.stat().st_size / 1e6:.1f} MB)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path), bounding_box=list(bbox) if bbox else None)
            progress("extracting walkable ways")
            got = osm.get_network("walking", nodes=True)
    except Exception as exc:  # pyrosm/protobuf raise many kinds on a damaged file
        raise NetworkError(f"{path}: cannot be read as an OpenStreetMap PBF ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:120] if str(exc) else 'damaged or truncated'})") from exc
    if got is None or got[1] is None or len(got[1]) == 0:
        raise NetworkError(f"{path}: no walkable ways found" + (f" inside bbox {bbox}" if bbox else ""))
    nodes, edges = got
    progress(f"{len(edges)} way segments, {len(nodes)} nodes read; keeping what a pedestrian can use")
    edges = _keep(edges)
    ids = np.asarray(nodes["id"], dtype=np.int64)
    order = np.argsort(ids)
    u = np.asarray(edges["u"], dtype=np.int64)
    v = np.asarray(edges["v"], dtype=np.int64)
    pos_u = np.searchsorted(ids[order], u)
    pos_v = np.searchsorted(ids[order], v)
    pos_u = np.minimum(pos_u, ids.size - 1)
    pos_v = np.minimum(pos_v, ids.size - 1)
    ok = (ids[order][pos_u] == u) & (ids[order][pos_v] == v)
    src_all, dst_all = order[pos_u][ok], order[pos_v][ok]
    length = np.asarray(edges["length"], dtype=float)[ok]
    used = np.unique(np.concatenate([src_all, dst_all]))
    if used.size == 0:
        raise NetworkError(f"{path}: no walkable ways found")
    remap = np.full(ids.size, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    lon = np.asarray(nodes["lon"], dtype=float)[used]
    lat = np.asarray(nodes["lat"], dtype=float)[used]
    network = Network(lon, lat, remap[src_all].astype(np.int32), remap[dst_all].astype(np.int32), length,
                      source=path.name)
    progress(f"kept {network.edges} edges over {network.nodes} nodes")
    return network
