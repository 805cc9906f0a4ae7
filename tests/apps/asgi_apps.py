"""ASGI apps for the backend tests: FastAPI, Starlette and a bare ASGI callable."""
import os

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

fastapi_app = FastAPI()


@fastapi_app.get("/")
def hello():
    return {"hello": "fastapi", "pid": os.getpid()}


async def _starlette_home(request):
    return PlainTextResponse("hello starlette")


starlette_app = Starlette(routes=[Route("/", _starlette_home)])


async def bare(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello asgi"})


async def _slow(request):
    import asyncio

    arrived = request.query_params.get("arrived")
    if arrived:  # tells a test the request is in the app now
        open(arrived, "w").close()
    await asyncio.sleep(1.0)
    return PlainTextResponse("done")


slow_app = Starlette(routes=[Route("/", _starlette_home), Route("/slow", _slow)])
