"""The suite's HTTP test clients: Starlette's TestClient, or httpx.AsyncClient over ASGITransport
driven from synchronous tests, so the client is a switch rather than a rewrite of the tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient


class AsyncTransportClient:
    """The subset of TestClient's API the suite uses, served by httpx.AsyncClient on one event loop
    per test: the app runs on the caller's thread instead of a portal thread."""

    def __init__(self, app: FastAPI, base_url: str = "http://testserver") -> None:
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


def make_client(kind: str, app: FastAPI) -> TestClient | AsyncTransportClient:
    return AsyncTransportClient(app) if kind == "httpx" else TestClient(app)
