"""HTTP API: routes parse and serialise; stores and analysis do the work."""
