"""CLI commands for linking studies: `mmkg map …`, `mmkg export rdf|qdpx|neo4j-import`."""
from mmkg.server.cli import app, export_app  # noqa: F401
