"""`python -m bench.echo PORT`: the baseline of `bench.ingest`, a bare FastAPI app that parses
the same enqueue body and answers 202 with it, served by uvicorn exactly as ingest is."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/v1/enqueue")
async def echo(request: Request) -> JSONResponse:
    body: Any = await request.json()
    return JSONResponse(body, status_code=202)


@app.get("/readyz")
async def ready() -> dict[str, bool]:
    return {"ready": True}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
    )
