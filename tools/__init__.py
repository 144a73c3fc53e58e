"""Build and development tools of a geoservice checkout; never installed (not in the wheel).

* :mod:`tools.layers` — builders of the bundled layers (``python -m tools.layers …``; the ``build`` extra).
* :mod:`tools.pgcluster` — a throwaway PostgreSQL + PostGIS cluster for tests and benchmarks.
* :mod:`tools.servers` — ``geoservice serve`` and nginx as child processes for tests and benchmarks.
"""
