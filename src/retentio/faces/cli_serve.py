"""The ``serve`` command: the web app (:mod:`retentio.faces.web`) under uvicorn — the
team's pages, the REST API under ``/api/v1``, and the public pages a survey's answer
link and an unsubscribe link open. FastAPI and uvicorn are imported when the command
runs, so ``--help`` answers at once."""

from __future__ import annotations

from typing import Annotated

import typer

from retentio.faces.cli import WorkspaceOpt, _workspace, app
from retentio.faces.output import err, escape


@app.command("serve")
def serve(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    host: Annotated[str, typer.Option("--host", help="The address to listen on (0.0.0.0: every interface; "
                                                     "put a TLS-terminating proxy in front)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The TCP port to listen on")] = 8000,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        "--forwarded-allow-ips", help="Addresses of the TLS-terminating proxy in front (comma-separated, or '*'): "
                                      "trust its X-Forwarded-Proto/For, so cookies are Secure over HTTPS and "
                                      "throttling and the audit log see the visitor's address")] = None,
    secure_cookies: Annotated[bool, typer.Option("--secure-cookies", help="Mark cookies Secure even when the "
                                                                          "request does not look like HTTPS")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes (each its own app on "
                                                                         "the same workspace and store)")] = 1,
) -> None:
    """Serve the web app on HOST:PORT until Ctrl-C: the pages (sign in with a user from
    `retentio user add`), the REST API under /api/v1 (API keys from `retentio apikey
    create`; OpenAPI at /api/v1/openapi.json), and the survey answer (/s/TOKEN) and
    unsubscribe (/u/TOKEN) pages — point the workspace's [campaigns] survey_base_url and
    unsubscribe_url at it."""
    import uvicorn

    from retentio.faces.web.app import create_app

    with _workspace(ctx, workspace) as ws:  # the same workspace resolution as every command
        path = ws.path.resolve()
    secure = True if secure_cookies else None
    proxy = {"proxy_headers": forwarded_allow_ips is not None, "forwarded_allow_ips": forwarded_allow_ips}
    web = create_app(path, warm=workers == 1, secure_cookies=secure)  # built here too: a workspace or store that cannot be opened fails now, with its reason
    err.print(f"serving {escape(str(path))} on http://{escape(host)}:{port} (Ctrl-C stops)", highlight=False)
    if workers == 1:
        uvicorn.run(web, host=host, port=port, log_level="info", server_header=False, **proxy)  # type: ignore[arg-type]
        return
    import os

    from retentio.data.settings import ENV_WORKSPACE
    from retentio.faces.web.app import workspace_of
    from retentio.faces.web.asgi import ENV_SECURE

    workspace_of(web).close()  # the workers build their own

    os.environ[ENV_WORKSPACE] = str(path)  # each worker process builds its app from it
    if secure_cookies:
        os.environ[ENV_SECURE] = "1"
    uvicorn.run("retentio.faces.web.asgi:app", factory=True, workers=workers, host=host, port=port,
                log_level="info", server_header=False, **proxy)  # type: ignore[arg-type]


__all__ = ["serve"]
