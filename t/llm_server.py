#!/usr/bin/python3
"""Scripted OpenAI-compatible Chat Completions server: the LLM peer of the test suites.

Python 3 standard library only (plus Debian's python3-jsonschema for validation), asyncio,
raw HTTP/1.1 with keep-alive. Run with Debian's /usr/bin/python3.

CLI
    llm_server.py [--host 127.0.0.1] [--port 0] [--port-file PATH] [--record-dir DIR]
                  [--require-key KEY] [--no-validate] [--parent-pid PID] [--quiet]
    Prints "listening on HOST:PORT" (flushed) once it accepts connections; --port-file gets the
    port number (written atomically). --parent-pid: exit when that process goes away.
    SIGTERM / SIGINT exit cleanly (status 0).

Endpoints
    POST /v1/chat/completions, POST /chat/completions          default behaviour
    POST /<scenario>/v1/chat/completions, POST /<scenario>/chat/completions
         <scenario> = comma-separated options, e.g. /fail=429:1,ra=1/v1/chat/completions
    GET  /_requests[?scenario=S][&last=N]   recorded requests, JSON array, oldest first
    DELETE /_requests  (or any method on /_reset)   clear the record and the fail counters
    GET  /_health                            200 "ok"
    anything else                            404 (405 for a non-POST on a chat path), recorded

Request checks, in this order (each answered with the OpenAI error envelope
{"error":{"message","type","param","code"}}):
    unknown scenario option or bad value  400, code "bad_scenario"
    Authorization present but not "Bearer <token>"  401 (always); missing it  401 only
        with --require-key; a token other than KEY  401, code "invalid_api_key"
    body not JSON (or not UTF-8)              400, code null ("We could not parse the JSON body...")
    body not a valid CreateChatCompletionRequest under validate.py --strict (unknown keys
        flagged too)                          400, code "schema_validation_failed", the message
        lists every error ("INVALID at /path: ..." / "UNKNOWN KEY(S) at /path: a, b")
    The validator is <repo>/../shared/tools/validate.py with ../specs/bundles/openai.schema.json
    (override the shared dir with env SA_SHARED_DIR); missing -> warning, no validation.

Reply (deterministic)
    text    "You said: <last user message content>. (messages: <len(messages)>)"
    tokens  split before whitespace: "You", " said:", " hi.", ... (whitespace stays with the
            following word; concatenating the deltas gives the text back exactly)
    usage   prompt_tokens = number of whitespace-separated words in all message contents,
            completion_tokens = number of content tokens (argument fragments for a tool call)
    stream:true -> 200 text/event-stream; charset=utf-8, chunked (close-delimited for HTTP/1.0),
        one event per chunk: {"role":"assistant","content":""}, one {"content": tok} per token,
        {} with finish_reason, then (stream_options.include_usage) {"choices":[],"usage":{..}}
        (all chunks carry "usage":null when include_usage), then "data: [DONE]".
    otherwise -> one chat.completion object (always with usage). id "chatcmpl-<seq>",
        model = the request's model, system_fingerprint "fp_llm_test", header x-request-id.

Scenario options (combine freely; values are URL-decoded after splitting on ","; write a
comma in a value as %2C). "K tokens" counts content deltas after the role chunk; a K at or
beyond the number of tokens fires after the last token.
    first_ms=N        wait N ms before the first byte of any scripted answer (headers too)
    token_ms=N        wait N ms before each token; non-streaming: N ms x tokens before answering
    tokens=N          reply is exactly N tokens "tok0 tok1 ... tok<N-1>" (wins over reply=)
    reply=TEXT        fixed reply text
    unicode           prefix the reply with "Grüße — 日本語 ✓ 🎉 " as 8 extra tokens (raw UTF-8)
    escape_unicode    emit JSON with \\uXXXX escapes (surrogate pairs) instead of raw UTF-8
    finish=R          finish_reason R (stop, length, tool_calls, content_filter)
    tool=NAME         answer with a call of function NAME while the request has fewer than
                      tool_rounds=N (default 1) role:"tool" messages; then the text reply.
                      arguments = args=JSON (URL-encoded) or {"query": <last user content>},
                      streamed as 6-character fragments; id "call_<seq>_<round>"
    fail=STATUS[:N]   requests are counted per scenario string: in each cycle of N+1 the first N
                      get STATUS with an error envelope, the (N+1)th succeeds; no :N = always.
                      429 requests/rate_limit_exceeded, 500 server_error/null,
                      503 server_error/service_unavailable, 400 invalid_request_error/
                      invalid_value, 401 invalid_request_error/invalid_api_key, 404 model_not_found
    code=C            error code of fail= (code=insufficient_quota also sets type)
    ra=SECONDS        fail/html_error answers carry "retry-after: SECONDS"
    ra_ms=N           ... and/or "retry-after-ms: N"
    should_retry=B    ... and "x-should-retry: B"
    html_error=STATUS[:N]  like fail=, but an HTML body (text/html, a proxy's error page)
    hang[=S]          read the request, never answer; close after S seconds (default 120)
    reset_after=K     K tokens, then RST (SO_LINGER 0). Non-streaming: RST instead of an answer
    cut_after=K       K tokens, then close without the terminating chunk (truncated HTTP body).
                      Non-streaming: headers + the first K bytes of the body, then close
    truncate_after=K  K tokens, then a clean end of the HTTP body: no finish chunk, no [DONE]
    badjson_after=K   after K tokens an event 'data: {"choices": [' then the stream goes on as
                      usual. Non-streaming: the body is '{"choices": ['
    error_after=K     after K tokens 'data: {"error":{"message":...,"type":"server_error",
                      "param":null,"code":"internal_error"}}' and a clean end without [DONE]
    drip=N            send every SSE event (non-streaming: the body) in N-byte pieces, each its
                      own HTTP chunk, drip_ms=M (default 2) apart
    nonstream         answer stream:true with a non-streaming chat.completion
    crlf              CRLF line endings in SSE;  nospace  "data:" without the space
    comments          ": OPENROUTER PROCESSING" comment block before every event
    usage_in_choices  the usage chunk has choices [{"index":0,"delta":{"content":""},
                      "finish_reason":null,"logprobs":null}] instead of [] (OpenRouter)
    no_usage          never send the usage chunk (server ignoring stream_options)
    Stream-only options other than those described are ignored for non-streaming answers.

Record (GET /_requests, last 1000 requests, JSON compact, keys in this order):
    {"seq": 1, "time": 1700000000.123, "method": "POST", "path": "/fail=429:1/v1/chat/completions",
     "http_version": "HTTP/1.1", "scenario": "fail=429:1" | "" | null (not a chat path),
     "headers": {"lower-case-name": "value", ...} (repeats joined with ", "),
     "body": <parsed JSON> | "<raw text>" | null, "valid": true|false|null (not validated),
     "errors": ["..."], "status": 200|429|...|null (no answer), "outcome": "...",
     "tokens_sent": 0}
    outcome: "pending" (in progress), "complete", "error" (an error status was sent),
    "client_closed", "reset", "cut", "truncated", "error_after", "hang_timeout".
    --record-dir DIR also writes each request body to DIR/NNNNNN.json (NNNNNN = seq).
"""
import asyncio
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testserver  # noqa: E402
from testserver import ScenarioError  # noqa: E402

MARK = '"\\u0000"'  # how json.dumps writes "\0": a placeholder in pre-rendered chunks
UNICODE_TOKENS = ["Grüße", " —", " 日", "本", "語", " ✓", " 🎉", " "]


def log(msg):
    sys.stderr.write("llm_server: %s\n" % msg)
    sys.stderr.flush()


class Validator(testserver.BundleValidator):
    """One $defs entry of the OpenAI bundle, judged like `validate.py [--strict]`."""

    def __init__(self, defname, strict=True, shared_dir=None):
        super().__init__(defname, "openai", strict, shared_dir)


# ---------------------------------------------------------------- scenarios

INT_OPTS = {"first_ms", "token_ms", "tokens", "reset_after", "truncate_after", "cut_after",
            "badjson_after", "error_after", "drip", "drip_ms", "tool_rounds", "ra_ms"}
FLAG_OPTS = {"nonstream", "crlf", "nospace", "comments", "unicode", "usage_in_choices",
             "no_usage", "escape_unicode"}
STR_OPTS = {"reply", "finish", "tool", "args", "code", "ra", "should_retry"}
FAIL_OPTS = {"fail", "html_error"}
FINISH = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def parse_scenario(raw):
    opts = testserver.parse_table(raw, FLAG_OPTS, INT_OPTS, STR_OPTS, FAIL_OPTS,
                                  "bad scenario option %r (see the docstring of t/llm_server.py)")
    if "finish" in opts and opts["finish"] not in FINISH:
        raise ScenarioError("finish must be one of %s" % sorted(FINISH))
    if "args" in opts:
        try:
            json.loads(opts["args"])
        except ValueError:
            raise ScenarioError("args= is not JSON")
    return opts


def message_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "" if content is None else json.dumps(content)


def tokenize(text):
    return re.findall(r"\s*\S+|\s+$", text)


# ---------------------------------------------------------------- connection

class Conn(testserver.BaseConn):
    """Unbuffered writes (every event leaves at once); streamed bodies in pieces."""
    pause_step = 0.05
    reset_delay = 0.05  # time for the kernel to send what was written before the RST drops it

    def __init__(self, srv, reader, writer):
        super().__init__(srv, reader, writer)
        writer.transport.set_write_buffer_limits(high=0)

    async def pieces(self, data, drip, drip_ms, chunked):
        step = drip or len(data) or 1
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            await self.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if drip:
                await asyncio.sleep(drip_ms / 1000.0)


# ---------------------------------------------------------------- server

class LLMServer(testserver.BaseServer):
    name = "llm_server"

    def __init__(self, args):
        super().__init__(args)
        self.validator = None
        if not args.no_validate:
            try:
                self.validator = Validator("CreateChatCompletionRequest", strict=True)
            except Exception as e:  # missing shared dir or jsonschema
                log("WARNING: request validation disabled: %s: %s" % (type(e).__name__, e))

    async def dispatch(self, conn, req):
        """Answer one request; returns False when the connection must be closed."""
        path, _, query = req.target.partition("?")
        if path == "/_health":
            await conn.simple(req, 200, body=b"ok\n", ctype="text/plain")
            return True
        if path == "/_reset" or (path == "/_requests" and req.method == "DELETE"):
            self.records.clear()
            self.counters.clear()
            await conn.simple(req, 200, {"cleared": True})
            return True
        if path == "/_requests":
            q = urllib.parse.parse_qs(query)
            await conn.simple(req, 200, testserver.last_n(testserver.matching(self.records, q), q))
            return True

        rec = self.record(conn, req, http_version=req.version, scenario=None, headers=req.headers, body=None,
                          valid=None, errors=[], status=None, outcome="pending", tokens_sent=0)
        seq = rec["seq"]
        text = req.body.decode("utf-8", "replace")
        parsed, is_json = None, False
        if req.body:
            try:
                parsed, is_json = json.loads(req.body.decode("utf-8")), True
            except ValueError:
                pass
            rec["body"] = parsed if is_json else text
            if self.args.record_dir:
                with open(os.path.join(self.args.record_dir, "%06d.json" % seq), "wb") as f:
                    f.write(req.body)

        async def fail(status, message, etype="invalid_request_error", code=None, extra=()):
            rec["status"], rec["outcome"] = status, "error"
            self.note("#%d %s %s -> %d %s" % (seq, req.method, req.target, status, message[:200]))
            await conn.simple(req, status, testserver.openai_error(message, etype, code), extra=extra)
            return True

        m = re.fullmatch(r"(?:/([^/]+))?/(?:v1/)?chat/completions/?", path)
        if path in ("/v1/chat/completions", "/chat/completions"):
            scenario = ""
        elif m:
            scenario = m.group(1)
        else:
            return await fail(404, "Unknown request URL: %s %s." % (req.method, path), code="unknown_url")
        rec["scenario"] = scenario
        if req.method != "POST":
            return await fail(405, "Method %s not allowed on %s; use POST." % (req.method, path),
                              code="method_not_allowed")
        try:
            sc = parse_scenario(scenario)
        except (ScenarioError, ValueError) as e:
            return await fail(400, str(e), code="bad_scenario")

        err = testserver.openai_auth(req.headers.get("authorization"), self.args.require_key)
        if err:
            return await fail(401, err[0], code=err[1])

        if not is_json:
            rec["valid"] = False
            rec["errors"] = ["body is not JSON"]
            return await fail(400, testserver.OPENAI_BAD_JSON)
        if self.validator is not None:
            errors = await asyncio.get_running_loop().run_in_executor(self.pool, self.validator.check, parsed)
            rec["valid"], rec["errors"] = not errors, errors
            if errors:
                return await fail(400, "Invalid request (CreateChatCompletionRequest, strict): "
                                  + "; ".join(errors), code="schema_validation_failed")
        return await self.chat(conn, req, rec, scenario, sc, parsed)

    async def chat(self, conn, req, rec, scenario, sc, body):
        seq = rec["seq"]
        if sc.get("first_ms"):
            await asyncio.sleep(sc["first_ms"] / 1000.0)
        if "hang" in sc:
            return await conn.hang(sc["hang"])

        extra = [("x-request-id", "req_%d" % seq)]
        failspec = sc.get("html_error") or sc.get("fail")
        if failspec:
            status, n = failspec
            count = self.count(scenario)
            if n is None or count % (n + 1) < n:
                for opt, header in (("ra", "retry-after"), ("ra_ms", "retry-after-ms"),
                                    ("should_retry", "x-should-retry")):
                    if opt in sc:
                        extra.append((header, str(sc[opt])))
                rec["status"], rec["outcome"] = status, "error"
                self.note("#%d %s -> scripted %d" % (seq, req.target, status))
                if "html_error" in sc:
                    await conn.simple(req, status, body=testserver.html_error(status, "cloudflare"), ctype="text/html",
                                      extra=extra)
                    return True
                msg, etype, code = testserver.openai_scripted(status, "llm_server.py")
                code = sc.get("code", code)
                if code == "insufficient_quota":
                    etype = code
                await conn.simple(req, status, testserver.openai_error(msg, etype, code), extra=extra)
                return True

        # ---- build the reply
        if not isinstance(body, dict):  # only reachable without validation
            body = {}
        msgs = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        last_user = next((message_text(m.get("content")) for m in reversed(msgs) if m.get("role") == "user"), "")
        n_tool = sum(1 for m in msgs if m.get("role") == "tool")
        tool_call = "tool" in sc and n_tool < sc.get("tool_rounds", 1)
        if "tokens" in sc:
            tokens = ["%stok%d" % (" " if i else "", i) for i in range(sc["tokens"])]
        elif "reply" in sc:
            tokens = tokenize(sc["reply"])
        else:
            tokens = tokenize("You said: %s. (messages: %d)" % (last_user, len(msgs)))
        if sc.get("unicode"):
            tokens = UNICODE_TOKENS + tokens
        if tool_call:
            args = sc.get("args") or json.dumps({"query": last_user})
            tokens = [args[i:i + 6] for i in range(0, len(args), 6)]
            call_id = "call_%d_%d" % (seq, n_tool + 1)
        finish = sc.get("finish", "tool_calls" if tool_call else "stop")
        prompt_words = sum(len(message_text(m.get("content")).split()) for m in msgs)
        usage = {"prompt_tokens": prompt_words, "completion_tokens": len(tokens),
                 "total_tokens": prompt_words + len(tokens)}
        model = str(body.get("model", ""))
        cid, created = "chatcmpl-%d" % seq, int(time.time())
        dumps = lambda o: json.dumps(o, ensure_ascii=bool(sc.get("escape_unicode")), separators=(",", ":"))
        drip, drip_ms = sc.get("drip", 0), sc.get("drip_ms", 2)
        stream = body.get("stream") is True and not sc.get("nonstream")

        if not stream:
            if sc.get("token_ms"):
                await asyncio.sleep(sc["token_ms"] * len(tokens) / 1000.0)
            if "reset_after" in sc:
                rec["outcome"] = "reset"
                await conn.reset()
                return False
            message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
            if tool_call:
                message["content"] = None
                message["tool_calls"] = [{"id": call_id, "type": "function",
                                          "function": {"name": sc["tool"], "arguments": "".join(tokens)}}]
            obj = {"id": cid, "object": "chat.completion", "created": created, "model": model,
                   "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                   "usage": usage, "system_fingerprint": "fp_llm_test"}
            data = b'{"choices": [' if "badjson_after" in sc else dumps(obj).encode()
            rec["status"], rec["tokens_sent"] = 200, len(tokens)
            await conn.head(200, "application/json", len(data), req.keep_alive, extra)
            if "cut_after" in sc:
                await conn.pieces(data[:sc["cut_after"]], drip, drip_ms, chunked=False)
                rec["outcome"] = "cut"
                return False
            await conn.pieces(data, drip, drip_ms, chunked=False)
            rec["outcome"] = "complete"
            self.note("#%d %s -> 200 json" % (seq, req.target))
            return True

        # ---- streaming
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage")) and not sc.get("no_usage")
        eol = "\r\n" if sc.get("crlf") else "\n"
        prefix = "data:" if sc.get("nospace") else "data: "
        chunked = req.chunked_ok

        def chunk(delta, finish_reason=None):
            o = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": "fp_llm_test",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
            if include_usage:
                o["usage"] = None
            return o

        async def event(payload):
            s = (": OPENROUTER PROCESSING" + eol + eol) if sc.get("comments") else ""
            s += prefix + (payload if isinstance(payload, str) else dumps(payload)) + eol + eol
            await conn.pieces(s.encode(), drip, drip_ms, chunked)

        async def end():
            if chunked:
                await conn.send(b"0\r\n\r\n")
            return chunked and req.keep_alive

        tmpl_head, _, tmpl_tail = dumps(chunk({"content": "\0"})).rpartition(MARK)
        rec["status"] = 200
        await conn.head(200, "text/event-stream; charset=utf-8", None, req.keep_alive,
                        [("Cache-Control", "no-cache")] + extra, chunked=chunked)
        if tool_call:
            await event(chunk({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": call_id, "type": "function", "function": {"name": sc["tool"], "arguments": ""}}]}))
        else:
            await event(chunk({"role": "assistant", "content": ""}))
        for i in range(len(tokens) + 1):
            at = lambda opt: opt in sc and min(sc[opt], len(tokens)) == i
            if at("badjson_after"):
                await event('{"choices": [')
            if at("reset_after"):
                rec["outcome"] = "reset"
                await conn.reset()
                return False
            if at("cut_after"):
                rec["outcome"] = "cut"
                return False
            if at("truncate_after"):
                rec["outcome"] = "truncated"
                return await end()
            if at("error_after"):
                await event({"error": {"message": "The server had an error while processing your request "
                                       "(scripted mid-stream error).", "type": "server_error",
                                       "param": None, "code": "internal_error"}})
                rec["outcome"] = "error_after"
                return await end()
            if i == len(tokens):
                break
            if sc.get("token_ms"):
                await conn.pause(sc["token_ms"] / 1000.0)
            if conn.gone():
                rec["outcome"] = "client_closed"
                return False
            if tool_call:
                await event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": tokens[i]}}]}))
            else:  # the hot path of benchmarks: render the chunk once, splice each token in
                await event(tmpl_head + dumps(tokens[i]) + tmpl_tail)
            rec["tokens_sent"] = i + 1
        await event(chunk({}, finish))
        if include_usage:
            u = chunk({"content": ""}) if sc.get("usage_in_choices") else chunk({})
            if not sc.get("usage_in_choices"):
                u["choices"] = []
            u["usage"] = usage
            await event(u)
        await event("[DONE]")
        rec["outcome"] = "complete"
        self.note("#%d %s -> 200 stream, %d tokens" % (seq, req.target, len(tokens)))
        return await end()


def main(argv=None):
    return testserver.main(argv, "Scripted OpenAI-compatible Chat Completions test server.", LLMServer, Conn, "llm_server")


if __name__ == "__main__":
    sys.exit(main())
