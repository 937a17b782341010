"""CLI command `mmkg serve`: the HTTP API and the network views (FastAPI + uvicorn)."""
from __future__ import annotations

from pathlib import Path

import typer

from mmkg.cli.app import DelayedProgress, Neo4jOption, StoreOption, app, open_kg, show


def store_is_empty(store: Path | None, neo4j: str | None) -> bool:
    """True when the store holds no study (an embedded store that does not exist yet counts as empty)."""
    from mmkg.config import Settings
    from mmkg.store.embedded import store_exists

    if not neo4j and not store_exists(Path(store) if store is not None else Settings().store):
        return True
    with open_kg(store, neo4j, read_only=True) as kg:
        return not kg.study_ids()


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 = every one)."),
          port: int = typer.Option(8000, "--port", help="TCP port."),
          store: Path | None = StoreOption, neo4j: str | None = Neo4jOption) -> None:
    """Serve the API (/docs) and the network views (/) — on an empty store, load the shipped study first."""
    import uvicorn

    from mmkg.config import Settings
    from mmkg.server.app import create_app

    listener = port_listener(host, port)  # taken and held before loading anything or saying "Serving on"
    if store_is_empty(store, neo4j):
        with open_kg(store, neo4j) as kg, DelayedProgress("loading the founding study", delay_s=0.0) as progress:
            show("The store is empty: loading the shipped founding study first …")
            report = kg.load(progress=progress)
        show(f"Loaded '{report.study_id}' ({report.codings:,} codings) in {report.seconds:.1f} s")
        if report.provenance:
            show((f"Provenance: {report.provenance}", "dim"))
    settings = Settings(store=store) if store is not None else Settings()
    show(f"Serving on http://{host}:{port}/ (API documentation: http://{host}:{port}/docs)")
    config = uvicorn.Config(create_app(settings, neo4j_uri=neo4j, listen_host=host), host=host, port=port,
                            log_level="warning", workers=1)
    uvicorn.Server(config).run(sockets=[listener])


def port_listener(host: str, port: int):
    """A socket bound to host:port and listening, or a `ConfigError` saying the port is taken."""
    import socket

    from mmkg.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        listener.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another server using the "
                          "port? choose another with --port)") from None
    return listener
