"""A local stand-in for the Gemini REST API (batchEmbedContents, embedContent, generateContent).

Reached through the SDK's base_url option. Embeddings are deterministic hashed character
trigrams (similar texts get similar vectors); generateContent answers a reasons prompt with
reasons built from the track attributes found in it, and a query-reading prompt with
`readings[query]` (an empty reading otherwise). `fail_next` makes the next N calls answer
429; `reading_status` / `reading_delay_s` make query readings fail or come late.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.processes import free_port


def fake_vector(text: str, dim: int) -> list[float]:
    vector = np.zeros(dim)
    padded = f"  {text.lower()}  "
    for i in range(len(padded) - 2):
        bucket = (
            int.from_bytes(hashlib.md5(padded[i : i + 3].encode()).digest()[:4], "little") % dim
        )
        vector[bucket] += 1.0
    return (vector / max(np.linalg.norm(vector), 1e-9)).tolist()


@dataclass
class FakeGemini:
    fail_next: int = 0
    calls: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    reason_override: dict[str, str] | None = None
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)
    reading_status: int = 200
    reading_delay_s: float = 0.0
    port: int = 0
    _server: uvicorn.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: Request) -> JSONResponse:
        body = await request.json()
        path = request.url.path
        self.calls.append((path, body, dict(request.headers)))
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse(
                {
                    "error": {
                        "code": 429,
                        "message": "Resource exhausted",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                },
                status_code=429,
            )
        if path.endswith(":batchEmbedContents"):
            vectors = [
                {
                    "values": fake_vector(
                        " ".join(p.get("text", "") for p in r["content"]["parts"]),
                        r.get("outputDimensionality", 768),
                    )
                }
                for r in body["requests"]
            ]
            return JSONResponse({"embeddings": vectors})
        if path.endswith(":embedContent"):
            text = " ".join(p.get("text", "") for p in body["content"]["parts"])
            return JSONResponse(
                {"embedding": {"values": fake_vector(text, body.get("outputDimensionality", 768))}}
            )
        if path.endswith(":generateContent"):
            prompt = body["contents"][0]["parts"][0]["text"]
            if prompt.startswith("Read this music search query"):
                return await self._read(prompt, body)
            return JSONResponse(self._generate(body))
        return JSONResponse({"error": {"code": 404, "message": "not found"}}, status_code=404)

    async def _read(self, prompt: str, body: dict[str, Any]) -> JSONResponse:
        await asyncio.sleep(self.reading_delay_s)
        if self.reading_status != 200:
            error = {"code": self.reading_status, "message": "unavailable", "status": "UNAVAILABLE"}
            return JSONResponse({"error": error}, status_code=self.reading_status)
        assert body["generationConfig"]["responseJsonSchema"]["type"] == "object"
        query = json.loads(re.search(r"Query: (.*)$", prompt).group(1))
        return JSONResponse(_answer(json.dumps(self.readings.get(query, {}))))

    def _generate(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["contents"][0]["parts"][0]["text"]
        tracks = json.loads(re.search(r"Tracks: (\[.*\])\n", prompt).group(1))
        reasons = [
            {
                "track_id": t["track_id"],
                "reason": (self.reason_override or {}).get(
                    t["track_id"], f"A {t['subgenre']} track by {t['artist']}."
                ),
            }
            for t in tracks
        ]
        return _answer(json.dumps({"reasons": reasons}))

    def start(self) -> FakeGemini:
        self.port = free_port()
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        while not self._server.started:
            threading.Event().wait(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def _answer(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ]
    }
