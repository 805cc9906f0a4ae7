"""A model-style API in miniature.

A browser front end on another origin calls it, so it enables CORS with
flask-cors. It runs behind ``examples/gateway.py``, which
mounts it at ``/api/model``: ``ProxyFix`` reads the gateway's
``X-Forwarded-*`` headers, so ``url_for`` and redirects name the gateway's
paths (``/api/model/...``). Only trust those headers when, as here, the app
listens on loopback and the gateway is its only client.

The "model" is a stand-in (a score derived from the bytes' digest): the point
is the serving shape (health, model info, upload in, JSON verdict out), not
the detection.
"""
import hashlib
import os
import time

from flask import Flask, jsonify, request, url_for
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix


class TinyDetector:
    """Stands in for a real model: deterministic, fast, no weights to download."""

    name = "tiny-detector"
    version = "1.0"
    threshold = 0.5

    def __init__(self):
        self.loaded_at = time.time()

    def predict(self, data):
        digest = hashlib.sha256(data).digest()
        score = round(digest[0] / 255.0, 4)
        return {"label": "fake" if score >= self.threshold else "real", "score": score,
                "sha256": digest.hex()}


def create_app():
    app = Flask(__name__)
    CORS(app)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)
    model = TinyDetector()

    @app.get("/health")
    def health():
        return jsonify(status="ok", model=model.name, pid=os.getpid())

    @app.get("/model")
    def model_info():
        return jsonify(name=model.name, version=model.version, threshold=model.threshold,
                       loaded_at=model.loaded_at, detect_url=url_for("detect", _external=True))

    @app.post("/detect")
    def detect():
        """An upload (multipart field ``file``) or the raw request body."""
        # Only a multipart body is a form to parse: reading request.files parses
        # any form body and consumes it, and curl --data-binary sends raw bytes
        # as application/x-www-form-urlencoded unless told otherwise.
        is_multipart = request.mimetype == "multipart/form-data"
        upload = request.files.get("file") if is_multipart else None
        data = upload.read() if upload is not None else request.get_data()
        if not data:
            return jsonify(error="empty input", hint="POST a file (field 'file') or raw "
                           "bytes"), 400
        started = time.perf_counter()
        verdict = model.predict(data)
        verdict.update(bytes=len(data), model=model.name,
                       filename=upload.filename if upload is not None else None,
                       seconds=round(time.perf_counter() - started, 6))
        return jsonify(verdict)

    return app


app = create_app()
