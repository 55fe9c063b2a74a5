"""``run_server``: check the model source, hand the settings to uvicorn's workers, run uvicorn.

uvicorn's own access log is off (codex writes one without query strings or secrets); SIGTERM
and Ctrl-C stop accepting connections, drain in-flight requests, then exit.
"""

from __future__ import annotations

import copy
import os
import signal

from codex_cli.errors import ServeError
from codex_cli.serving.settings import ServeSettings
from codex_cli.serving.source import ModelSource, select_source

FACTORY = "codex_cli.serving:create_app"


def run_server(settings: ServeSettings) -> ModelSource:
    """Serve until stopped; raises ServeError when the server cannot start."""
    import uvicorn

    from codex_cli.serving.http.guard import STARTUP_FAILURES

    source = select_source(settings)  # fail here, with one line, before uvicorn starts
    os.environ.update(settings.to_env())
    serve = settings.serve
    config = uvicorn.Config(FACTORY, factory=True, host=serve.host, port=serve.port, workers=serve.workers,
                            access_log=False, log_config=_log_config(), lifespan="on",
                            timeout_graceful_shutdown=int(serve.request_timeout_s) + 5)
    if serve.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return source
    server = uvicorn.Server(config)
    # uvicorn re-raises SIGTERM after its graceful shutdown; a drained server exits 0, not killed-by-signal
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C, re-raised the same way once drained
        pass
    except SystemExit:  # uvicorn's exit when the lifespan startup failed; reported below
        if server.started:
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        reason = STARTUP_FAILURES[-1] if STARTUP_FAILURES else f"could not bind {serve.host}:{serve.port} (see above)"
        raise ServeError(f"the server did not start: {reason}")
    return source


def _log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["codex"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
