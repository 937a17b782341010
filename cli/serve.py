"""CLI command `mmkg serve`: the HTTP API and the network views (FastAPI + uvicorn)."""
from __future__ import annotations

import os
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


WORKER_HOST_ENV = "MMKG_SERVE_HOST"  # the listening address, handed to `worker_app` in each worker process


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 = every one)."),
          port: int = typer.Option(8000, "--port", help="TCP port."),
          workers: int = typer.Option(1, "--workers", min=1, max=64,
                                      help="Server processes sharing the port, each with the store open for reading: "
                                           "a query holds one core, so more processes answer more requests at once "
                                           "on more cores."),
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
    show(f"Serving on http://{host}:{port}/ (API documentation: http://{host}:{port}/docs)"
         + (f" with {workers} worker processes" if workers > 1 else ""))
    if workers == 1:
        config = uvicorn.Config(create_app(settings, neo4j_uri=neo4j, listen_host=host), host=host, port=port,
                                log_level="warning", workers=1)
        uvicorn.Server(config).run(sockets=[listener])
        return
    import inspect

    from uvicorn.supervisors import Multiprocess

    # each worker is a new interpreter (uvicorn spawns them) that builds its app from the environment
    os.environ.update({WORKER_HOST_ENV: host, "MMKG_STORE": str(settings.store)})
    if neo4j:
        os.environ["NEO4J_URI"] = neo4j
    config = uvicorn.Config("mmkg.cli.serve:worker_app", factory=True, host=host, port=port, log_level="warning",
                            workers=workers)
    extra = {"target": uvicorn.Server(config).run} if "target" in inspect.signature(Multiprocess).parameters else {}
    Multiprocess(config, sockets=[listener], **extra).run()


def worker_app():
    """The app of one `mmkg serve --workers N` process: the store, Neo4j URI and listening address `serve` put in
    the environment before starting the workers."""
    from mmkg.config import Settings
    from mmkg.server.app import create_app

    return create_app(Settings(), neo4j_uri=os.environ.get("NEO4J_URI") or None,
                      listen_host=os.environ[WORKER_HOST_ENV])


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
