#!/usr/bin/python3
"""Recording helpdesk: the ticket webhook the module hands conversations to (the test peer of
support_agent_handoff_url). It validates each ticket against docs/handoff-ticket.schema.json,
deduplicates on the Idempotency-Key like Stripe and Zendesk do, remembers every ticket and every
request, and fails, stalls or garbles its answers on demand, so that tests can check that a
handoff survives a helpdesk that is down, slow, wrong or answered twice: one ticket per
conversation.

Python 3 standard library only (plus Debian's python3-jsonschema for validation), asyncio, raw
HTTP/1.1 with keep-alive, request bodies with Content-Length or chunked. Run with Debian's
/usr/bin/python3.

CLI
    helpdesk_server.py [--host 127.0.0.1] [--port 0] [--port-file PATH] [--record-dir DIR]
                       [--require-key KEY] [--no-validate] [--parent-pid PID] [--quiet]
    Prints "listening on HOST:PORT" (flushed) once it accepts connections; --port-file gets the
    port number (written atomically). --parent-pid: exit when that process goes away.
    SIGTERM / SIGINT exit 0. --no-validate: no schema check (records say "valid": null).
    --require-key KEY: POST /tickets wants "Authorization: Bearer KEY".
    helpdesk_server.py check PATH...
    Validates ticket files (a directory: every NNNNNN-ticket.json below it) against the schema;
    prints one line per invalid file, exit 0 when all are valid, 1 otherwise, 2 when a PATH is
    missing or there is no file at all.

Endpoints
    POST /tickets, POST /<scenario>/tickets   create a ticket (below); <scenario> = comma-
        separated options, e.g. /fail=503:2/tickets. Recorded.
    GET  /tickets[?min=N[&wait=S]]  {"tickets": [{"id", "idempotency_key", "deliveries",
        "posts", "created", "body"}, ...]} in creation order. deliveries: POSTs with that key
        answered 2xx (created or deduplicated; a client that left during delay= is not
        counted); posts: POSTs with that key that reached the ticket store (2xx or not, 409
        excluded). min=N: first wait (up to S seconds, default 10) until there are at least N
        tickets, since the module delivers them from its workers, after the chat turn; the
        list is answered either way.
    GET  /tickets/<id>            one of those objects, or 404 {"error": "no ticket <id>"}
    GET  /_requests[?last=N][&scenario=S][&min=N&wait=S]   the records (below), JSON array,
        oldest first; min/wait as for /tickets, counting the records that match scenario= and
        are answered (outcome not "pending")
    DELETE /_requests             clear the records and the scenario counters (tickets stay)
    any  /_reset                  clear tickets, records and scenario counters; ids restart
    GET  /_health                 200 "ok"
    Control endpoints and GET /tickets are not recorded and need no key. Anything else: 404
    {"error": ...}, a wrong method on a tickets path: 405; both recorded.

POST /tickets, checks in this order (errors are {"error": "..."}):
    scenario        unknown option or bad value                     400 "bad_scenario: ..."
    auth            with --require-key: Authorization missing, not "Bearer <token>", or
                    another token                                   401
    content type    not application/json (parameters such as charset allowed)   415
    idempotency     no (or an empty) Idempotency-Key header         400 "Idempotency-Key required"
    JSON            body not UTF-8 JSON (NaN/Infinity are not JSON) 400 "invalid JSON: ..."
    schema          not valid under the schema (Draft 2020-12)      422 "invalid ticket: <path>:
                    <message>; ..." (every error, sorted by path; the record has them as a list)
    Then the scenario runs (counted, see below): hang, reset, close, fail= answer without a
    ticket; otherwise the ticket store:
    a new key           a ticket is created: 201 {"id": "HD-1001", "status": "open",
                        "estimated_wait_minutes": 4}; ids HD-1001, HD-1002, ... in creation
                        order (with zendesk: integers 35436, 35437, ...; see below)
    a known key, same body (compared as parsed JSON)   200 with that ticket's answer and the
                        header "Idempotent-Replayed: true": a duplicate delivery, counted in
                        the ticket's deliveries and posts, no new ticket
    a known key, another body   409 {"error": "Idempotency-Key reused with a different body"}
    Then delay=, then the answer, shaped by badjson / noid / zendesk / wait=.
    Not enforced but noted in the record's "warnings" (tests assert it is empty): the key is not
    "handoff-" + conversation_id; external_id differs from conversation_id; messages not oldest
    first (their "at" decreasing).

Scenario options (combine with ","; values URL-decoded). Each distinct scenario string has its
own counter of the requests that passed the checks above; an option with ":N" applies to the
first N of them only (then the scenario behaves normally; no cycling), without ":N" to all.
    fail=STATUS[:N]   answer STATUS with {"error": "scripted <STATUS> from helpdesk_server.py"}
                      (429 carries "Retry-After: 1"); no ticket is created
    ra=SECONDS        fail= answers carry "Retry-After: SECONDS" (429's default 1 too)
    delay=MS[:N]      wait MS ms before answering; the ticket is created (or found) BEFORE the
                      wait, so a client that times out and retries is deduplicated
    hang[=S]          read the request, never answer, close after S seconds (default 120); no
                      ticket
    reset[:N]         abort the connection (TCP RST) without any answer; no ticket
    close[:N]         close the connection (FIN) without any answer; no ticket
    badjson[:N]       the usual status (201 / 200) with the first half of the JSON answer as the
                      whole body (not JSON); the ticket IS created
    noid[:N]          the usual status with {"status": "open"} and no id; the ticket IS created
    badid[:N]         the usual answer with "id": "<id> <script>" (characters the module
                      refuses in a ticket id); the ticket IS created
    zendesk           answer in Zendesk's shape {"ticket": {"id": 35436, "url", "external_id",
                      "subject", "status": "new", "priority", "tags" (reason, intent),
                      "created_at"}} (integer id; a ticket created so has that integer id
                      everywhere, GET /tickets/35436) and "estimated_wait_minutes" at the top
                      level only with wait=. With --no-validate, a body in Zendesk's own shape
                      {"ticket": {...}} (what an adapter sends) is echoed from there, so the
                      server can stand in for Zendesk behind an adapter.
    wait=MINUTES      the estimated_wait_minutes to answer (a number >= 0; "none" omits it)
    Precedence when several apply: hang, reset, close, fail, then the ticket store, delay, and
    badjson over noid over badid.

Record (GET /_requests, last 1000 requests, JSON compact, keys in this order):
    {"seq": 1, "time": 1700000000.123 (received), "method": "POST", "path": "/fail=503:2/tickets",
     "scenario": "fail=503:2" | "" | null (not a tickets path),
     "idempotency_key": "handoff-c_..." | null, "authorization": true|false (present; the token
     is never recorded), "content_type": "application/json" | null,
     "body": <parsed JSON> | null (none or not JSON), "valid": true|false|null (not checked),
     "errors": ["/path: message", ...], "warnings": [...], "status": 201|...|null (no answer),
     "outcome": "pending" | "created" | "duplicate" | "conflict" | "error" | "hang_timeout" |
     "reset" | "closed" | "client_closed", "ticket": "HD-1001" | 35436 | null}
    --record-dir DIR also writes the body of each POST on a tickets path to
    DIR/NNNNNN-ticket.json (NNNNNN = seq); `helpdesk_server.py check DIR` validates them.
"""
import asyncio
import collections
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testserver  # noqa: E402
from testserver import ScenarioError, applies, canonical, dumps, reject_constant  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(REPO, "docs", "handoff-ticket.schema.json")
DEFAULT_WAIT = 4
FIRST_NUMBER = 1001
ZENDESK_BASE = 35436


def log(msg):
    sys.stderr.write("helpdesk_server: %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------- validation

class Validator:
    """The ticket schema, Draft 2020-12."""

    def __init__(self, path=SCHEMA):
        import jsonschema
        with open(path, encoding="utf-8") as f:
            self.schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(self.schema)
        self.v = jsonschema.Draft202012Validator(self.schema)

    def check(self, inst):
        """List of "<path>: <message>" strings, empty when valid."""
        out = []
        for e in self.v.iter_errors(inst):
            path = "/" + "/".join(str(p) for p in e.absolute_path)
            out.append((path, e.message[:300]))
        return ["%s: %s" % pm for pm in sorted(out)]


def contract_warnings(key, body):
    """What the schema cannot say about a ticket (recorded, never refused)."""
    if not isinstance(body, dict):
        return []
    out = []
    cid = body.get("conversation_id")
    if isinstance(cid, str):
        if key is not None and key != "handoff-" + cid:
            out.append("Idempotency-Key %r is not 'handoff-' + conversation_id" % key)
        if body.get("external_id") != cid:
            out.append("external_id differs from conversation_id")
    msgs = body.get("messages")
    if isinstance(msgs, list):
        ats = [m.get("at") for m in msgs if isinstance(m, dict) and isinstance(m.get("at"), str)]
        if any(a > b for a, b in zip(ats, ats[1:])):
            out.append("messages are not oldest first")
    return out


def check_files(paths):
    """`helpdesk_server.py check PATH...`: exit status 0 (all valid), 1 or 2 (no files)."""
    files = testserver.recorded_files(paths, r"\d{6}-ticket\.json", "helpdesk_server", "ticket")
    if files is None:
        return 2
    v, bad = Validator(), 0
    for path in files:
        try:
            with open(path, "rb") as f:
                inst = json.loads(f.read().decode("utf-8"), parse_constant=reject_constant)
            errors = v.check(inst)
        except (ValueError, UnicodeDecodeError) as e:
            errors = ["not JSON: %s" % e]
        except OSError as e:
            errors = ["unreadable: %s" % e]
        if errors:
            bad += 1
            print("%s: INVALID: %s" % (path, "; ".join(errors)))
    print("helpdesk_server check: %d of %d ticket files valid" % (len(files) - bad, len(files)))
    return 1 if bad else 0


# ---------------------------------------------------------------- scenarios

def parse_scenario(raw):
    """{option: value}; counted options carry (value, N or None)."""
    return testserver.parse_counted(raw, ("reset", "close", "badjson", "noid", "badid"),
                                    "bad_scenario: bad scenario option %r (see the docstring of "
                                    "t/helpdesk_server.py)", own=helpdesk_option)


def helpdesk_option(opts, name, eq, value):
    """zendesk and wait=MINUTES|none (the others: testserver.parse_counted)."""
    if name == "zendesk" and not eq:
        opts[name] = True
    elif name == "wait" and (value == "none" or re.fullmatch(r"\d+(\.\d+)?", value)):
        opts[name] = None if value == "none" else (float(value) if "." in value else int(value))
    else:
        return False
    return True


# ---------------------------------------------------------------- server

class Reply(Exception):
    """An error answer {"error": message} (raised from anywhere in the request's handling)."""

    def __init__(self, status, message, extra=(), outcome="error"):
        super().__init__(status)
        self.status, self.message, self.extra, self.outcome = status, message, list(extra), outcome


class Ticket:
    def __init__(self, tid, key, body, digest):
        self.id, self.key, self.body, self.digest = tid, key, body, digest
        self.deliveries = 0
        self.posts = 0
        self.created = round(time.time(), 3)

    def public(self):
        return {"id": self.id, "idempotency_key": self.key, "deliveries": self.deliveries,
                "posts": self.posts, "created": self.created, "body": self.body}


class HelpdeskServer(testserver.BaseServer):
    name = "helpdesk_server"

    def __init__(self, args):
        super().__init__(args)
        self.tickets = collections.OrderedDict()  # idempotency key -> Ticket
        self.validator = None
        if not args.no_validate:
            try:
                self.validator = Validator()
            except Exception as e:  # missing schema or jsonschema
                log("WARNING: ticket validation disabled: %s: %s" % (type(e).__name__, e))

    def reset(self):
        self.records.clear()
        self.counters.clear()
        self.tickets.clear()

    def find(self, tid):
        return next((t for t in self.tickets.values() if str(t.id) == tid), None)

    async def control(self, conn, req, path, query):
        if path == "/_health":
            await conn.simple(req, 200, body=b"ok\n", ctype="text/plain")
        elif path == "/_reset" or (path == "/_requests" and req.method == "DELETE"):
            if path == "/_reset":
                self.reset()
            else:
                self.records.clear()
                self.counters.clear()
            await conn.simple(req, 200, {"cleared": True})
        else:
            q = urllib.parse.parse_qs(query)
            # a record counts once its request is answered (or given up)
            await testserver.wait_for(q, lambda: sum(
                1 for r in testserver.matching(self.records, q) if r["outcome"] != "pending"))
            await conn.simple(req, 200, testserver.last_n(testserver.matching(self.records, q), q))
        return True

    async def dispatch(self, conn, req):
        """Answer one request; returns False when the connection must be closed."""
        path, _, query = req.target.partition("?")
        if path in ("/_health", "/_reset", "/_requests"):
            return await self.control(conn, req, path, query)
        m = re.fullmatch(r"(?:/([^/]+))?/tickets(?:/([^/]+))?/?", path)
        if m and req.method == "GET":
            if m.group(2) is None:
                await testserver.wait_for(urllib.parse.parse_qs(query), lambda: len(self.tickets))
                await conn.simple(req, 200, {"tickets": [t.public() for t in self.tickets.values()]})
            else:
                t = self.find(urllib.parse.unquote(m.group(2)))
                if t is None:
                    await conn.simple(req, 404, {"error": "no ticket %s" % m.group(2)})
                else:
                    await conn.simple(req, 200, t.public())
            return True

        h = req.headers
        rec = self.record(conn, req, scenario=None, idempotency_key=h.get("idempotency-key"),
                          authorization="authorization" in h, content_type=h.get("content-type"),
                          body=None, valid=None, errors=[], warnings=[], status=None,
                          outcome="pending", ticket=None)
        seq = rec["seq"]
        parsed, is_json, jerr = None, False, "empty body"
        if req.body:
            parsed, is_json, jerr = testserver.parse_json(req.body)
            rec["body"] = parsed if is_json else None
        try:
            if not m or m.group(2) is not None:
                raise Reply(404, "no endpoint %s %s" % (req.method, path))
            scenario = m.group(1) or ""
            rec["scenario"] = scenario
            if req.method != "POST":
                raise Reply(405, "method %s not allowed on %s; use POST (or GET /tickets)" % (req.method, path),
                            extra=[("Allow", "GET, POST")])
            if self.args.record_dir and req.body:
                with open(os.path.join(self.args.record_dir, "%06d-ticket.json" % seq), "wb") as f:
                    f.write(req.body)
            try:
                sc = parse_scenario(scenario)
            except ScenarioError as e:
                raise Reply(400, str(e))
            self.auth(h.get("authorization"))
            ctype = (h.get("content-type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                rec["valid"], rec["errors"] = False, ["Content-Type is not application/json"]
                raise Reply(415, "Content-Type must be application/json")
            key = h.get("idempotency-key")
            if not key:
                raise Reply(400, "Idempotency-Key required")
            if not is_json:
                rec["valid"], rec["errors"] = False, ["body is not JSON"]
                raise Reply(400, "invalid JSON: %s" % jerr)
            rec["warnings"] = contract_warnings(key, parsed)
            if self.validator is not None:
                errors = await asyncio.get_running_loop().run_in_executor(self.pool, self.validator.check, parsed)
                rec["valid"], rec["errors"] = not errors, errors
                if errors:
                    raise Reply(422, "invalid ticket: " + "; ".join(errors))
            return await self.ticket(conn, req, rec, scenario, sc, key, parsed)
        except Reply as r:
            rec["status"], rec["outcome"] = r.status, r.outcome
            self.note("#%d %s %s -> %d %s" % (seq, req.method, req.target, r.status, r.message[:200]))
            await conn.simple(req, r.status, {"error": r.message}, extra=r.extra)
            return True

    def auth(self, value):
        err = testserver.bearer_auth(value, self.args.require_key, "helpdesk")
        if err:
            raise Reply(401, err[0], extra=err[1])

    async def ticket(self, conn, req, rec, scenario, sc, key, body):
        seq = rec["seq"]
        count = self.count(scenario)
        if await conn.misbehave(sc, count, self.note):
            return False
        failure = testserver.scripted_failure(sc, count)
        if failure:
            raise Reply(failure[0], "scripted %d from helpdesk_server.py" % failure[0], failure[1])

        digest = canonical(body)
        t = self.tickets.get(key)
        if t is not None and t.digest != digest:
            rec["ticket"] = t.id
            raise Reply(409, "Idempotency-Key reused with a different body", outcome="conflict")
        if t is None:
            n = len(self.tickets)
            tid = ZENDESK_BASE + n if sc.get("zendesk") else "HD-%d" % (FIRST_NUMBER + n)
            t = self.tickets[key] = Ticket(tid, key, body, digest)
            status, rec["outcome"] = 201, "created"
        else:
            status, rec["outcome"] = 200, "duplicate"
        t.posts += 1
        rec["ticket"] = t.id

        if applies(sc.get("delay"), count):
            if await conn.pause(sc["delay"][0] / 1000.0):
                rec["outcome"] = "client_closed"
                self.note("#%d %s -> client left during the delay (ticket %s)" % (seq, req.target, t.id))
                return False

        wait = sc.get("wait", DEFAULT_WAIT)
        if sc.get("zendesk"):
            src = body if isinstance(body, dict) else {}
            if isinstance(src.get("ticket"), dict):  # a Zendesk-shaped body (an adapter's, --no-validate)
                src = src["ticket"]
                tags = [x for x in src.get("tags") or [] if isinstance(x, str)]
            else:
                tags = [x for x in (src.get("reason"), src.get("intent")) if isinstance(x, str)]
            obj = {"ticket": {"id": t.id, "url": "https://example.zendesk.com/api/v2/tickets/%s.json" % t.id,
                              "external_id": src.get("external_id"), "subject": src.get("subject"),
                              "status": "new", "priority": src.get("priority"), "tags": tags,
                              "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t.created))}}
            if "wait" in sc and wait is not None:
                obj["estimated_wait_minutes"] = wait
        else:
            obj = {"id": t.id, "status": "open"}
            if wait is not None:
                obj["estimated_wait_minutes"] = wait
        extra = [("Idempotent-Replayed", "true")] if status == 200 else []
        extra.append(("Location", "/tickets/%s" % t.id))
        data = dumps(obj)
        if applies(sc.get("badjson"), count):
            data = data[:len(data) // 2]
        elif applies(sc.get("noid"), count):
            data = dumps({"status": "open"})
        elif applies(sc.get("badid"), count):
            (obj["ticket"] if "ticket" in obj else obj)["id"] = "%s <script>" % t.id
            data = dumps(obj)
        rec["status"] = status
        t.deliveries += 1
        self.note("#%d %s -> %d %s ticket %s" % (seq, req.target, status, rec["outcome"], t.id))
        await conn.head(status, "application/json", len(data), req.keep_alive, extra)
        await conn.send(data)
        return True


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        return check_files(argv[1:])
    return testserver.main(argv, "Recording helpdesk (ticket webhook) test server (see the docstring).",
                           HelpdeskServer, testserver.BaseConn, "helpdesk_server")


if __name__ == "__main__":
    sys.exit(main())
