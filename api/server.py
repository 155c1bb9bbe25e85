"""Run the app under gunicorn (never Flask's development server), with
:class:`api.worker.LuodiWorker`: slow or idle clients cannot starve the others."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from .worker import LuodiWorker


class Server(BaseApplication):
    def __init__(
        self, instance: str, host: str, port: int, workers: int, threads: int = 8, extra: dict | None = None,
        *, access_log: bool = False,
    ):
        self.instance = instance
        self.options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": LuodiWorker,
            # A running request's heartbeat is the time it began or last wrote a part of its
            # answer (api/worker.py): this stops a request that hangs, not one that streams.
            "timeout": 60,
            "keepalive": 5,
            # One line per request on stdout, only when asked: formatting it costs a ping about
            # an eighth of its CPU (docs/performance.md), and the front proxy that
            # docs/operations.md recommends keeps an access log with each request's id anyway.
            "accesslog": "-" if access_log else None,
            # No shared control socket: several servers (tests, instances) may run side by side.
            "control_socket_disable": True,
            **(extra or {}),
        }
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        import os

        from . import create_app

        from .witnessing import start_gathering

        os.environ["LUODI_INSTANCE"] = self.instance
        app = create_app()  # in each worker (gunicorn forks first): so is its gatherer's thread
        start_gathering(app)
        return app
