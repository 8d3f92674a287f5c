#!/usr/bin/python3
"""Self-test of t/llm_server.py: starts it (as the suites do, via its CLI), drives every scenario
option over raw sockets, and validates everything it emits against the OpenAI schema.

    /usr/bin/python3 t/llm_server_selftest.py [-v]     exit 0 = all passed
"""
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no t/__pycache__ in the work tree
import llm_server  # noqa: E402
import selftest_util  # noqa: E402
from selftest_util import read_response  # noqa: E402

SERVER = os.path.join(HERE, "llm_server.py")
PORT = None
PROC = None
TMP = tempfile.mkdtemp(prefix="llm-selftest-")
V = {}


def validator(defname):
    if defname not in V:
        V[defname] = llm_server.Validator(defname, strict=True)
    return V[defname]


def start(*extra):
    return selftest_util.start(SERVER, TMP, *extra)


def setUpModule():
    global PROC, PORT
    PROC, PORT = start("--record-dir", os.path.join(TMP, "rec"))


def tearDownModule():
    selftest_util.stop(PROC)


REQ = {"model": "gpt-test", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "hi there"}]}


def body(stream=True, usage=True, **kw):
    b = dict(REQ, **kw)
    if stream:
        b["stream"] = True
        if usage:
            b["stream_options"] = {"include_usage": True}
    return b


def request(path, obj=None, port=None, **kw):
    return selftest_util.json_request(port or PORT, path, obj, **kw)


def events(r):
    """The data payloads of an SSE body, parsed by validate.py's own SSE reader."""
    return list(validator("CreateChatCompletionStreamResponse").mod.sse_events(r.body.decode("utf-8")))


def post(scn="", obj=None, **kw):
    path = ("/%s/v1/chat/completions" % scn) if scn else "/v1/chat/completions"
    return request(path, obj if obj is not None else body(), **kw)


def records(query=""):
    r = request("/_requests" + query, method="GET")
    assert r.status == 200
    return json.loads(r.body)


class T(unittest.TestCase):
    def check_stream(self, r, done=True, finish="stop"):
        """Validate a stream; return (text, parsed chunks)."""
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/event-stream; charset=utf-8")
        evs = events(r)
        if done:
            self.assertEqual(evs[-1], "[DONE]")
            evs = evs[:-1]
        else:
            self.assertNotIn("[DONE]", evs)
        chunks = [json.loads(e) for e in evs]
        for c in chunks:
            if "error" not in c:
                self.assertEqual(validator("CreateChatCompletionStreamResponse").check(c), [], c)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
        if chunks and chunks[0].get("choices"):
            self.assertEqual(chunks[0]["choices"][0]["delta"].get("role"), "assistant")
        if done:
            fin = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
            self.assertEqual(len(fin), 1)
            self.assertEqual(fin[0]["choices"][0]["finish_reason"], finish)
            self.assertEqual(fin[0]["choices"][0]["delta"], {})
        return text, chunks

    def check_json(self, r):
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        o = json.loads(r.body)
        self.assertEqual(validator("CreateChatCompletionResponse").check(o), [], o)
        return o

    def check_error(self, r, status, etype=None, code=None):
        self.assertEqual(r.status, status, r.body)
        o = json.loads(r.body)
        self.assertEqual(validator("ErrorResponse").check(o), [])
        if etype:
            self.assertEqual(o["error"]["type"], etype)
        if code:
            self.assertEqual(o["error"]["code"], code)
        return o

    # ---- basics
    def test_health_and_404_405(self):
        self.assertEqual(request("/_health", method="GET").status, 200)
        self.check_error(request("/nope", body()), 404)
        self.check_error(request("/v1/chat/completions", method="GET"), 405)

    def test_default_stream(self):
        text, chunks = self.check_stream(post())
        self.assertEqual(text, "You said: hi there. (messages: 2)")
        self.assertEqual([c["choices"][0]["delta"].get("content") for c in chunks[1:5]],
                         ["You", " said:", " hi", " there."])
        self.assertTrue(all("usage" in c for c in chunks))
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"], {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10})
        self.assertEqual(len({c["id"] for c in chunks}), 1)

    def test_stream_without_usage_and_paths(self):
        for path in ("/chat/completions", "/x=/chat/completions", "/crlf/v1/chat/completions"):
            r = request(path, body(usage=False))
            self.assertEqual(r.status, 400 if path.startswith("/x=") else 200, path)
        text, chunks = self.check_stream(request("/chat/completions", body(usage=False)))
        self.assertTrue(all("usage" not in c for c in chunks))
        self.assertTrue(chunks[-1]["choices"][0]["finish_reason"])

    def test_nonstream(self):
        o = self.check_json(post(obj=body(stream=False)))
        self.assertEqual(o["choices"][0]["message"]["content"], "You said: hi there. (messages: 2)")
        self.assertEqual(o["model"], "gpt-test")
        self.assertEqual(o["usage"]["completion_tokens"], 6)
        o = self.check_json(post("nonstream"))
        self.assertEqual(o["object"], "chat.completion")

    # ---- request checks
    def test_invalid_requests(self):
        o = self.check_error(post(obj=dict(REQ, bogus=1)), 400, "invalid_request_error", "schema_validation_failed")
        self.assertIn("bogus", o["error"]["message"])
        self.check_error(post(obj={"model": "m", "messages": []}), 400)
        self.check_error(post(raw=b"{not json"), 400, "invalid_request_error")
        self.check_error(post("nosuchopt"), 400, code="bad_scenario")
        self.check_error(post("tokens=abc"), 400, code="bad_scenario")
        self.check_error(post(headers={"Authorization": "Basic Zm9v"}), 401)
        recs = records("?last=6")
        self.assertEqual([r["valid"] for r in recs[:3]], [False, False, False])
        self.assertTrue(any("bogus" in e for e in recs[0]["errors"]))
        self.assertEqual(recs[2]["body"], "{not json")

    def test_require_key(self):
        proc, port = start("--require-key", "sk-test")
        try:
            self.check_error(post(port=port), 401)
            self.check_error(post(port=port, headers={"Authorization": "Bearer wrong"}), 401, code="invalid_api_key")
            self.check_stream(post(port=port, headers={"Authorization": "Bearer sk-test"}))
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(5), 0)

    # ---- reply shaping
    def test_tokens_reply_unicode(self):
        text, chunks = self.check_stream(post("tokens=64"))
        self.assertEqual(len(chunks), 64 + 3)
        self.assertEqual(text, " ".join("tok%d" % i for i in range(64)))
        text, _ = self.check_stream(post("reply=Hello%2C%20world%21%20Bye"))
        self.assertEqual(text, "Hello, world! Bye")
        r = post("unicode")
        self.assertIn("日本語".encode()[:3], r.body)
        text, _ = self.check_stream(r)
        self.assertEqual(text, "Grüße — 日本語 ✓ 🎉 You said: hi there. (messages: 2)")
        r = post("unicode,escape_unicode")
        self.assertTrue(all(b < 128 for b in r.body))
        self.assertIn(b"\\ud83c\\udf89", r.body)
        self.assertEqual(self.check_stream(r)[0], text)
        o = self.check_json(post("unicode", body(stream=False)))
        self.assertEqual(o["choices"][0]["message"]["content"], text)

    def test_finish_length(self):
        self.check_stream(post("finish=length"), finish="length")
        o = self.check_json(post("finish=length", body(stream=False)))
        self.assertEqual(o["choices"][0]["finish_reason"], "length")

    def test_usage_variants(self):
        _, chunks = self.check_stream(post("usage_in_choices"))
        self.assertEqual(len(chunks[-1]["choices"]), 1)
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 6)
        _, chunks = self.check_stream(post("no_usage"))
        self.assertTrue(all(c.get("usage") is None for c in chunks))

    def test_tool_calls(self):
        b = body(tools=[{"type": "function", "function": {"name": "search_docs", "parameters": {"type": "object"}}}])
        _, chunks = self.check_stream(post("tool=search_docs", b), finish="tool_calls")
        first = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
        self.assertEqual(first["function"]["name"], "search_docs")
        args = "".join(c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                       for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls"))
        self.assertEqual(json.loads(args), {"query": "hi there"})
        b2 = dict(b, messages=b["messages"] + [
            {"role": "assistant", "content": None, "tool_calls": [{"id": first["id"], "type": "function",
                                                                 "function": {"name": "search_docs", "arguments": args}}]},
            {"role": "tool", "tool_call_id": first["id"], "content": "[1] 30 days"}])
        text, _ = self.check_stream(post("tool=search_docs", b2))
        self.assertEqual(text, "You said: hi there. (messages: 4)")
        o = self.check_json(post("tool=search_docs,args=%7B%22q%22%3A1%7D", dict(b, stream=False)))
        self.assertEqual(o["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], '{"q":1}')
        self.assertEqual(o["choices"][0]["finish_reason"], "tool_calls")

    # ---- timing
    def test_first_ms_token_ms(self):
        t = time.monotonic()
        self.check_stream(post("first_ms=300"))
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        t = time.monotonic()
        self.check_stream(post("token_ms=50"))  # 6 tokens
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        t = time.monotonic()
        self.check_json(post("token_ms=50", body(stream=False)))
        self.assertGreaterEqual(time.monotonic() - t, 0.3)

    # ---- faults
    def test_fail_cycle(self):
        scn = "fail=429:2,ra=1,ra_ms=1500,should_retry=true"
        got = []
        for _ in range(6):
            r = post(scn)
            got.append(r.status)
            if r.status == 429:
                self.check_error(r, 429, "requests", "rate_limit_exceeded")
                self.assertEqual((r.headers["retry-after"], r.headers["retry-after-ms"]), ("1", "1500"))
                self.assertEqual(r.headers["x-should-retry"], "true")
            else:
                self.check_stream(r)
        self.assertEqual(got, [429, 429, 200, 429, 429, 200])
        for status, etype in ((500, "server_error"), (503, "server_error"), (400, "invalid_request_error"),
                              (401, "invalid_request_error")):
            self.check_error(post("fail=%d:1" % status), status, etype)
            self.assertEqual(post("fail=%d:1" % status).status, 200)
        for _ in range(3):
            self.check_error(post("fail=500"), 500, "server_error")
        self.check_error(post("fail=429,code=insufficient_quota"), 429, "insufficient_quota", "insufficient_quota")
        self.assertEqual(len(records("?scenario=" + scn)), 6)
        request("/_requests", method="DELETE")
        self.assertEqual(records(), [])
        self.assertEqual(post(scn).status, 429)  # counters were reset

    def test_html_error(self):
        r = post("html_error=502,ra=2")
        self.assertEqual(r.status, 502)
        self.assertTrue(r.headers["content-type"].startswith("text/html"))
        self.assertIn(b"<h1>502 Bad Gateway</h1>", r.body)
        self.assertEqual(r.headers["retry-after"], "2")
        self.assertEqual([post("html_error=503:1").status for _ in range(2)], [503, 200])

    def test_reset_after(self):
        r = post("reset_after=2")
        self.assertTrue(r.reset)
        self.assertIn(b'" said:"', r.body)
        self.assertEqual(records("?last=1")[0]["outcome"], "reset")
        r = post("reset_after=0", body(stream=False))
        self.assertTrue(r.reset or r.status is None)

    def test_truncate_cut(self):
        r = post("truncate_after=2", keep=True)
        self.assertTrue(r.complete)
        text, chunks = self.check_stream(r, done=False)
        self.assertEqual(text, "You said:")
        self.assertTrue(all(c["choices"][0]["finish_reason"] is None for c in chunks))
        r2 = post(sock=r.sock, keep=True)  # connection is still usable
        self.check_stream(r2)
        r.sock.close()
        r = post("cut_after=3")
        self.assertFalse(r.complete)
        self.assertFalse(r.reset)
        self.assertEqual(self.check_stream(r, done=False)[0], "You said: hi")
        r = post("cut_after=10", body(stream=False))
        self.assertEqual((r.complete, len(r.body)), (False, 10))

    def test_badjson_error_after(self):
        r = post("badjson_after=1")
        evs = events(r)
        self.assertIn('{"choices": [', evs)
        self.assertEqual(evs.index('{"choices": ['), 2)
        self.assertEqual(evs[-1], "[DONE]")
        self.assertRaises(ValueError, json.loads, post("badjson_after=0", body(stream=False)).body)
        r = post("error_after=1", keep=True)
        self.assertTrue(r.complete)
        evs = events(r)
        self.assertNotIn("[DONE]", evs)
        err = json.loads(evs[-1])
        self.assertEqual(validator("ErrorResponse").check(err), [])
        self.assertEqual(err["error"]["code"], "internal_error")
        self.assertEqual(self.check_stream(r, done=False)[0], "You")
        r.sock.close()

    def test_hang(self):
        t = time.monotonic()
        r = post("hang=1")
        self.assertIsNone(r.status)
        self.assertGreaterEqual(time.monotonic() - t, 0.9)
        s = socket.create_connection(("127.0.0.1", PORT))
        data = json.dumps(body()).encode()
        s.sendall(b"POST /hang/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        time.sleep(0.3)
        s.close()
        time.sleep(0.3)
        rec = [x for x in records() if x["scenario"] == "hang"][-1]
        self.assertEqual((rec["status"], rec["outcome"]), (None, "client_closed"))

    def test_client_disconnect_midstream(self):
        s = socket.create_connection(("127.0.0.1", PORT))
        data = json.dumps(body()).encode()
        s.sendall(b"POST /tokens=50,token_ms=20/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(data), data))
        s.recv(100)
        s.close()
        time.sleep(0.3)
        rec = records("?scenario=tokens=50,token_ms=20&last=1")[0]
        self.assertEqual(rec["outcome"], "client_closed")
        self.assertLess(rec["tokens_sent"], 50)

    def test_drip(self):
        r = post("drip=3,unicode")
        self.assertTrue(all(len(c) <= 3 for c in r.raw_chunks))
        self.assertGreater(len(r.raw_chunks), 100)
        text, _ = self.check_stream(r)
        self.assertTrue(text.startswith("Grüße"))
        r = post("drip=50", body(stream=False))
        self.check_json(r)

    def test_sse_syntax_variants(self):
        r = post("crlf,nospace,comments")
        self.assertIn(b"data:{", r.body)
        self.assertIn(b"\r\n\r\n", r.body)
        self.assertNotIn(b"}\n", r.body)
        self.assertIn(b": OPENROUTER PROCESSING\r\n", r.body)
        self.assertEqual(self.check_stream(r)[0], "You said: hi there. (messages: 2)")

    # ---- HTTP
    def test_keepalive_http10_chunked_request(self):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        for _ in range(3):
            r = post(sock=s, keep=True)
            self.assertEqual(r.headers["connection"], "keep-alive")
            self.check_stream(r)
        s.close()
        r = request("/v1/chat/completions", body(), version="HTTP/1.0")
        self.assertNotIn("transfer-encoding", r.headers)
        self.check_stream(r)
        data = json.dumps(body()).encode()
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        f = s.makefile("rb")
        self.assertIn(b"100", f.readline())
        f.readline()
        s.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, data[:10], len(data) - 10, data[10:]))
        self.check_stream(read_response(f))
        s.close()

    def test_records(self):
        request("/_requests", method="DELETE")
        post("reply=x", headers={"Authorization": "Bearer abc", "X-Custom": "1"})
        rec = records()[-1]
        self.assertEqual(list(rec), ["seq", "time", "method", "path", "http_version", "scenario", "headers",
                                     "body", "valid", "errors", "status", "outcome", "tokens_sent"])
        self.assertEqual(rec["scenario"], "reply=x")
        self.assertEqual(rec["headers"]["authorization"], "Bearer abc")
        self.assertEqual(rec["headers"]["x-custom"], "1")
        self.assertEqual((rec["valid"], rec["status"], rec["outcome"], rec["tokens_sent"]), (True, 200, "complete", 1))
        self.assertEqual(rec["body"], body())
        path = os.path.join(TMP, "rec", "%06d.json" % rec["seq"])
        self.assertEqual(json.load(open(path)), body())
        post("tokens=2")
        self.assertEqual(len(records("?last=1")), 1)
        self.assertEqual(records("?scenario=reply%3Dx")[0]["seq"], rec["seq"])

    def test_concurrency(self):
        async def one(i):
            data = json.dumps(body()).encode()
            out = await selftest_util.async_exchange(PORT, (
                b"POST /tokens=10,token_ms=30/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)))
            return out.count(b"data: [DONE]")

        async def many():
            return await asyncio.gather(*(one(i) for i in range(300)))
        t = time.monotonic()
        self.assertEqual(sum(asyncio.run(many())), 300)
        self.assertLess(time.monotonic() - t, 10)


if __name__ == "__main__":
    verbosity = 2 if "-v" in sys.argv else 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("llm_server_selftest: %d passed, %d failed" % (res.testsRun - failed, failed))
    sys.exit(0 if res.wasSuccessful() else 1)
