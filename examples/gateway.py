"""A main web app in front of a hosted model API.

A front app forwards ``/api/model`` to a Flask process (503 + JSON while it
is not ready) and serves ``/api/health/python`` with its status. Here the
main app is Flask, pyhost hosts the model API
(``examples/model_api.py``) in a supervised child, and Werkzeug's
``DispatcherMiddleware`` mounts the two pyhost WSGI apps::

    /                          the main app
    /api/model/...          host.proxy_app(): forwarded to the model API
    /api/health/python         host.health_app(): {"healthy": ..., **status}
    /api/health/python/metrics Prometheus text (pip install 'pyhost-supervisor[metrics]')

Run it, then try it::

    python examples/gateway.py            # --port 8000 --api-port 5001 --python PATH
    curl localhost:8000/api/health/python
    curl -F file=@README.md localhost:8000/api/model/detect

The main app keeps serving when the model API cannot start or crashes (the
"graceful degradation"): reads it has answered before (GET
/api/model/model) are served from the guard's stale cache, marked with
``X-Pyhost-Stale: 1``; everything else answers 503 with the error's type and
a short message. Output, tracebacks and exception text stay in this
terminal; ``expose_details=True`` would put them into the 503 bodies too.
Server-sent events and other streams are relayed as they arrive.
"""
import argparse
import logging
import os
import sys

from flask import Flask, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__" and os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

import pyhost  # noqa: E402
from pyhost.logs import enable_console_logging  # noqa: E402

MODEL_API = os.path.join(HERE, "model_api.py") + ":app"


def create_model_host(port=5001, python=None, **fields):
    """The model API as an unstarted host; the pre-flight checks what it imports."""
    return pyhost.FlaskHost(MODEL_API, port=port, python=python, name="model-api",
                            requires=("flask", "flask_cors"), health_path="/health", **fields)


def create_gateway(host):
    """The main app with the guard and the health endpoint mounted."""
    app = Flask(__name__)

    @app.get("/")
    def index():
        return jsonify(
            service="gateway",
            model_api=host.status().summary(),
            routes={"/api/model/detect": "POST a file (field 'file') or raw bytes",
                    "/api/model/model": "model info",
                    "/api/health/python": "the model API's status (200 ready, 503 not)",
                    "/api/health/python/metrics": "Prometheus metrics"},
        )

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {
        "/api/model": host.proxy_app(stale_cache=True, max_body_size=20 << 20),
        # Created before start(), so the metrics see the startup probes too.
        "/api/health/python": host.health_app(),
    })
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address of the main app")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")),
                        help="port of the main app (0 picks a free one)")
    parser.add_argument("--api-port", type=int,
                        default=int(os.environ.get("FLASK_PORT", "5001")),
                        help="port of the model API (0 picks a free one)")
    parser.add_argument("--python", default=None,
                        help="interpreter for the model API, e.g. a venv with the ML stack")
    args = parser.parse_args(argv)

    enable_console_logging()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    host = create_model_host(port=args.api_port, python=args.python)
    gateway = create_gateway(host)
    try:
        host.start()
    except pyhost.HostError as exc:
        print("Model API did not start; /api/model answers 503 until it does.\n%s"
              % exc.describe(), file=sys.stderr)
    server = make_server(args.host, args.port, gateway, threaded=True)
    print("Gateway on http://%s:%d (model API: %s)"
          % (args.host, server.port, host.status().summary()), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
