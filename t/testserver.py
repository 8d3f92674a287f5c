"""What the test servers (llm_server.py, kb_server.py, helpdesk_server.py, shop_server.py) share:
the command line, the asyncio listener with its port file, a clean stop on SIGTERM/SIGINT or when
the parent goes away, reading HTTP/1.1 requests and writing the answers (BaseConn), the state of
a recording server (BaseServer), and the helpers of their scenarios, control endpoints, schema
bundles and OpenAI-shaped errors.

    testserver.main(argv, description, make_server, make_conn, name)
    testserver.run(args, srv, make_conn, name)   (args from testserver.parser(), plus a server's own)

make_server(args) returns the server object (with a .pool executor, shut down at exit);
make_conn(srv, reader, writer) returns an object whose run() coroutine serves a connection
(BaseConn, or a subclass).
"""
import argparse
import asyncio
import collections
import concurrent.futures
import html
import http
import importlib.util
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(name, msg):
    sys.stderr.write("%s: %s\n" % (name, msg))
    sys.stderr.flush()


class PeerGone(Exception):
    pass


# ---------------------------------------------------------------- HTTP and JSON

def phrase(status):
    """The reason phrase of an HTTP status ("Status 599" for one Python does not know)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Status %d" % status


def html_error(status, server):
    """The HTML error page of a proxy (server: "nginx", "cloudflare") in front of an API."""
    title = html.escape("%d %s" % (status, phrase(status)))
    return ("<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n"
            "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n" % (title, title, server)).encode()


def reject_constant(name):
    """json.loads(..., parse_constant=reject_constant): NaN and Infinity are not JSON."""
    raise ValueError("%s is not valid JSON" % name)


def dumps(obj):
    """Compact UTF-8 JSON: what the servers answer."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def parse_json(body):
    """A request body as strict JSON (UTF-8; NaN and Infinity are not JSON): (document, True,
    None), or (None, False, why not)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=reject_constant), True, None
    except (ValueError, UnicodeDecodeError) as e:
        return None, False, str(e)


def canonical(obj):
    """JSON text that is the same for the same document (key order aside): comparing bodies."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- scenarios

class ScenarioError(ValueError):
    pass


def scenario_items(raw):
    """The options of a scenario ("a,b=1,c=x%2Cy"): (item, name, "=" or "", URL-decoded value)."""
    for item in raw.split(","):
        if item:
            name, eq, value = item.partition("=")
            yield item, name, eq, urllib.parse.unquote(value)


def parse_table(raw, flags, ints, strs, fails, error):
    """The scenario options of llm_server.py and kb_server.py, by kind: NAME (flags: True),
    NAME=DIGITS (ints), NAME=TEXT (strs), NAME=STATUS[:N] (fails: (status, N or None)) and
    hang[=SECONDS] (default 120); anything else raises ScenarioError(error % item)."""
    opts = {}
    for item, name, eq, value in scenario_items(raw):
        if name in flags and not eq:
            opts[name] = True
        elif name == "hang":
            opts[name] = float(value) if eq else 120.0
        elif name in ints and eq and value.isdigit():
            opts[name] = int(value)
        elif name in strs and eq:
            opts[name] = value
        elif name in fails and re.fullmatch(r"\d{3}(:\d+)?", value or ""):
            status, _, n = value.partition(":")
            opts[name] = (int(status), int(n) if n else None)
        else:
            raise ScenarioError(error % item)
    return opts


def parse_counted(raw, flags, error, own=None):
    """The scenario options of helpdesk_server.py and shop_server.py: fail=STATUS[:N],
    delay=MS[:N] and the flags NAME[:N] (counted: (value, N or None), see applies()),
    hang[=SECONDS] (default 120), ra=SECONDS, and what own(opts, name, eq, value) takes (it
    returns True); anything else raises ScenarioError(error % item)."""
    opts = {}
    for item, name, eq, value in scenario_items(raw):
        if name == "fail" and re.fullmatch(r"[1-5]\d\d(:\d+)?", value):
            status, _, n = value.partition(":")
            opts[name] = (int(status), int(n) if n else None)
        elif name == "delay" and re.fullmatch(r"\d+(:\d+)?", value):
            ms, _, n = value.partition(":")
            opts[name] = (int(ms), int(n) if n else None)
        elif not eq and re.fullmatch(r"(%s)(:\d+)?" % "|".join(flags), name):
            name, _, n = name.partition(":")
            opts[name] = (True, int(n) if n else None)
        elif name == "hang" and (not eq or re.fullmatch(r"\d+(\.\d+)?", value)):
            opts[name] = float(value) if eq else 120.0
        elif name == "ra" and value.isdigit():
            opts[name] = value
        elif own is None or not own(opts, name, eq, value):
            raise ScenarioError(error % item)
    return opts


def applies(opt, count):
    """Does a counted scenario option (value, N or None) apply to the request numbered count
    (from 0)? Without N always; with N to the first N only."""
    return opt is not None and (opt[1] is None or count < opt[1])


def scripted_failure(sc, count):
    """fail=STATUS[:N] of parse_counted() for the request numbered count: None when it does not
    apply, else (STATUS, its headers: Retry-After with ra=, or 1 for a 429)."""
    if not applies(sc.get("fail"), count):
        return None
    status = sc["fail"][0]
    return status, ([("Retry-After", sc.get("ra", "1"))] if "ra" in sc or status == 429 else [])


# ---------------------------------------------------------------- control endpoints, recorded requests

async def wait_for(q, count):
    """?min=N[&wait=S] of a control endpoint (q from parse_qs): until count() >= N, at most S
    seconds (default 10, at most 300)."""
    try:
        want = int(q["min"][-1]) if "min" in q else 0
        limit = float(q["wait"][-1]) if "wait" in q else 10.0
    except ValueError:
        return
    end = time.monotonic() + min(limit, 300.0)
    while count() < want and time.monotonic() < end:
        await asyncio.sleep(0.02)


def matching(records, q, *fields):
    """The records GET /_requests selects, oldest first: ?scenario=S (the scenario as recorded or
    URL-decoded) and ?FIELD=V for each of fields (the record's FIELD is V)."""
    recs = list(records)
    if "scenario" in q:
        want = q["scenario"][-1]
        recs = [r for r in recs if r["scenario"] is not None
                and want in (r["scenario"], urllib.parse.unquote(r["scenario"]))]
    for field in fields:
        if field in q:
            recs = [r for r in recs if r[field] == q[field][-1]]
    return recs


def last_n(recs, q):
    """?last=N: the last N of recs (none for 0)."""
    if "last" in q and q["last"][-1].isdigit():
        return recs[-int(q["last"][-1]):] if int(q["last"][-1]) else []
    return recs


def recorded_files(paths, pattern, prog, what):
    """The files `PROG check PATH...` checks, sorted: each PATH a file, or a directory whose files
    (below it) named by pattern count. None, said on stdout, when a PATH is missing or there is
    no file (exit status 2)."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in os.walk(p):
                files += [os.path.join(d, n) for n in names if re.fullmatch(pattern, n)]
        elif os.path.exists(p):
            files.append(p)
        else:
            print("%s check: %s: no such file or directory" % (prog, p))
            return None
    if not files:
        print("%s check: no %s files" % (prog, what))
        return None
    return sorted(files)


# ---------------------------------------------------------------- schema bundles

class Bundle:
    """One bundle of ../shared/specs/bundles with its own copy of validate.py (whose module
    globals hold the bundle's $defs) and the strict variant of its $defs. Loaded once."""
    _cache = {}
    _lock = threading.Lock()

    @classmethod
    def get(cls, name, shared_dir=None):
        shared = os.path.abspath(shared_dir or os.environ.get("SA_SHARED_DIR") or os.path.join(REPO, "..", "shared"))
        with cls._lock:
            if (shared, name) not in cls._cache:
                cls._cache[(shared, name)] = cls(shared, name)
            return cls._cache[(shared, name)]

    def __init__(self, shared, name):
        tool = os.path.join(shared, "tools", "validate.py")
        spec = importlib.util.spec_from_file_location("sa_shared_validate_" + name, tool)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        with open(os.path.join(shared, "specs", "bundles", name + ".schema.json"), encoding="utf-8") as f:
            self.bundle = json.load(f)
        mod.DEFS.update(self.bundle["$defs"])
        self.mod = mod
        self.sdefs = json.loads(json.dumps(self.bundle["$defs"]))
        mod.make_strict(self.sdefs)

    def make(self, defname, strict):
        if defname not in self.bundle["$defs"]:
            raise KeyError("no $defs/%s" % defname)
        schema = dict(self.bundle)
        schema["$defs"] = self.sdefs if strict else self.bundle["$defs"]
        schema["$ref"] = "#/$defs/" + defname
        return self.mod.Draft202012Validator(schema)


class BundleValidator:
    """One $defs entry of a bundle (openai, tei, qdrant), judged like `validate.py [--strict]`."""

    def __init__(self, defname, bundle="openai", strict=True, shared_dir=None):
        self.b = Bundle.get(bundle, shared_dir)
        self.mod, self.defname, self.lock = self.b.mod, defname, threading.Lock()
        self.v = self.b.make(defname, False)
        self.vs = self.b.make(defname, True) if strict else None
        self.cache = collections.OrderedDict()

    def kind(self, leaf):
        """What details() tells of a schema error (a jsonschema leaf error) besides its message:
        False here; kb_server.py's Validator: whether Qdrant would answer it with a 422."""
        return False

    def details(self, inst):
        """[(message, kind)], empty when valid; an unknown key's kind is False. Cached by document."""
        key = json.dumps(inst, sort_keys=True)
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return list(self.cache[key])
        errs = sorted(self.v.iter_errors(inst), key=lambda e: [str(p) for p in e.absolute_path])
        out = []
        for e in errs:
            for leaf in self.mod.leaves(e):
                path = "/" + "/".join(str(p) for p in leaf.absolute_path)
                out.append(("INVALID at %s: %s" % (path, leaf.message[:300]), self.kind(leaf)))
        if not errs and self.vs is not None:
            for path, names in self.mod.strict_unknowns(self.vs, inst):
                out.append(("UNKNOWN KEY(S) at %s: %s" % (path, ", ".join(names)), False))
        with self.lock:
            self.cache[key] = out
            if len(self.cache) > 512:
                self.cache.popitem(last=False)
        return list(out)

    def check(self, inst):
        """List of error strings, empty when valid."""
        return [m for m, _ in self.details(inst)]


# ---------------------------------------------------------------- API keys

def bearer_auth(value, key, realm):
    """The verdict of helpdesk_server.py and shop_server.py on an Authorization header (value;
    None: absent) when they want "Bearer KEY" (key None: nothing wanted): None when it passes,
    else the 401's (message, headers)."""
    if key is None:
        return None
    if value is None:
        return ("authentication required: Authorization: Bearer <api key>",
                [("WWW-Authenticate", 'Bearer realm="%s"' % realm)])
    if not re.fullmatch(r"Bearer \S+", value):
        return "malformed Authorization header: expected 'Bearer <api key>'", []
    if value != "Bearer " + key:
        return "invalid API key", []
    return None


# ---------------------------------------------------------------- OpenAI's errors

OPENAI_ERRORS = {  # status -> (type, code) of OpenAI's error answers
    400: ("invalid_request_error", "invalid_value"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}

OPENAI_BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                   "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                   "sent was not valid JSON.)")


def openai_error(message, etype, code=None, param=None):
    """The body of an OpenAI error answer."""
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def openai_auth(auth, key):
    """OpenAI's verdict on an Authorization header (None: absent) when the API key is key (None:
    any, or none): None when it passes, else the 401's (message, code)."""
    if auth is not None and not re.fullmatch(r"Bearer \S+", auth):
        return "Malformed Authorization header %r: expected 'Bearer <key>'." % auth, "invalid_api_key"
    if key is not None and auth is None:
        return ("You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", None)
    if key is not None and auth != "Bearer " + key:
        return "Incorrect API key provided: %s." % auth[7:], "invalid_api_key"
    return None


def openai_scripted(status, server):
    """A scripted (fail=) OpenAI error: (message, type, code); server: "llm_server.py"..."""
    etype, code = OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    msg = {429: "Rate limit reached for requests (scripted by %s). Please try again in 1s." % server}.get(
        status, "Scripted error %d from %s." % (status, server))
    return msg, etype, code


# ---------------------------------------------------------------- connections

class Request:
    pass


MAX_BODY = 32 << 20


class BaseConn:
    """One client connection: reading HTTP/1.1 requests (Content-Length or chunked bodies,
    100-continue, keep-alive), the request loop, and the answers: a head, a whole JSON (or
    other) reply, and the misbehaviours of the scenarios (pause, hang, reset)."""

    pause_step = 0.02   # pause() looks this often (seconds) whether the client has gone
    reset_delay = 0     # seconds reset() waits between SO_LINGER and the abort (0: none)

    def __init__(self, srv, reader, writer):
        self.srv, self.reader, self.writer = srv, reader, writer
        sock = writer.get_extra_info("socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.rec = None  # record of the request being answered

    async def send(self, data):
        if self.writer.is_closing():
            raise PeerGone()
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            raise PeerGone()

    async def head(self, status, ctype, length=None, keep=True, extra=(), chunked=False):
        """The status line and headers: Content-Type (when ctype), Content-Length (when length is
        not None), Transfer-Encoding: chunked (when chunked), extra (name, value) pairs as given,
        then Connection."""
        lines = ["HTTP/1.1 %d %s" % (status, phrase(status))]
        if ctype:
            lines.append("Content-Type: " + ctype)
        if length is not None:
            lines.append("Content-Length: %d" % length)
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        lines += ["%s: %s" % kv for kv in extra]
        lines.append("Connection: " + ("keep-alive" if keep else "close"))
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def simple(self, req, status, obj=None, body=None, ctype="application/json", extra=()):
        """A whole answer: obj as compact JSON (dumps), or body (bytes) as ctype."""
        if obj is not None:
            body = dumps(obj)
        await self.head(status, ctype, len(body), req.keep_alive, extra)
        if body:
            await self.send(body)

    def gone(self):
        return self.writer.is_closing() or self.reader.at_eof()

    async def pause(self, seconds):
        """Sleep, but wake up early when the client goes away (so that the record says
        "client_closed" as soon as it has left); True when it went away meanwhile."""
        end = time.monotonic() + seconds
        while not self.gone():
            left = end - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, self.pause_step))
        return True

    async def reset(self):
        """Abort the connection with a TCP RST (SO_LINGER 0), nothing more sent."""
        sock = self.writer.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        if self.reset_delay:
            await asyncio.sleep(self.reset_delay)
        self.writer.transport.abort()

    async def hang(self, seconds):
        """Never answer: read (and drop) what the client sends until it closes or `seconds`
        pass; the record's outcome says which ("client_closed" or "hang_timeout"). Returns
        False: the connection is to be closed."""
        self.rec["outcome"] = "hang_timeout"
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if not await asyncio.wait_for(self.reader.read(65536), end - time.monotonic()):
                    self.rec["outcome"] = "client_closed"
                    break
        except asyncio.TimeoutError:
            pass
        return False

    async def misbehave(self, sc, count, note):
        """The counted scenario options that answer nothing, first of hang[=S] (see hang()),
        reset[:N] (TCP RST) and close[:N] (FIN) for the request numbered count; note(message)
        logs. True when one did: the connection is to be closed."""
        rec = self.rec
        if "hang" in sc:
            note("#%d %s -> hang %gs" % (rec["seq"], rec["path"], sc["hang"]))
            await self.hang(sc["hang"])
            return True
        if applies(sc.get("reset"), count):
            rec["outcome"] = "reset"
            note("#%d %s -> reset" % (rec["seq"], rec["path"]))
            await self.reset()
            return True
        if applies(sc.get("close"), count):
            rec["outcome"] = "closed"
            note("#%d %s -> closed" % (rec["seq"], rec["path"]))
            return True
        return False

    async def read_request(self):
        line = b"\r\n"
        while line in (b"\r\n", b"\n"):
            line = await self.reader.readline()
        if not line:
            return None
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError("bad request line")
        req = Request()
        req.method, req.target, req.version = parts
        req.headers = {}
        while True:
            h = await self.reader.readline()
            if not h.endswith(b"\n"):
                raise ValueError("EOF in headers")
            h = h.rstrip(b"\r\n")
            if not h:
                break
            name, _, value = h.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            req.headers[name] = req.headers[name] + ", " + value if name in req.headers else value
        conn_opts = {t.strip().lower() for t in req.headers.get("connection", "").split(",")}
        req.keep_alive = req.version == "HTTP/1.1" and "close" not in conn_opts
        req.chunked_ok = req.version == "HTTP/1.1"
        if req.headers.get("expect", "").lower() == "100-continue" and req.chunked_ok:
            await self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in req.headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await self.reader.readline()).strip():
                        pass
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readline()
                if len(body) > MAX_BODY:
                    raise ValueError("body too large")
            req.body = bytes(body)
        else:
            n = int(req.headers.get("content-length", "0") or 0)
            if n < 0 or n > MAX_BODY:
                raise ValueError("bad content-length")
            req.body = await self.reader.readexactly(n)
        return req

    async def run(self):
        try:
            while True:
                try:
                    req = await self.read_request()
                except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    req = None
                    await self.head(400, "text/plain", length=12, keep=False)
                    await self.send(b"bad request\n")
                if req is None:
                    break
                keep = await self.srv.dispatch(self, req)
                if not keep or not req.keep_alive:
                    break
        except (PeerGone, ConnectionError, OSError):
            if self.rec is not None and self.rec["outcome"] == "pending":
                self.rec["outcome"] = "client_closed"
        finally:
            if not self.writer.is_closing():
                self.writer.close()


# ---------------------------------------------------------------- servers

class BaseServer:
    """What every server keeps: its options, the records of the last 1000 requests (GET
    /_requests) and their sequence number, the scenario counters, one worker thread (schema
    validation off the event loop), the --record-dir, and its log."""
    name = None  # the log's prefix

    def __init__(self, args):
        self.args = args
        self.records = collections.deque(maxlen=1000)
        self.counters = collections.Counter()
        self.seq = 0
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        if args.record_dir:
            os.makedirs(args.record_dir, exist_ok=True)

    def note(self, msg):
        """Log, unless --quiet."""
        if not self.args.quiet:
            log(self.name, msg)

    def record(self, conn, req, **fields):
        """A new record of req, kept for GET /_requests and as the one conn answers: "seq", "time",
        "method", "path", then fields in their order."""
        self.seq += 1
        rec = {"seq": self.seq, "time": round(time.time(), 3), "method": req.method, "path": req.target}
        rec.update(fields)
        self.records.append(rec)
        conn.rec = rec
        return rec

    def count(self, key):
        """The number (from 0) of this request among those counted under key (a scenario)."""
        n = self.counters[key]
        self.counters[key] += 1
        return n


async def serve(args, srv, make_conn, name):
    tasks = set()

    async def on_conn(reader, writer):
        task = asyncio.current_task()
        tasks.add(task)
        try:
            await make_conn(srv, reader, writer).run()
        except asyncio.CancelledError:
            pass
        except Exception as e:  # never let one connection kill the server
            log(name, "connection error: %s: %s" % (type(e).__name__, e))
            writer.transport.abort()
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(on_conn, args.host, args.port, limit=1 << 20,
                                        backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("listening on %s:%d" % (args.host, port), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.parent_pid:
        async def watch_parent():
            while not stop.is_set():
                if os.getppid() != args.parent_pid:
                    stop.set()
                await asyncio.sleep(0.5)
        loop.create_task(watch_parent())
    await stop.wait()
    server.close()
    for t in list(tasks):
        t.cancel()
    await asyncio.sleep(0)
    srv.pool.shutdown(wait=False)


def parser(description, no_validate="skip schema validation"):
    """The options every server takes (a server adds its own)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--record-dir")
    p.add_argument("--require-key")
    p.add_argument("--no-validate", action="store_true", help=no_validate)
    p.add_argument("--parent-pid", type=int, help="exit when this process is no longer our parent")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args, srv, make_conn, name):
    """Serve until SIGTERM/SIGINT (or the parent is gone), with as many open files as allowed."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    asyncio.run(serve(args, srv, make_conn, name))
    return 0


def main(argv, description, make_server, make_conn, name):
    args = parser(description).parse_args(argv)
    return run(args, make_server(args), make_conn, name)
