"""A plain WSGI callable, no Flask anywhere."""


def application(environ, start_response):
    body = ("plain wsgi %s" % environ.get("PATH_INFO", "")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
