#!/usr/bin/python3
"""HTTP/1.1 SSE load client for bench/run.sh (Python 3 standard library only, asyncio).

    load.py --port P --mode module|proxy --turns N --concurrency C [--ramp S]
            [--tokens K] [--timeout S] [--host 127.0.0.1]

C workers each take turns one after the other until N turns have been started in all;
worker i starts at i*S/C seconds (--ramp S spreads the start of the first turns, so that
1000 concurrent streams do not arrive as one burst of 1000 SYNs). With N == C every worker
takes exactly one turn: N concurrent streams.

Every turn is a new TCP connection (HTTP/1.1, "Connection: close"), for both modes.
  module  POST /chat  {"message":"Where is my order #W1234567?"}, Accept: text/event-stream.
          First token = the first "event: delta" (the "event: meta" that comes at once does
          not count). Complete = "event: done" and the end of the chunked body.
  proxy   POST /v1/chat/completions with the OpenAI request body (stream:true).
          First token = the first "data:" chunk with a non-empty "content".
          Complete = "data: [DONE]" and the end of the chunked body.
Each complete reply is checked: the deltas put together must be exactly the text of the
mock's tokens=K reply ("tok0 tok1 ... tok<K-1>").

Time to first token is measured from just before connect() (the connect to 127.0.0.1 is
immediate unless the listen queue overflows) to the moment the client has read the first
token. Prints one JSON object on stdout.
"""
import argparse
import asyncio
import json
import re
import resource
import sys
import time

MODULE_BODY = json.dumps({"message": "Where is my order #W1234567?"}).encode()
PROXY_BODY = json.dumps({"model": "bench", "messages": [
    {"role": "user", "content": "Where is my order #W1234567?"}], "stream": True}).encode()

PROXY_CONTENT = re.compile(rb'"content":"[^"]')


class Turn(asyncio.Protocol):
    """One request on one connection: an incremental HTTP/1.1 response + chunked decoder."""

    def __init__(self, mode, request, done):
        self.mode = mode
        self.request = request
        self.done = done                # future: set when the turn ends (either way)
        self.t0 = time.monotonic()
        self.t_first = None
        self.raw = bytearray()          # undecoded input
        self.head = None                # status line + headers, once complete
        self.status = None
        self.chunked = False
        self.body = bytearray()         # decoded body
        self.body_complete = False
        self.scan = 0                   # where the first-token scan resumes in self.body
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        if self.done.done():
            return
        self.raw += data
        if self.head is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = bytes(self.raw[:i])
            del self.raw[:i + 4]
            lines = self.head.split(b"\r\n")
            try:
                self.status = int(lines[0].split()[1])
            except (IndexError, ValueError):
                self.status = -1
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
                    self.chunked = True
        if self.chunked:
            self._dechunk()
        else:
            self.body += self.raw
            self.raw.clear()
        if self.t_first is None and self.status == 200:
            self._first_token()
        if self.body_complete:
            self._finish(None)

    def _dechunk(self):
        raw = self.raw
        pos = 0
        while True:
            j = raw.find(b"\r\n", pos)
            if j < 0:
                break
            try:
                size = int(bytes(raw[pos:j]).split(b";")[0], 16)
            except ValueError:
                self._finish("bad chunk framing")
                return
            if size == 0:
                # last chunk; no trailers expected: "0\r\n\r\n"
                if len(raw) - (j + 2) < 2:
                    break
                self.body_complete = True
                pos = j + 4
                break
            if len(raw) < j + 2 + size + 2:
                break
            self.body += raw[j + 2:j + 2 + size]
            pos = j + 2 + size + 2
        del raw[:pos]

    def _first_token(self):
        if self.mode == "module":
            k = self.body.find(b"event: delta", max(0, self.scan - 16))
        else:
            m = PROXY_CONTENT.search(self.body, max(0, self.scan - 16))
            k = m.start() if m else -1
        self.scan = len(self.body)
        if k >= 0:
            self.t_first = time.monotonic()

    def _ended(self):
        # a body without chunked framing (an error reply with Content-Length, say) ends at EOF
        return self.body_complete or (self.head is not None and not self.chunked)

    def eof_received(self):
        self._finish(None if self._ended() else "connection closed before the end of the reply")

    def connection_lost(self, exc):
        self._finish(None if self._ended() else
                     "connection lost: %s" % (exc or "closed before the end of the reply"))

    def _finish(self, err):
        if self.done.done():
            return
        self.done.set_result(err)
        if self.transport is not None:
            self.transport.close()


def check_reply(mode, status, body, expect):
    """None if the reply is a complete, correct turn; otherwise a short reason."""
    if status != 200:
        return "HTTP %s: %s" % (status, bytes(body[:200]).decode("utf-8", "replace").strip())
    text = []
    if mode == "module":
        end = None
        for block in bytes(body).split(b"\n\n"):
            ev, data = None, None
            for line in block.split(b"\n"):
                if line.startswith(b"event: "):
                    ev = line[7:].decode()
                elif line.startswith(b"data: "):
                    data = line[6:]
            if ev == "delta":
                text.append(json.loads(data)["text"])
            elif ev in ("done", "error"):
                end = (ev, data)
        if end is None:
            return "no done/error event"
        if end[0] == "error":
            return "event: error " + end[1].decode("utf-8", "replace")
    else:
        ended = False
        for line in bytes(body).split(b"\n"):
            if not line.startswith(b"data: "):
                continue
            if line == b"data: [DONE]":
                ended = True
                continue
            o = json.loads(line[6:])
            if "error" in o:
                return "error chunk " + line[6:].decode("utf-8", "replace")
            for c in o.get("choices") or []:
                t = (c.get("delta") or {}).get("content")
                if t:
                    text.append(t)
        if not ended:
            return "no data: [DONE]"
    got = "".join(text)
    if got != expect:
        return "reply text differs (%d chars, expected %d)" % (len(got), len(expect))
    return None


async def main_async(a):
    loop = asyncio.get_running_loop()
    if a.mode == "module":
        path, body, accept = "/chat", MODULE_BODY, "text/event-stream"
    else:
        path, body, accept = "/v1/chat/completions", PROXY_BODY, "text/event-stream"
    request = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
               "Accept: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
               % (path, a.port, accept, len(body))).encode() + body
    expect = " ".join("tok%d" % i for i in range(a.tokens))

    ttft, dur, failures = [], [], []
    started = 0
    inflight = 0
    max_inflight = 0

    async def one():
        nonlocal inflight, max_inflight
        done = loop.create_future()
        proto = Turn(a.mode, request, done)
        inflight += 1
        max_inflight = max(max_inflight, inflight)
        try:
            try:
                await loop.create_connection(lambda: proto, a.host, a.port)
            except OSError as e:
                return "connect: %s" % e
            try:
                err = await asyncio.wait_for(asyncio.shield(done), a.timeout)
            except asyncio.TimeoutError:
                proto._finish("timeout")
                err = "timeout after %gs (%d body bytes)" % (a.timeout, len(proto.body))
            if err is None:
                err = check_reply(a.mode, proto.status, proto.body, expect)
            if err is None:
                if proto.t_first is None:
                    return "complete but no first token seen"
                ttft.append(proto.t_first - proto.t0)
                dur.append(time.monotonic() - proto.t0)
            return err
        finally:
            inflight -= 1

    async def worker(i):
        nonlocal started
        if a.ramp > 0:
            await asyncio.sleep(i * a.ramp / a.concurrency)
        while started < a.turns:
            started += 1
            err = await one()
            if err is not None:
                failures.append(err)

    t0 = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(a.concurrency)))
    wall = time.monotonic() - t0

    def pct(xs, p):
        if not xs:
            return None
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

    reasons = {}
    for f in failures:
        f = re.sub(r'"(c|k)_[0-9a-f]{32}"', '"\\1_..."', f)
        reasons[f] = reasons.get(f, 0) + 1
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "mode": a.mode, "turns": started, "ok": len(ttft), "failed": len(failures),
        "failures": sorted(reasons.items(), key=lambda kv: -kv[1])[:20],
        "wall_s": wall, "turns_per_s": len(ttft) / wall if wall else 0,
        "max_inflight": max_inflight,
        "ttft_p50": pct(ttft, 50), "ttft_p90": pct(ttft, 90), "ttft_p99": pct(ttft, 99),
        "ttft_max": max(ttft) if ttft else None,
        "dur_p50": pct(dur, 50), "dur_p99": pct(dur, 99),
        "client_cpu_s": ru.ru_utime + ru.ru_stime,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("module", "proxy"), required=True)
    p.add_argument("--turns", type=int, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--ramp", type=float, default=0.0)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.concurrency + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    res = asyncio.run(main_async(a))
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
