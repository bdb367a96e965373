"""The reference for bench/callback_api.py: the least a callback intake must do, written plainly.

    python bench/naive_intake.py --port 8099 --redis redis://127.0.0.1:6379/0

aiohttp + redis-py: parse the JSON, validate the number with phonenumbers, write the record
and its index in one transaction, answer 201 with the id. No auth, no rate limits, no window,
no merge, no customer card, no middleware: what ours does beyond this is what it costs.
Not part of the app; bench/callback_api.py starts it as its own process.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import phonenumbers
import redis.asyncio as aioredis
from aiohttp import web

INDEX = "naive:index"


def make_app(redis_url: str) -> web.Application:
    app = web.Application()
    redis = aioredis.from_url(redis_url)

    async def create(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            number = phonenumbers.parse(body["number"], None)
        except (ValueError, KeyError, TypeError, phonenumbers.NumberParseException):
            return web.json_response({"error": "bad request"}, status=400)
        if not phonenumbers.is_valid_number(number):
            return web.json_response({"error": "invalid number"}, status=422)
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        record_id, now = uuid.uuid4().hex, time.time()
        record = {"id": record_id, "number": e164, "name": body.get("name", ""),
                  "topic": body.get("topic", ""), "created_at": now, "status": "pending"}
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(f"naive:record:{record_id}", json.dumps(record))
            pipe.zadd(INDEX, {record_id: now})
            await pipe.execute()
        return web.json_response({"id": record_id, "status": "pending"}, status=201)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def close(app: web.Application) -> None:
        await redis.aclose()

    app.router.add_post("/api/callbacks", create)
    app.router.add_get("/healthz", health)
    app.on_cleanup.append(close)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    web.run_app(make_app(args.redis), host="127.0.0.1", port=args.port, access_log=None,
                print=None)
