-- Issue 17 item 3 (walking network), as embedded/009_walk_network.sql, stored for pgRouting: walk_edges has the
-- columns pgr_dijkstra* expect (id, source, target, cost, reverse_cost; cost in metres, undirected), walk_nodes
-- the vertices with their position. walk_network says where the network came from.
CREATE EXTENSION IF NOT EXISTS pgrouting;

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
