"""The ancestor's way of hosting: a script that runs the app and answers /health.

``python polled_server.py PORT`` — like the ancestor's ``api_server.py``, it
serves the same hello app (tests/apps/hello.py) with ``app.run`` and has a
``/health`` route that the parent polls. Needs tests/ on PYTHONPATH.
"""
import sys

from apps.hello import app


@app.route("/health")
def health():
    return {"status": "ok"}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), use_reloader=False, threaded=True)
