"""The `mmkg` command line and the HTTP API with its network views."""
