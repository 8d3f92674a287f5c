#!/usr/bin/python3
"""Self-test of t/helpdesk_server.py: starts it (as the suites do, via its CLI), drives every
endpoint, scenario option and error path over raw sockets: ticket creation, deduplication on the
Idempotency-Key (a duplicate delivery, a reused key with another body), schema validation,
auth, keep-alive and chunked bodies, and the `check` subcommand on the recorded tickets.

    /usr/bin/python3 t/helpdesk_server_selftest.py [-v]     exit 0 = all passed
"""
import asyncio
import copy
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no t/__pycache__ in the work tree
import helpdesk_server  # noqa: E402
import selftest_util  # noqa: E402

SERVER = os.path.join(HERE, "helpdesk_server.py")
TMP = tempfile.mkdtemp(prefix="helpdesk-selftest-")
REC = os.path.join(TMP, "rec")
PORT = None
PROC = None
KEY_PORT = None      # a second server with --require-key
KEY_PROC = None
NOVAL_PORT = None    # a third one with --no-validate
NOVAL_PROC = None
API_KEY = "hd-secret-token-42"

# A ticket as the module builds it: a customer asking for a refund of a damaged order three
# times, getting angrier; personal data masked.
TICKET = {
    "external_id": "c_5f0c2a9e4b7d41e8a3c6f1d2e9b8a7c4",
    "conversation_id": "c_5f0c2a9e4b7d41e8a3c6f1d2e9b8a7c4",
    "subject": "Refund for damaged order A10293 not received",
    "priority": "high",
    "reason": "repetition",
    "reason_detail": "3 messages about the same issue (refund_status)",
    "intent": "refund_status",
    "summary": ("Issue: refund for order A10293 (arrived damaged) not received after 12 days.\n"
                "Tried: refund policy article (refunds take 5-10 business days); order status lookup.\n"
                "Orders: A10293\n"
                "Mood: negative, getting worse (0.42 -> 0.18)."),
    "order_ids": ["A10293"],
    "attempts": 3,
    "sentiment": {"mood": "negative", "trend": [0.42, 0.31, 0.18]},
    "business_hours": {"open": True},
    "created_at": "2025-11-24T13:05:42.118Z",
    "messages": [
        {"role": "user", "content": "My order A10293 arrived broken, I returned it two weeks ago. Where is my refund?",
         "at": "2025-11-24T13:02:10.004Z"},
        {"role": "assistant", "content": "Refunds are issued within 5-10 business days after we receive the "
         "return. Your return was received on 12 November.", "at": "2025-11-24T13:02:11.870Z"},
        {"role": "user", "content": "It has been 12 days. I still have nothing. Email me at [email].",
         "at": "2025-11-24T13:04:01.512Z"},
        {"role": "assistant", "content": "I understand. The refund for A10293 shows as processing.",
         "at": "2025-11-24T13:04:03.020Z"},
        {"role": "user", "content": "This is ridiculous, I want my money back now.",
         "at": "2025-11-24T13:05:41.977Z"},
    ],
    "source": "ngx_support_agent",
}


def ticket(cid=None, **changes):
    """The fixture for another conversation (cid) and/or with some fields changed."""
    t = copy.deepcopy(TICKET)
    if cid is not None:
        t["external_id"] = t["conversation_id"] = cid
    t.update(changes)
    return t


def key_of(t):
    return "handoff-" + t["conversation_id"]


def start(*extra):
    return selftest_util.start(SERVER, TMP, *extra)


def setUpModule():
    global PROC, PORT, KEY_PROC, KEY_PORT, NOVAL_PROC, NOVAL_PORT
    PROC, PORT = start("--record-dir", REC)
    KEY_PROC, KEY_PORT = start("--require-key", API_KEY)
    NOVAL_PROC, NOVAL_PORT = start("--no-validate")


def tearDownModule():
    for p in (PROC, KEY_PROC, NOVAL_PROC):
        selftest_util.stop(p)
    shutil.rmtree(TMP, ignore_errors=True)


def request(path, obj=None, raw=None, headers=None, method="POST", sock=None, keep=False, timeout=5,
            port=None, key=None, chunked=False):
    """One request; headers: Content-Type application/json, Idempotency-Key (key=, default the
    key of obj), Content-Length (or chunked); a header given as None is left out."""
    payload = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
    h = {"Host": "127.0.0.1"}
    if method == "POST":
        h["Content-Type"] = "application/json"
        if key is None and isinstance(obj, dict) and isinstance(obj.get("conversation_id"), str):
            key = key_of(obj)
        h["Idempotency-Key"] = key
        if chunked:
            h["Transfer-Encoding"] = "chunked"
        else:
            h["Content-Length"] = str(len(payload))
    if not keep:
        h["Connection"] = "close"
    h.update(headers or {})
    return selftest_util.exchange(port or PORT, method, path, h, payload, sock=sock, keep=keep, timeout=timeout,
                                  chunk=100 if chunked else 0)


def get(path, port=None):
    r = request(path, method="GET", port=port)
    assert r.status in (200, 404), r.status
    return r.json()


def records(query="", port=None):
    return get("/_requests" + query, port)


def last_record(port=None):
    return records("?last=1", port)[0]


def tickets(port=None):
    return get("/tickets", port)["tickets"]


class T(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        for p in (PORT, KEY_PORT, NOVAL_PORT):
            self.assertEqual(request("/_reset", method="POST", port=p, key="-").status, 200)

    def created(self, r, tid, wait=4):
        self.assertEqual(r.status, 201, r.body)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        want = {"id": tid, "status": "open"}
        if wait is not None:
            want["estimated_wait_minutes"] = wait
        self.assertEqual(r.json(), want)
        self.assertNotIn("idempotent-replayed", r.headers)

    def err(self, r, status, message=None):
        self.assertEqual(r.status, status, r.body)
        o = r.json()
        self.assertEqual(list(o), ["error"])
        if message is not None:
            self.assertIn(message, o["error"])
        return o["error"]

    # ---------------------------------------------------------------- fixture, CLI, control
    def test_fixture_is_valid(self):
        v = helpdesk_server.Validator()
        self.assertEqual(v.check(TICKET), [])
        self.assertEqual(helpdesk_server.contract_warnings(key_of(TICKET), TICKET), [])
        self.assertEqual(v.check(ticket("c_" + "0" * 32, intent=None, order_ids=[])), [])

    def test_health_404_405(self):
        self.assertEqual(request("/_health", method="GET").body, b"ok\n")
        self.err(request("/nope", TICKET), 404, "no endpoint POST /nope")
        rec = last_record()
        self.assertEqual((rec["scenario"], rec["status"], rec["outcome"]), (None, 404, "error"))
        self.err(request("/a/b/tickets", TICKET), 404)
        self.err(request("/tickets/HD-1001", TICKET), 404)
        r = request("/tickets", TICKET, method="PUT", headers={"Content-Length": str(len(json.dumps(TICKET)))})
        self.err(r, 405)
        self.assertEqual(r.headers["allow"], "GET, POST")
        self.assertEqual(last_record()["scenario"], "")
        self.assertEqual(get("/tickets/HD-1001"), {"error": "no ticket HD-1001"})
        self.assertEqual(tickets(), [])

    # ---------------------------------------------------------------- creation and deduplication
    def test_create_and_list(self):
        a, b = ticket("c_aaaa1111"), ticket("c_bbbb2222", priority="urgent")
        self.created(request("/tickets", a), "HD-1001")
        r = request("/tickets", b)
        self.created(r, "HD-1002")
        self.assertEqual(r.headers["location"], "/tickets/HD-1002")
        ts = tickets()
        self.assertEqual([(t["id"], t["idempotency_key"], t["deliveries"], t["posts"]) for t in ts],
                         [("HD-1001", "handoff-c_aaaa1111", 1, 1), ("HD-1002", "handoff-c_bbbb2222", 1, 1)])
        self.assertEqual(ts[1]["body"], b)
        self.assertIsInstance(ts[0]["created"], float)
        self.assertEqual(get("/tickets/HD-1002"), ts[1])
        # GET under a scenario prefix lists the same
        self.assertEqual(get("/fail=500/tickets")["tickets"], ts)
        rec = last_record()
        self.assertEqual(rec["ticket"], "HD-1002")
        self.assertEqual((rec["status"], rec["outcome"], rec["valid"], rec["errors"], rec["warnings"]),
                         (201, "created", True, [], []))
        # GET /tickets is not recorded
        self.assertEqual(len(records()), 2)

    def test_long_poll(self):
        """GET /tickets?min=N&wait=S and /_requests?min=N&wait=S wait for what a worker delivers later."""
        async def scenario():
            async def post_later():
                await asyncio.sleep(0.3)
                await asyncio.get_running_loop().run_in_executor(None, request, "/tickets", TICKET)
                return time.monotonic()
            return await asyncio.gather(selftest_util.timed_get(PORT, "/tickets?min=1&wait=5"),
                                        selftest_util.timed_get(PORT, "/_requests?min=1&wait=5&scenario="),
                                        post_later())
        (t1, o1), (t2, o2), posted = asyncio.run(scenario())
        self.assertEqual([t["id"] for t in o1["tickets"]], ["HD-1001"])
        self.assertEqual(o1["tickets"][0]["deliveries"], 1)
        self.assertEqual([r["outcome"] for r in o2], ["created"])
        self.assertGreaterEqual(min(t1, t2), posted - 0.25)
        # a timeout answers what there is
        t0 = time.monotonic()
        self.assertEqual(len(get("/tickets?min=2&wait=0.2")["tickets"]), 1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertEqual(len(get("/tickets?min=x")["tickets"]), 1)  # ignored

    def test_duplicate_delivery(self):
        self.created(request("/tickets", TICKET), "HD-1001")
        for i in range(2):
            r = request("/tickets", TICKET)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json(), {"id": "HD-1001", "status": "open", "estimated_wait_minutes": 4})
            self.assertEqual(r.headers["idempotent-replayed"], "true")
        # the same document serialised otherwise is the same body
        raw = json.dumps(TICKET, indent=2, sort_keys=True).encode()
        self.assertEqual(request("/tickets", raw=raw, key=key_of(TICKET)).status, 200)
        ts = tickets()
        self.assertEqual(len(ts), 1)
        self.assertEqual((ts[0]["deliveries"], ts[0]["posts"]), (4, 4))
        self.assertEqual([r["outcome"] for r in records()], ["created", "duplicate", "duplicate", "duplicate"])

    def test_key_reused_with_other_body(self):
        self.created(request("/tickets", TICKET), "HD-1001")
        other = ticket(priority="urgent")
        self.err(request("/tickets", other), 409, "Idempotency-Key reused with a different body")
        rec = last_record()
        self.assertEqual((rec["status"], rec["outcome"], rec["ticket"], rec["valid"]), (409, "conflict", "HD-1001", True))
        self.assertEqual([(t["deliveries"], t["posts"]) for t in tickets()], [(1, 1)])
        # the same body under another key is another ticket (the helpdesk does not look at external_id)
        r = request("/tickets", TICKET, key="handoff-other")
        self.created(r, "HD-1002")
        self.assertEqual(last_record()["warnings"],
                         ["Idempotency-Key 'handoff-other' is not 'handoff-' + conversation_id"])

    def test_concurrent_same_key(self):
        data = json.dumps(TICKET).encode()

        async def one():
            out = await selftest_util.async_exchange(PORT, (
                b"POST /delay=50/tickets HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json"
                b"\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s" % (key_of(TICKET).encode(), len(data), data)))
            return int(out.split(b" ")[1])

        async def many():
            return await asyncio.gather(*(one() for _ in range(30)))
        statuses = asyncio.run(many())
        self.assertEqual(sorted(statuses), [200] * 29 + [201])
        ts = tickets()
        self.assertEqual([(t["id"], t["deliveries"]) for t in ts], [("HD-1001", 30)])

    # ---------------------------------------------------------------- request checks
    def test_idempotency_key_required(self):
        self.err(request("/tickets", TICKET, headers={"Idempotency-Key": None}), 400, "Idempotency-Key required")
        self.err(request("/tickets", TICKET, key=""), 400, "Idempotency-Key required")
        rec = last_record()
        self.assertEqual((rec["idempotency_key"], rec["status"], rec["body"]), ("", 400, TICKET))
        self.assertEqual(tickets(), [])

    def test_content_type(self):
        self.err(request("/tickets", TICKET, headers={"Content-Type": "text/plain"}), 415)
        self.assertEqual(last_record()["content_type"], "text/plain")
        self.err(request("/tickets", TICKET, headers={"Content-Type": None}), 415)
        rec = last_record()
        self.assertEqual((rec["content_type"], rec["valid"]), (None, False))
        self.created(request("/tickets", TICKET, headers={"Content-Type": "application/json; charset=utf-8"}),
                     "HD-1001")

    def test_bad_json(self):
        for raw in (b"{", b"", b"\xff\xfe", b'{"a": NaN}'):
            self.err(request("/tickets", raw=raw, key="handoff-c_x"), 400, "invalid JSON")
            rec = last_record()
            self.assertEqual((rec["body"], rec["valid"], rec["errors"]), (None, False, ["body is not JSON"]))
        self.assertEqual(tickets(), [])

    def test_schema_validation(self):
        cases = [
            (ticket(priority="medium"), "/priority: 'medium' is not one of"),
            (ticket(reason="angry"), "/reason: 'angry' is not one of"),
            (ticket(source="other"), "/source: 'ngx_support_agent' was expected"),
            (ticket(conversation_id="c 1", external_id="c 1"), "/conversation_id: 'c 1' does not match"),
            (ticket(created_at="2025-11-24 13:05:42"), "/created_at: '2025-11-24 13:05:42' does not match"),
            (ticket(subject=""), "/subject: '' is too short"),
            (ticket(attempts=-1), "/attempts: -1 is less than the minimum of 0"),
            (ticket(attempts=1.5), "/attempts: 1.5 is not of type 'integer'"),
            (ticket(messages=[]), "/messages: [] is too short"),
            (ticket(sentiment={"mood": "negative", "trend": [1.2]}), "/sentiment/trend/0: 1.2 is greater than"),
            (ticket(business_hours={"open": True, "tz": "UTC"}), "/business_hours: Additional properties"),
            (ticket(order_ids=["A1"] * 17), "/order_ids: ["),
            (ticket(customer_email="a@example.com"), "/: Additional properties are not allowed ('customer_email'"),
        ]
        t = ticket()
        del t["summary"]
        cases.append((t, "/: 'summary' is a required property"))
        t = ticket()
        t["messages"][1]["role"] = "system"
        cases.append((t, "/messages/1/role: 'system' is not one of"))
        for body, message in cases:
            e = self.err(request("/tickets", body, key="handoff-" + TICKET["conversation_id"]), 422)
            self.assertTrue(e.startswith("invalid ticket: "), e)
            self.assertIn(message, e)
            rec = last_record()
            self.assertEqual((rec["valid"], rec["status"], rec["outcome"]), (False, 422, "error"))
            self.assertTrue(any(x.startswith(message) for x in rec["errors"]), rec["errors"])
        # every error is reported, sorted by path
        e = self.err(request("/tickets", ticket(priority="x", attempts="3")), 422)
        self.assertLess(e.index("/attempts"), e.index("/priority"))
        self.assertEqual(len(last_record()["errors"]), 2)
        self.assertEqual(tickets(), [])

    def test_no_validate(self):
        body = {"hello": "world", "conversation_id": "c_nv"}
        r = request("/tickets", body, port=NOVAL_PORT)
        self.created(r, "HD-1001")
        rec = last_record(NOVAL_PORT)
        self.assertEqual((rec["valid"], rec["errors"]), (None, []))
        self.assertEqual(rec["warnings"], ["external_id differs from conversation_id"])
        # the other checks stay
        self.err(request("/tickets", raw=b"[", key="k", port=NOVAL_PORT), 400, "invalid JSON")
        self.err(request("/tickets", body, key="", port=NOVAL_PORT), 400)
        self.assertEqual(request("/tickets", [1, 2], key="k2", port=NOVAL_PORT).status, 201)

    def test_warnings(self):
        t = ticket(external_id="c_other")
        t["messages"][0]["at"] = "2025-11-24T13:09:00.000Z"
        self.created(request("/tickets", t, key="handoff-c_wrong"), "HD-1001")
        self.assertEqual(last_record()["warnings"], [
            "Idempotency-Key 'handoff-c_wrong' is not 'handoff-' + conversation_id",
            "external_id differs from conversation_id", "messages are not oldest first"])

    def test_auth(self):
        self.err(request("/tickets", TICKET, port=KEY_PORT), 401, "authentication required")
        rec = last_record(KEY_PORT)
        self.assertEqual((rec["authorization"], rec["status"]), (False, 401))
        self.err(request("/tickets", TICKET, port=KEY_PORT, headers={"Authorization": "Basic eDp5"}), 401, "malformed")
        self.err(request("/tickets", TICKET, port=KEY_PORT, headers={"Authorization": "Bearer nope"}), 401,
                 "invalid API key")
        self.assertTrue(last_record(KEY_PORT)["authorization"])
        r = request("/tickets", TICKET, port=KEY_PORT, headers={"Authorization": "Bearer " + API_KEY})
        self.created(r, "HD-1001")
        # auth comes before the other checks; the token is never echoed
        self.err(request("/tickets", raw=b"{", port=KEY_PORT, key=""), 401)
        self.err(request("/tickets", raw=b"{", port=KEY_PORT, key="", headers={"Authorization": "Bearer " + API_KEY}),
                 400, "Idempotency-Key required")
        dump = request("/_requests", method="GET", port=KEY_PORT).body
        self.assertNotIn(API_KEY.encode(), dump)
        self.assertNotIn(b"nope", dump)
        # without --require-key any Authorization is accepted (and recorded as present)
        self.created(request("/tickets", TICKET, headers={"Authorization": "Bearer whatever"}), "HD-1001")
        self.assertIs(last_record()["authorization"], True)
        # control endpoints need no key
        self.assertEqual(len(tickets(KEY_PORT)), 1)

    # ---------------------------------------------------------------- transport
    def test_keep_alive_and_chunked(self):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        a, b = ticket("c_keep1"), ticket("c_keep2")
        r = request("/tickets", a, sock=s, keep=True)
        self.created(r, "HD-1001")
        self.assertEqual(r.headers["connection"], "keep-alive")
        self.created(request("/tickets", b, sock=s, keep=True, chunked=True), "HD-1002")
        self.assertEqual(request("/tickets", a, sock=s, keep=True, chunked=True).status, 200)
        self.err(request("/tickets", a, sock=s, keep=True, key=""), 400)  # an error keeps the connection
        r = request("/_requests", method="GET", sock=s, keep=True)
        self.assertEqual([x["status"] for x in r.json()], [201, 201, 200, 400])
        self.assertEqual(r.json()[1]["body"], b)
        s.close()
        # 100-continue
        r = request("/tickets", ticket("c_cont"), headers={"Expect": "100-continue"})
        self.assertEqual((r.informational, r.status), (100, 201))

    # ---------------------------------------------------------------- scenarios
    def test_fail_then_succeed(self):
        statuses = []
        for _ in range(4):
            r = request("/fail=503:2/tickets", TICKET)
            statuses.append(r.status)
            if r.status == 503:
                self.assertEqual(r.json(), {"error": "scripted 503 from helpdesk_server.py"})
                self.assertNotIn("retry-after", r.headers)
        self.assertEqual(statuses, [503, 503, 201, 200])  # no cycling: normal after the first two
        self.assertEqual([(t["id"], t["deliveries"], t["posts"]) for t in tickets()], [("HD-1001", 2, 2)])
        self.assertEqual([(x["outcome"], x["ticket"]) for x in records("?scenario=fail=503:2")],
                         [("error", None), ("error", None), ("created", "HD-1001"), ("duplicate", "HD-1001")])

    def test_fail_forms(self):
        r = request("/fail=429/tickets", TICKET)
        self.err(r, 429)
        self.assertEqual(r.headers["retry-after"], "1")
        self.assertEqual(request("/fail=429/tickets", TICKET).status, 429)  # no :N = always
        r = request("/fail=500:1,ra=7/tickets", TICKET)
        self.assertEqual((r.status, r.headers["retry-after"]), (500, "7"))
        r = request("/fail=429:1,ra=3/tickets", TICKET)
        self.assertEqual((r.status, r.headers["retry-after"]), (429, "3"))
        # counters are per exact scenario string
        self.assertEqual(request("/fail=500:1/tickets", TICKET).status, 500)
        self.assertEqual(request("/fail=500:1,ra=7/tickets", TICKET).status, 201)
        self.assertEqual(request("/fail=500:1/tickets", TICKET).status, 200)
        # requests refused by the checks are not counted
        self.assertEqual(request("/fail=502:1/tickets", TICKET, key="").status, 400)
        self.assertEqual(request("/fail=502:1/tickets", TICKET).status, 502)

    def test_bad_scenario(self):
        for scn in ("fail=abc", "fail=99", "delay=x", "delay=10:x", "hang=soon", "reset=1", "reset:x",
                    "wait=-1", "wait=soon", "zendesk=1", "bogus", "noid:", "badid=1"):
            e = self.err(request("/%s/tickets" % scn, TICKET), 400)
            self.assertTrue(e.startswith("bad_scenario: "), (scn, e))
        self.assertEqual(tickets(), [])

    def test_delay_then_dedup(self):
        """A client that times out during the delay retries: the ticket exists already."""
        t0 = time.monotonic()
        r = request("/delay=300/tickets", TICKET)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.created(r, "HD-1001")
        s = socket.create_connection(("127.0.0.1", PORT), timeout=0.1)
        with self.assertRaises(socket.timeout):
            request("/delay=400:1/tickets", ticket("c_slow"), sock=s)
        s.close()
        time.sleep(0.1)
        ts = tickets()
        self.assertEqual([(t["id"], t["deliveries"], t["posts"]) for t in ts], [("HD-1001", 1, 1), ("HD-1002", 0, 1)])
        rec = last_record()
        self.assertEqual((rec["outcome"], rec["status"], rec["ticket"]), ("client_closed", None, "HD-1002"))
        t0 = time.monotonic()
        r = request("/delay=400:1/tickets", ticket("c_slow"))
        self.assertLess(time.monotonic() - t0, 0.3)
        self.assertEqual((r.status, r.json()["id"]), (200, "HD-1002"))
        self.assertEqual([(t["deliveries"], t["posts"]) for t in tickets()], [(1, 1), (1, 2)])

    def test_hang(self):
        t0 = time.monotonic()
        r = request("/hang=0.3/tickets", TICKET)
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.assertIsNone(r.status)
        self.assertEqual(r.body, b"")
        self.assertEqual(last_record()["outcome"], "hang_timeout")
        s = socket.create_connection(("127.0.0.1", PORT), timeout=0.1)
        with self.assertRaises(socket.timeout):
            request("/hang/tickets", TICKET, sock=s)
        s.close()
        time.sleep(0.1)
        self.assertEqual(last_record()["outcome"], "client_closed")
        self.assertEqual(tickets(), [])

    def test_reset_and_close(self):
        r = request("/reset:1/tickets", TICKET)
        self.assertTrue(r.reset or r.status is None)
        self.assertEqual(r.body, b"")
        self.assertEqual(last_record()["outcome"], "reset")
        self.assertEqual(tickets(), [])
        self.created(request("/reset:1/tickets", TICKET), "HD-1001")
        r = request("/close/tickets", ticket("c_close"))
        self.assertEqual((r.status, r.body, r.reset), (None, b"", False))
        self.assertEqual(last_record()["outcome"], "closed")
        self.assertEqual(len(tickets()), 1)

    def test_badjson_then_dedup(self):
        r = request("/badjson:1/tickets", TICKET)
        self.assertEqual(r.status, 201)
        with self.assertRaises(ValueError):
            json.loads(r.body)
        self.assertTrue(r.body.startswith(b'{"id":"HD-1001"'))
        r = request("/badjson:1/tickets", TICKET)
        self.assertEqual((r.status, r.json()["id"]), (200, "HD-1001"))
        self.assertEqual([(t["deliveries"], t["posts"]) for t in tickets()], [(2, 2)])

    def test_noid_then_dedup(self):
        r = request("/noid:1/tickets", TICKET)
        self.assertEqual((r.status, r.json()), (201, {"status": "open"}))
        r = request("/noid:1/tickets", TICKET)
        self.assertEqual((r.status, r.json()["id"]), (200, "HD-1001"))
        r = request("/noid/tickets", ticket("c_noid"))
        self.assertEqual((r.status, r.json()), (201, {"status": "open"}))
        self.assertEqual(len(tickets()), 2)

    def test_badid_then_dedup(self):
        r = request("/badid:1/tickets", TICKET)
        self.assertEqual((r.status, r.json()), (201, {"id": "HD-1001 <script>", "status": "open",
                                                      "estimated_wait_minutes": 4}))
        r = request("/badid:1/tickets", TICKET)
        self.assertEqual((r.status, r.json()["id"]), (200, "HD-1001"))
        r = request("/badid,zendesk/tickets", ticket("c_bz"))
        self.assertEqual(r.json()["ticket"]["id"], "35437 <script>")
        self.assertEqual([t["id"] for t in tickets()], ["HD-1001", 35437])

    def test_zendesk(self):
        r = request("/zendesk/tickets", TICKET)
        self.assertEqual(r.status, 201)
        o = r.json()
        self.assertEqual(list(o), ["ticket"])
        z = o["ticket"]
        self.assertEqual((z["id"], z["status"], z["external_id"], z["subject"], z["priority"], z["tags"]),
                         (35436, "new", TICKET["external_id"], TICKET["subject"], "high", ["repetition", "refund_status"]))
        self.assertEqual(z["url"], "https://example.zendesk.com/api/v2/tickets/35436.json")
        self.assertRegex(z["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(get("/tickets/35436")["id"], 35436)
        r = request("/zendesk,wait=0/tickets", ticket("c_z2", intent=None))
        o = r.json()
        self.assertEqual((o["ticket"]["id"], o["ticket"]["tags"], o["estimated_wait_minutes"]), (35437, ["repetition"], 0))
        # a duplicate in the plain shape keeps the integer id
        r = request("/tickets", TICKET)
        self.assertEqual((r.status, r.json()["id"]), (200, 35436))
        # as a stand-in for Zendesk behind an adapter (--no-validate): a Zendesk-shaped body
        zt = {"ticket": {"subject": "S", "comment": {"body": "B", "public": False}, "priority": "urgent",
                         "external_id": "c_z", "tags": ["support_agent", "handoff_explicit"]}}
        r = request("/zendesk/tickets", zt, key="handoff-c_z", port=NOVAL_PORT)
        z = r.json()["ticket"]
        self.assertEqual((r.status, z["id"], z["subject"], z["priority"], z["external_id"], z["tags"]),
                         (201, 35436, "S", "urgent", "c_z", ["support_agent", "handoff_explicit"]))

    def test_wait(self):
        self.created(request("/wait=0/tickets", ticket("c_w0")), "HD-1001", wait=0)
        self.created(request("/wait=12/tickets", ticket("c_w12")), "HD-1002", wait=12)
        self.created(request("/wait=2.5/tickets", ticket("c_w25")), "HD-1003", wait=2.5)
        self.created(request("/wait=none/tickets", ticket("c_wn")), "HD-1004", wait=None)
        # options combine
        r = request("/fail=503:1,delay=10,wait=none/tickets", ticket("c_combo"))
        self.assertEqual(r.status, 503)
        self.created(request("/fail=503:1,delay=10,wait=none/tickets", ticket("c_combo")), "HD-1005", wait=None)

    # ---------------------------------------------------------------- records and reset
    def test_records(self):
        self.created(request("/wait=1/tickets?x=1", TICKET, headers={"Authorization": "Bearer t0ken"}), "HD-1001", wait=1)
        rec = last_record()
        self.assertEqual(list(rec), ["seq", "time", "method", "path", "scenario", "idempotency_key", "authorization",
                                     "content_type", "body", "valid", "errors", "warnings", "status", "outcome",
                                     "ticket"])
        self.assertEqual((rec["method"], rec["path"], rec["scenario"], rec["idempotency_key"], rec["authorization"],
                          rec["content_type"], rec["body"], rec["valid"], rec["status"]),
                         ("POST", "/wait=1/tickets?x=1", "wait=1", key_of(TICKET), True, "application/json",
                          TICKET, True, 201))
        self.assertLess(abs(rec["time"] - time.time()), 5)
        self.assertNotIn(b"t0ken", request("/_requests", method="GET").body)
        request("/fail=500/tickets", ticket("c_r2"))
        seqs = [r["seq"] for r in records()]
        self.assertEqual(seqs, [rec["seq"], rec["seq"] + 1])  # seq goes on across resets: record file names
        self.assertEqual([r["seq"] for r in records("?last=1")], seqs[1:])
        self.assertEqual(records("?last=0"), [])
        self.assertEqual([r["seq"] for r in records("?scenario=fail%3D500")], seqs[1:])
        # DELETE /_requests: records and counters go, tickets stay
        self.assertEqual(request("/fail=500:1/tickets", ticket("c_r3")).status, 500)
        self.assertEqual(request("/_requests", method="DELETE").json(), {"cleared": True})
        self.assertEqual(records(), [])
        self.assertEqual(request("/fail=500:1/tickets", ticket("c_r3")).status, 500)
        self.assertEqual(len(tickets()), 1)
        # /_reset: everything, ids restart
        self.assertEqual(request("/_reset", method="POST", key="-").json(), {"cleared": True})
        self.assertEqual((records(), tickets()), ([], []))
        self.created(request("/tickets", ticket("c_r4")), "HD-1001")

    def test_record_dir_and_check(self):
        a = ticket("c_rec1")
        request("/tickets", a)
        request("/fail=500/tickets", ticket("c_rec2"))
        request("/tickets", raw=b'{"not": "a ticket"}', key="k")
        request("/_health", method="GET")
        seqs = [r["seq"] for r in records()]
        files = sorted(os.path.basename(f) for f in glob.glob(os.path.join(REC, "*")))
        for s in seqs:
            self.assertIn("%06d-ticket.json" % s, files)
        with open(os.path.join(REC, "%06d-ticket.json" % seqs[0]), "rb") as f:
            self.assertEqual(json.loads(f.read()), a)
        one = os.path.join(TMP, "one")
        os.makedirs(one, exist_ok=True)
        shutil.copy(os.path.join(REC, "%06d-ticket.json" % seqs[0]), one)
        out = subprocess.run(["/usr/bin/python3", SERVER, "check", one], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn("1 of 1 ticket files valid", out.stdout)
        out = subprocess.run(["/usr/bin/python3", SERVER, "check", REC], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("%06d-ticket.json: INVALID: /: " % seqs[2], out.stdout)
        out = subprocess.run(["/usr/bin/python3", SERVER, "check", os.path.join(TMP, "none")],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)

    def test_schema_file(self):
        """The schema the server checks against is docs/handoff-ticket.schema.json, Draft 2020-12."""
        with open(helpdesk_server.SCHEMA) as f:
            s = json.load(f)
        self.assertEqual(s["$schema"], "https://json-schema.org/draft/2020-12/schema")
        self.assertEqual(sorted(s["required"]), sorted(TICKET))


if __name__ == "__main__":
    verbosity = 2 if "-v" in sys.argv else 1
    t0 = time.monotonic()
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("helpdesk_server_selftest: %d passed, %d failed (%.1f s)" % (res.testsRun - failed, failed,
                                                                     time.monotonic() - t0))
    sys.exit(0 if res.wasSuccessful() else 1)
