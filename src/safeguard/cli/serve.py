"""``safeguard serve``: the review web app (docs/review.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeguard.cli.common import err, get_settings
from safeguard.errors import SafeguardError


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on. Keep it on loopback unless "
                                            "the app is served over TLS.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM); with --key, the "
                                                   "app is served over HTTPS.")] = None,
    key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """Serve the review app: queue, safe-view, grading, overview (docs/review.md)."""
    import uvicorn

    from safeguard.web.app import create_app

    if (cert is None) != (key is None):
        raise SafeguardError("give both --cert and --key, or neither")
    for path in (cert, key):
        if path is not None and not path.is_file():
            raise SafeguardError(f"no such file: {path}")
    scheme = "https" if cert else "http"
    err.print(f"Safeguard review app on {scheme}://{host}:{port}/", markup=False)
    # the app reads X-Forwarded-For itself, from [review] trusted_proxies only (uvicorn's
    # default would believe it from any local process)
    uvicorn.run(create_app(get_settings()), host=host, port=port, log_level="warning",
                ssl_certfile=str(cert) if cert else None, ssl_keyfile=str(key) if key else None,
                server_header=False, date_header=False, proxy_headers=False)
