-- Issue 17 item 3 (walking network), as embedded/009_walk_network.sql, stored for pgRouting: walk_edges has the
-- columns pgr_dijkstra* expect (id, source, target, cost, reverse_cost; cost in metres, undirected), walk_nodes
-- the vertices with their position. walk_network says where the network came from.
-- pgRouting is created where the server has it (Debian: postgresql-15-pgrouting): the service itself routes on
-- the stored edges in memory, so a server without the package still upgrades and serves.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgrouting') THEN
        CREATE EXTENSION IF NOT EXISTS pgrouting;
    END IF;
END
$$;

CREATE TABLE walk_nodes (
    id integer PRIMARY KEY,
    geom geometry(Point, 4326) NOT NULL
);

CREATE TABLE walk_edges (
    id integer PRIMARY KEY,
    source integer NOT NULL,
    target integer NOT NULL,
    cost double precision NOT NULL,
    reverse_cost double precision NOT NULL
);

CREATE TABLE walk_network (
    one integer PRIMARY KEY CHECK (one = 1),
    source text NOT NULL,
    loaded_at timestamptz NOT NULL,
    nodes integer NOT NULL,
    edges integer NOT NULL
);
