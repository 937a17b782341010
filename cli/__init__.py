"""The `mmkg` command line, a thin adapter over `mmkg.api.Mmkg` (entry point: `mmkg.cli.main:main`)."""
