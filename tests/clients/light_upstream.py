"""A light Ollama-shaped upstream for the 1,000-connection slow-read test (tests/clients/test_slow_clients.py).

fake-ollama serves each connection on a thread of its own: 1,000 slow readers behind Tollgate mean 1,000 upstream
threads formatting JSON at once, which starved a 2-core machine. This one is a single asyncio loop in its own
process: a connection waiting for Tollgate to read costs a coroutine, and the large answers are built once and
then only copied into sockets.

It answers, over HTTP/1.1 with keep-alive (Tollgate pools upstream connections):

- GET /api/tags: one model;
- POST /api/embed: `{"embeddings": [...]}` with one vector of EMBED_DIMS floats per input (Content-Length; ~260
  bytes per input, so 2,000 inputs make ~0.5 MB);
- POST /api/generate: NDJSON, chunked, `options.num_predict` token lines (6 by default) and a final
  `"done": true` line with the token counts, or one JSON object when `"stream": false`;
- anything else: 404.

Each connection writes at most WRITE_CHUNK bytes ahead of what the socket has taken (asyncio's write-buffer
limits), so an answer nobody reads costs this process a few KiB, not its size.

Run: `python light_upstream.py [--listen 127.0.0.1:0]`; prints `light-upstream listening on http://HOST:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

MODEL = "mistral:7b"
EMBED_DIMS = 28
WRITE_CHUNK = 16 * 1024
LINES_PER_CHUNK = 64  # NDJSON lines per HTTP chunk when streaming

_embed_cache: dict[int, bytes] = {}


def embed_body(inputs: int) -> bytes:
    body = _embed_cache.get(inputs)
    if body is None:
        vector = b"[" + b",".join([b"0.0123456"] * EMBED_DIMS) + b"]"
        body = (b'{"model":"' + MODEL.encode() + b'","embeddings":[' + b",".join([vector] * inputs) +
                b'],"total_duration":1000,"load_duration":100,"prompt_eval_count":%d}' % inputs)
        _embed_cache[inputs] = body
    return body


def token_line(i: int) -> bytes:
    return b'{"model":"%s","created_at":"2024-01-01T00:00:00Z","response":"tok%d ","done":false}\n' % (
        MODEL.encode(), i)


def final_line(count: int, prompt_tokens: int = 1) -> bytes:
    return (b'{"model":"%s","created_at":"2024-01-01T00:00:00Z","response":"","done":true,"done_reason":"stop",'
            b'"total_duration":1000,"load_duration":100,"prompt_eval_count":%d,"prompt_eval_duration":10,'
            b'"eval_count":%d,"eval_duration":100}\n' % (MODEL.encode(), prompt_tokens, count))


TAGS = json.dumps({"models": [{
    "name": MODEL, "model": MODEL, "modified_at": "2024-01-01T00:00:00Z", "size": 4109865159,
    "digest": "f974a74358d62a017b37c6f424fcdf2744ca02926c4f952513ddf474b2fa5091",
    "details": {"format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "7.2B",
                "quantization_level": "Q4_0"},
}]}).encode()


def head(status: str, content_type: str, length: int | None) -> bytes:
    framing = b"Content-Length: %d" % length if length is not None else b"Transfer-Encoding: chunked"
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + content_type.encode() + b"\r\n" + framing +
            b"\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n")


async def write_all(writer: asyncio.StreamWriter, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), WRITE_CHUNK):
        writer.write(view[start:start + WRITE_CHUNK])
        await writer.drain()


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0"))
    return await reader.readexactly(length) if length else b""


async def answer(writer: asyncio.StreamWriter, method: str, path: str, body: bytes) -> None:
    path = path.split("?", 1)[0]
    if method == "GET" and path == "/api/tags":
        writer.write(head("200 OK", "application/json; charset=utf-8", len(TAGS)) + TAGS)
        await writer.drain()
        return
    request = {}
    if body:
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
    if method == "POST" and path == "/api/embed":
        inputs = request.get("input", "")
        data = embed_body(len(inputs) if isinstance(inputs, list) else 1)
        writer.write(head("200 OK", "application/json; charset=utf-8", len(data)))
        await write_all(writer, data)
        return
    if method == "POST" and path == "/api/generate":
        count = int((request.get("options") or {}).get("num_predict") or 6)
        if request.get("stream") is False:
            final = json.loads(final_line(count))
            final["response"] = "".join(f"tok{i} " for i in range(count))
            data = json.dumps(final).encode()
            writer.write(head("200 OK", "application/json; charset=utf-8", len(data)) + data)
            await writer.drain()
            return
        writer.write(head("200 OK", "application/x-ndjson", None))
        lines = [token_line(i) for i in range(count)] + [final_line(count)]
        for start in range(0, len(lines), LINES_PER_CHUNK):
            data = b"".join(lines[start:start + LINES_PER_CHUNK])
            writer.write(b"%x\r\n" % len(data) + data + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return
    data = b'{"error":"not found"}'
    writer.write(head("404 Not Found", "application/json", len(data)) + data)
    await writer.drain()


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.transport.set_write_buffer_limits(high=WRITE_CHUNK)
    try:
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the peer closed between requests
            lines = raw.decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await read_body(reader, headers)
            await answer(writer, method, path, body)
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return  # Tollgate closed the connection (a cut slow reader) or sent something this server does not parse
    finally:
        writer.transport.abort()


async def main(host: str, port: int) -> None:
    server = await asyncio.start_server(serve_connection, host, port, backlog=4096, limit=1 << 20)
    bound = server.sockets[0].getsockname()
    print(f"light-upstream listening on http://{bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    asyncio.run(main(host, int(port)))
    sys.exit(0)
