-- Issue 17 item 3 (walking network): the graph `geoservice network load` read from an OSM PBF extract, kept in the
-- database file itself so a restart does not re-read the PBF. One row at most; graph is the compressed .npz of
-- geoservice.network.Network (node lon/lat, edge endpoints and lengths in metres).
CREATE TABLE walk_network (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    source TEXT NOT NULL,
    loaded_at TEXT NOT NULL,
    nodes INTEGER NOT NULL,
    edges INTEGER NOT NULL,
    graph BLOB NOT NULL
);
