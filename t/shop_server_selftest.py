#!/usr/bin/python3
"""Self-test of t/shop_server.py: starts it (as the suites do, via its CLI) and drives every
endpoint, rule, scenario option and error path over raw sockets: order lookups, the two identity
paths, refunds (by amount, by items, refused), address changes and cancellations (only pending),
idempotency (replay, 409), auth, strict validation, /_reset, --db, --seed-tau, and the `check`
subcommand on the recorded bodies. Every answer of the API is checked against the response
schema of docs/shop-api.openapi.json (and the schemas themselves with python3-jsonschema when it
is installed).

    /usr/bin/python3 t/shop_server_selftest.py [-v]     exit 0 = all passed
"""
import asyncio
import calendar
import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no t/__pycache__ in the work tree
import selftest_util  # noqa: E402
import shop_server  # noqa: E402

try:
    import jsonschema
except ImportError:
    jsonschema = None

SERVER = os.path.join(HERE, "shop_server.py")
SEED = os.path.join(HERE, "fixtures", "shop-seed.json")
TAU = os.path.join(os.path.dirname(HERE), "..", "shared", "data", "tau-retail")
TMP = tempfile.mkdtemp(prefix="shop-selftest-")
REC = os.path.join(TMP, "rec")
DB = os.path.join(TMP, "shop.db")
API_KEY = "shop-secret-token-42"
SPEC = shop_server.Spec()
PORT = KEY_PORT = NOVAL_PORT = TAU_PORT = None
PROCS = []

# fixture orders by what they are
PROCESSED = "#W2611340"      # james_li_5688, gift card, 536.65, 2 items
DELIVERED = "#W4435622"      # james_li_5688, gift card, 287.54: Hiking Boots 239.78 + Water Bottle 47.76
DELIVERED_5 = "#W2378156"    # yusuf_rossi_9620, credit card, 5 items
DUP = "#W4316152"            # aarav_anderson_8794, gift card: the same Tea Kettle (7292993796) twice
PENDING = "#W6247578"        # yusuf_rossi_9620, credit card, 53.27
PENDING_GIFT = "#W4836353"   # amelia_silva_7726, gift card
PENDING_PAYPAL = "#W2166301"  # yusuf_hernandez_6785, paypal
PROCESSED_PAYPAL = "#W1994898"
CANCELLED = "#W9711842"      # yusuf_rossi_9620
ADDRESS = {"address1": "12 Elm Street", "address2": "", "city": "Austin", "state": "TX", "zip": "73301",
           "country": "USA"}


def enc(oid):
    return urllib.parse.quote(oid, safe="")


def start(*extra):
    proc, port_file = selftest_util.spawn(SERVER, TMP, *extra)
    PROCS.append(proc)
    return proc, port_file


def setUpModule():
    global PORT, KEY_PORT, NOVAL_PORT, TAU_PORT
    # started together: --seed-tau takes longest
    pending = [start("--record-dir", REC), start("--require-key", API_KEY), start("--no-validate", "--db", DB)]
    if os.path.isdir(TAU):
        pending.append(start("--seed-tau", TAU))
    ports = [selftest_util.started(*p) for p in pending]
    PORT, KEY_PORT, NOVAL_PORT = ports[:3]
    TAU_PORT = ports[3] if len(ports) > 3 else None


def tearDownModule():
    for p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            assert p.wait(5) == 0
        p.stdout.close()
    shutil.rmtree(TMP, ignore_errors=True)


def request(path, obj=None, raw=None, method=None, key=None, headers=None, sock=None, keep=False, timeout=5,
            port=None, chunked=False):
    """One request; a body (obj as JSON, or raw bytes) gets Content-Type application/json and
    Content-Length (or chunked); key: the Idempotency-Key; a header given as None is left out."""
    payload = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
    has_body = raw is not None or obj is not None
    method = method or ("POST" if has_body else "GET")
    h = {"Host": "127.0.0.1"}
    if has_body:
        h["Content-Type"] = "application/json"
        if chunked:
            h["Transfer-Encoding"] = "chunked"
        else:
            h["Content-Length"] = str(len(payload))
    if key is not None:
        h["Idempotency-Key"] = key
    if not keep:
        h["Connection"] = "close"
    h.update(headers or {})
    return selftest_util.exchange(port or PORT, method, path, h, payload, sock=sock, keep=keep, timeout=timeout,
                                  chunk=50 if chunked else 0)


def control(path, port=None, method="GET"):
    r = request(path, method=method, port=port)
    assert r.status in (200, 404), (path, r.status)
    return r.json()


def records(query="", port=None):
    return control("/_requests" + query, port)


def last_record(port=None):
    return records("?last=1", port)[0]


def refunds(port=None):
    return control("/_refunds", port)["refunds"]


def order(oid, port=None):
    """The order's state, without a record."""
    return control("/_orders/" + enc(oid), port)


def gift_balance(email, pm_id, port=None):
    r = request("/api/customers?email=" + urllib.parse.quote(email), port=port)
    return next(p["balance"] for p in r.json()["customer"]["payment_methods"] if p["id"] == pm_id)


def seed():
    with open(SEED) as f:
        return json.load(f)


class T(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        for p in (PORT, KEY_PORT, NOVAL_PORT):
            self.assertEqual(request("/_reset", method="POST", port=p).status, 200)

    # ---------------------------------------------------------------- helpers
    def conforms(self, op, r):
        """The answer is what docs/shop-api.openapi.json says for this operation and status."""
        schema = SPEC.response_schema(op, r.status)
        self.assertIsNotNone(schema, "%s: status %d is not documented" % (op, r.status))
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        o = r.json()
        self.assertEqual(SPEC.check(schema, o), [], o)
        if jsonschema is not None:
            v = jsonschema.Draft202012Validator(dict(SPEC.doc, **schema))
            self.assertEqual([e.message for e in v.iter_errors(o)], [])
        return o

    def err(self, r, status, code, detail=None, op=None):
        self.assertEqual(r.status, status, r.body)
        o = r.json()
        self.assertEqual(list(o), ["error", "detail"])
        self.assertEqual(o["error"], code, o)
        if detail is not None:
            self.assertIn(detail, o["detail"])
        if op is not None:
            self.conforms(op, r)
        return o["detail"]

    def refund(self, oid, body, key, **kw):
        return request("/api/orders/%s/refunds" % enc(oid), body, key=key, **kw)

    def cancel(self, oid, reason="no longer needed", key=None, **kw):
        return request("/api/orders/%s/cancel" % enc(oid), {"reason": reason}, key=key, **kw)

    def patch(self, oid, address, key=None, **kw):
        return request("/api/orders/%s/shipping_address" % enc(oid), address, method="PATCH", key=key, **kw)

    # ---------------------------------------------------------------- the document and the fixture
    def test_spec(self):
        doc = SPEC.doc
        self.assertEqual(doc["openapi"], "3.1.0")
        self.assertEqual(sorted(SPEC.ops), ["cancel_order", "create_refund", "find_customer", "get_order",
                                            "get_product", "update_shipping_address"])
        self.assertEqual({o["id"]: o["key"] for o in SPEC.ops.values()},
                         {"get_order": None, "find_customer": None, "get_product": None, "create_refund": True,
                          "update_shipping_address": False, "cancel_order": False})
        # a keyword the server does not check cannot slip into the document
        bad = json.loads(json.dumps(doc))
        bad["components"]["schemas"]["CancelRequest"]["minProperties"] = 1
        path = os.path.join(TMP, "bad-spec.json")
        with open(path, "w") as f:
            json.dump(bad, f)
        with self.assertRaisesRegex(shop_server.SpecError, "minProperties"):
            shop_server.Spec(path)
        if jsonschema is None:
            self.skipTest("python3-jsonschema not installed: the schemas are not cross-checked")
        for name, s in doc["components"]["schemas"].items():
            jsonschema.Draft202012Validator.check_schema(s)
        # the server's validator and jsonschema agree on the request bodies
        samples = {
            "RefundRequest": [{"amount": 10}, {"amount": 10.5, "reason": "late"}, {"item_ids": ["1234567890"]},
                              {}, {"amount": 1, "item_ids": ["1"]}, {"amount": 0}, {"amount": -1}, {"amount": "1"},
                              {"item_ids": []}, {"item_ids": ["x"]}, {"amount": 1, "reason": "r" * 201},
                              {"amount": 1, "note": "x"}, [], {"amount": 1000001}, {"amount": True}],
            "Address": [ADDRESS, dict(ADDRESS, zip="1234"), dict(ADDRESS, state="Texas"),
                        dict(ADDRESS, country="UK", zip="SW1A 1AA", state="London"), dict(ADDRESS, city=""),
                        dict(ADDRESS, extra="x"), {k: v for k, v in ADDRESS.items() if k != "city"},
                        dict(ADDRESS, zip=73301)],
            "CancelRequest": [{"reason": "no longer needed"}, {"reason": "ordered by mistake"}, {"reason": "x"},
                              {}, {"reason": "no longer needed", "x": 1}],
        }
        for name, bodies in samples.items():
            v = jsonschema.Draft202012Validator(dict(doc, **SPEC.schema(name)))
            for b in bodies:
                self.assertEqual(SPEC.valid(SPEC.schema(name), b), v.is_valid(b), (name, b))

    def test_fixture(self):
        self.assertLess(os.path.getsize(SEED), 40000)
        s = seed()
        users, orders = s["users"], s["orders"]
        self.assertEqual((len(users), len(orders)), (6, 12))
        self.assertEqual({o["status"] for o in orders.values()}, {"pending", "processed", "delivered", "cancelled"})
        sources = {o["payment_history"][0]["payment_method_id"].rsplit("_", 1)[0] for o in orders.values()}
        self.assertEqual(sources, {"gift_card", "credit_card", "paypal"})
        firsts = [u["name"]["first_name"] for u in users.values()]
        self.assertEqual([f for f in set(firsts) if firsts.count(f) > 1], ["Yusuf"])
        self.assertTrue(any(len(o["items"]) >= 5 for o in orders.values()))
        items = [i["item_id"] for i in orders[DUP]["items"]]
        self.assertEqual(len(items), 2 * len(set(items)))
        for uid, u in users.items():
            self.assertEqual(sorted(u["orders"]), sorted(k for k, o in orders.items() if o["user_id"] == uid))
        for o in orders.values():
            for i in o["items"]:
                self.assertEqual(s["products"][i["product_id"]]["variants"][i["item_id"]]["price"], i["price"])
        if os.path.isdir(TAU):  # copied as they are
            with open(os.path.join(TAU, "orders.json")) as f:
                tau = json.load(f)
            for k, o in orders.items():
                self.assertEqual(o, tau[k])

    # ---------------------------------------------------------------- routing, control
    def test_health_404_405(self):
        r = request("/_health")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        self.err(request("/nope"), 404, "not_found", "no endpoint GET /nope")
        self.assertEqual(last_record()["scenario"], None)
        self.err(request("/api/orders"), 404, "not_found")
        self.err(request("/api/orders/%s/refunds/x" % enc(DELIVERED)), 404, "not_found")
        self.err(request("/api"), 404, "not_found")
        self.err(request("/a/b/api/orders/%s" % enc(PENDING)), 404, "not_found")
        r = request("/api/orders/%s" % enc(PENDING), method="DELETE")
        self.err(r, 405, "method_not_allowed", "use GET")
        self.assertEqual(r.headers["allow"], "GET")
        r = request("/api/orders/%s/refunds" % enc(DELIVERED))
        self.err(r, 405, "method_not_allowed")
        self.assertEqual(r.headers["allow"], "POST")
        r = request("/api/customers", {"email": "x"})
        self.assertEqual((r.status, r.headers["allow"]), (405, "GET"))
        r = request("/api/orders/%s/shipping_address" % enc(PENDING), ADDRESS, method="PUT")
        self.assertEqual((r.status, r.headers["allow"]), (405, "PATCH"))
        rec = last_record()
        self.assertEqual((rec["scenario"], rec["operation"], rec["status"], rec["outcome"]), ("", None, 405, "error"))
        self.assertEqual(control("/_orders/%23W0000000"), {"error": "order_not_found", "detail": "no order #W0000000"})

    # ---------------------------------------------------------------- reads
    def test_get_order(self):
        r = request("/api/orders/%23W2611340")
        o = self.conforms("get_order", r)
        self.assertEqual((o["order_id"], o["status"], o["total"], o["currency"], o["refundable_amount"]),
                         (PROCESSED, "processed", 536.65, "USD", 536.65))
        self.assertEqual(o["customer"], {"user_id": "james_li_5688", "email": "james.li4495@example.com",
                                         "name": {"first_name": "James", "last_name": "Li"}, "zip": "10083"})
        self.assertEqual([(i["item_id"], i["name"], i["price"], i["refunded"]) for i in o["items"]],
                         [("6469567736", "Water Bottle", 47.84, False), ("8426249116", "Office Chair", 488.81, False)])
        self.assertEqual(o["items"][0]["options"], {"capacity": "1000ml", "material": "glass", "color": "blue"})
        self.assertEqual(o["shipping_address"], {"address1": "215 River Road", "address2": "Suite 991",
                                                 "city": "New York", "state": "NY", "zip": "10083", "country": "USA"})
        self.assertEqual(list(o["shipping_address"]), ["address1", "address2", "city", "state", "zip", "country"])
        self.assertEqual(o["fulfillments"], [{"tracking_id": ["357962501027"], "item_ids": ["6469567736", "8426249116"]}])
        self.assertEqual(o["payment_history"], [{"transaction_type": "payment", "amount": 536.65,
                                                 "payment_method_id": "gift_card_1725971"}])
        self.assertEqual((o["refunds"], o["cancel_reason"]), ([], None))
        self.assertEqual(o["created_at"], o["updated_at"])
        self.assertEqual(list(o), ["order_id", "status", "customer", "items", "total", "currency", "shipping_address",
                                   "fulfillments", "payment_history", "refunds", "refundable_amount", "cancel_reason",
                                   "created_at", "updated_at"])
        # without the '#', and the dates are the same on every run
        self.assertEqual(request("/api/orders/W2611340").json(), o)
        self.assertEqual(shop_server.seed_time(PROCESSED), o["created_at"])
        rec = last_record()
        self.assertEqual((rec["operation"], rec["order_id"], rec["status"], rec["outcome"]),
                         ("get_order", PROCESSED, 200, "ok"))
        # a cancelled order has nothing left to refund; a 5-item total
        o = self.conforms("get_order", request("/api/orders/" + enc(CANCELLED)))
        self.assertEqual((o["status"], o["refundable_amount"], [t["transaction_type"] for t in o["payment_history"]]),
                         ("cancelled", 0, ["payment", "refund"]))
        o = request("/api/orders/" + enc(DELIVERED_5)).json()
        self.assertEqual((len(o["items"]), o["total"]), (5, 1819.92))
        # unknown orders
        self.err(request("/api/orders/%23W0000000"), 404, "order_not_found", "no order #W0000000", op="get_order")
        self.err(request("/api/orders/nonsense"), 404, "order_not_found", "no order #nonsense")
        self.assertEqual(last_record()["outcome"], "not_found")
        self.err(request("/api/orders/%23W2611340?expand=items"), 400, "invalid_request",
                 "unknown query parameter 'expand'", op="get_order")

    def test_find_customer(self):
        r = request("/api/customers?email=james.li4495%40example.com")
        o = self.conforms("find_customer", r)
        self.assertEqual(o["orders"], [PROCESSED, DELIVERED])
        c = o["customer"]
        self.assertEqual((c["user_id"], c["zip"], c["payment_methods"]),
                         ("james_li_5688", "10083", [{"id": "gift_card_1725971", "source": "gift_card", "balance": 17}]))
        self.assertEqual(request("/api/customers?email=James.Li4495@Example.com").json(), o)
        # name + zip: two customers called Yusuf, told apart by last name and zip
        a = self.conforms("find_customer", request("/api/customers?first_name=Yusuf&last_name=Rossi&zip=19122"))
        b = self.conforms("find_customer", request("/api/customers?first_name=yusuf&last_name=HERNANDEZ&zip=80265"))
        self.assertEqual((a["customer"]["user_id"], b["customer"]["user_id"]), ("yusuf_rossi_9620", "yusuf_hernandez_6785"))
        self.assertEqual(a["customer"]["payment_methods"][0],
                         {"id": "credit_card_9513926", "source": "credit_card", "brand": "mastercard", "last_four": "2478"})
        self.assertEqual(b["customer"]["payment_methods"], [{"id": "paypal_7529813", "source": "paypal"}])
        self.err(request("/api/customers?first_name=Yusuf&last_name=Rossi&zip=80265"), 404, "customer_not_found",
                 "no customer named Yusuf Rossi with zip 80265", op="find_customer")
        self.err(request("/api/customers?email=nobody%40example.com"), 404, "customer_not_found",
                 "no customer with email nobody@example.com")
        for q, detail in (("", "give email, or first_name, last_name and zip"),
                          ("?first_name=Yusuf&last_name=Rossi", "give email"),
                          ("?email=a%40b.c&zip=19122", "give email"),
                          ("?email=", "query parameter email: '' is too short"),
                          ("?email=a&email=b", "'email' given twice"),
                          ("?user_id=james_li_5688", "unknown query parameter 'user_id'")):
            self.err(request("/api/customers" + q), 400, "invalid_request", detail, op="find_customer")

    def test_get_product(self):
        o = self.conforms("get_product", request("/api/products/8310926033"))
        self.assertEqual(o["name"], "Water Bottle")
        self.assertIn({"item_id": "6469567736", "options": {"capacity": "1000ml", "material": "glass", "color": "blue"},
                       "available": False, "price": 47.84}, o["variants"])
        self.err(request("/api/products/1"), 404, "product_not_found", "no product 1", op="get_product")

    # ---------------------------------------------------------------- refunds
    def test_refund_amount(self):
        before = gift_balance("james.li4495@example.com", "gift_card_1725971")
        r = self.refund(DELIVERED, {"amount": 20.5, "reason": "arrived scratched"}, "k-amount")
        o = self.conforms("create_refund", r)
        self.assertEqual(r.status, 201)
        self.assertNotIn("idempotent-replayed", r.headers)
        self.assertEqual({k: v for k, v in o.items() if k != "created_at"},
                         {"refund_id": "re_1001", "order_id": DELIVERED, "amount": 20.5, "item_ids": [],
                          "reason": "arrived scratched", "payment_method_id": "gift_card_1725971", "status": "succeeded"})
        self.assertLess(abs(calendar.timegm(time.strptime(o["created_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()), 60)
        od = self.conforms("get_order", request("/api/orders/" + enc(DELIVERED)))
        self.assertEqual((od["status"], od["refundable_amount"], od["refunds"]), ("delivered", 267.04, [o]))
        self.assertEqual(od["payment_history"][-1], {"transaction_type": "refund", "amount": 20.5,
                                                     "payment_method_id": "gift_card_1725971", "refund_id": "re_1001"})
        self.assertNotEqual(od["updated_at"], od["created_at"])
        self.assertEqual(gift_balance("james.li4495@example.com", "gift_card_1725971"), before + 20.5)
        rec = last_record()
        self.assertEqual(rec["operation"], "find_customer")
        rec = records("?operation=create_refund")[0]
        self.assertEqual((rec["status"], rec["outcome"], rec["applied"], rec["refund_id"], rec["order_id"]),
                         (201, "ok", True, "re_1001", DELIVERED))
        # cents stay exact: three refunds of 0.1
        for i in range(3):
            self.assertEqual(self.refund(DELIVERED, {"amount": 0.1}, "k-dime-%d" % i).status, 201)
        self.assertEqual(order(DELIVERED)["refundable_amount"], 266.74)
        # up to the last cent, then nothing more
        r = self.refund(DELIVERED, {"amount": 266.74}, "k-rest")
        self.assertEqual((r.status, r.json()["refund_id"]), (201, "re_1005"))
        self.assertEqual(order(DELIVERED)["refundable_amount"], 0)
        self.err(self.refund(DELIVERED, {"amount": 0.01}, "k-more"), 422, "refund_not_allowed",
                 "amount 0.01 is over the refundable amount 0.00")
        self.assertEqual([x["refund_id"] for x in refunds()], ["re_1001", "re_1002", "re_1003", "re_1004", "re_1005"])

    def test_refund_not_delivered(self):
        for oid, status in ((PROCESSED, "processed"), (PENDING, "pending"), (CANCELLED, "cancelled")):
            d = self.err(self.refund(oid, {"amount": 1}, "k-" + oid), 422, "refund_not_allowed", op="create_refund")
            self.assertEqual(d, "order %s is %s, not delivered" % (oid, status))
            rec = last_record()
            self.assertEqual((rec["status"], rec["outcome"], rec["applied"]), (422, "refused", False))
        self.err(self.refund("#W0000000", {"amount": 1}, "k-none"), 404, "order_not_found", op="create_refund")
        self.assertEqual(refunds(), [])
        self.assertEqual(order(PROCESSED)["payment_history"], seed()["orders"][PROCESSED]["payment_history"])

    def test_refund_over_total(self):
        d = self.err(self.refund(DELIVERED, {"amount": 600}, "k1"), 422, "refund_not_allowed")
        self.assertEqual(d, "amount 600.00 is over the refundable amount 287.54")
        self.assertEqual(self.refund(DELIVERED, {"amount": 287.54}, "k2").status, 201)
        self.assertEqual(refunds()[0]["amount"], 287.54)

    def test_refund_items(self):
        r = self.refund(DELIVERED_5, {"item_ids": ["4602305039"], "reason": "damaged"}, "k-item")
        o = self.conforms("create_refund", r)
        item = next(i for i in seed()["orders"][DELIVERED_5]["items"] if i["item_id"] == "4602305039")
        self.assertEqual((r.status, o["amount"], o["item_ids"]), (201, item["price"], ["4602305039"]))
        od = order(DELIVERED_5)
        self.assertEqual([i["refunded"] for i in od["items"]],
                         [i["item_id"] == "4602305039" for i in od["items"]])
        self.assertEqual(od["refundable_amount"], round(1819.92 - item["price"], 2))
        d = self.err(self.refund(DELIVERED_5, {"item_ids": ["4602305039"]}, "k-item-again"), 422, "refund_not_allowed")
        self.assertEqual(d, "item 4602305039 of order %s is already refunded" % DELIVERED_5)
        d = self.err(self.refund(DELIVERED_5, {"item_ids": ["6469567736"]}, "k-foreign"), 422, "refund_not_allowed")
        self.assertEqual(d, "item 6469567736 is not in order %s" % DELIVERED_5)
        # several at once: all or nothing
        others = [i["item_id"] for i in od["items"] if not i["refunded"]]
        self.err(self.refund(DELIVERED_5, {"item_ids": others[:2] + ["4602305039"]}, "k-mix"), 422, "refund_not_allowed")
        self.assertEqual(len(refunds()), 1)
        r = self.refund(DELIVERED_5, {"item_ids": others}, "k-rest")
        self.assertEqual((r.status, r.json()["item_ids"]), (201, others))
        od = order(DELIVERED_5)
        self.assertEqual((all(i["refunded"] for i in od["items"]), od["refundable_amount"]), (True, 0))
        self.assertEqual([t["transaction_type"] for t in od["payment_history"]], ["payment", "refund", "refund"])

    def test_refund_duplicate_items(self):
        """An order holding the same item twice refunds it twice, not three times."""
        self.assertEqual(self.refund(DUP, {"item_ids": ["7292993796"]}, "k1").json()["amount"], 94.8)
        self.assertEqual([i["refunded"] for i in order(DUP)["items"]], [True, False])
        self.assertEqual(self.refund(DUP, {"item_ids": ["7292993796"]}, "k2").status, 201)
        self.err(self.refund(DUP, {"item_ids": ["7292993796"]}, "k3"), 422, "refund_not_allowed", "already refunded")
        # both in one request
        self.assertEqual(request("/_reset", method="POST").status, 200)
        r = self.refund(DUP, {"item_ids": ["7292993796", "7292993796"]}, "k4")
        self.assertEqual((r.status, r.json()["amount"]), (201, 189.6))
        self.err(self.refund(DUP, {"item_ids": ["7292993796"] * 3}, "k5"), 422, "refund_not_allowed")

    def test_refund_items_after_amount(self):
        self.assertEqual(self.refund(DELIVERED, {"amount": 250}, "k1").status, 201)
        # the boots (239.78) are not refunded, but only 37.54 is left
        d = self.err(self.refund(DELIVERED, {"item_ids": ["4694984344"]}, "k2"), 422, "refund_not_allowed")
        self.assertEqual(d, "amount 239.78 is over the refundable amount 37.54")

    # ---------------------------------------------------------------- idempotency
    def test_idempotent_replay(self):
        body = {"item_ids": ["7292993796"], "reason": "leaks"}
        first = self.refund(DUP, body, "refund-c_1-0")
        self.assertEqual(first.status, 201)
        for raw in (json.dumps(body).encode(), json.dumps(body, indent=2, sort_keys=True).encode()):
            r = request("/api/orders/W4316152/refunds", raw=raw, key="refund-c_1-0")
            self.assertEqual((r.status, r.headers.get("idempotent-replayed")), (200, "true"))
            self.assertEqual(self.conforms("create_refund", r), first.json())
        self.assertEqual([(x["refund_id"], x["idempotency_key"], x["replays"]) for x in refunds()],
                         [("re_1001", "refund-c_1-0", 2)])
        self.assertEqual([i["refunded"] for i in order(DUP)["items"]], [True, False])
        rec = last_record()
        self.assertEqual((rec["outcome"], rec["applied"], rec["refund_id"]), ("replayed", False, "re_1001"))
        # the same key for another request: another body, order or operation
        for r in (self.refund(DUP, {"item_ids": ["7292993796"]}, "refund-c_1-0"),
                  self.refund(DELIVERED, body, "refund-c_1-0"),
                  self.cancel(PENDING, key="refund-c_1-0"),
                  self.patch(PENDING, ADDRESS, key="refund-c_1-0")):
            self.err(r, 409, "idempotency_key_reused", "(create_refund on order #W4316152)")
        self.assertEqual(last_record()["outcome"], "conflict")
        self.assertEqual(order(PENDING)["status"], "pending")
        self.assertEqual(len(refunds()), 1)

    def test_refused_is_not_remembered(self):
        self.err(self.refund(DELIVERED, {"amount": 1000}, "k"), 422, "refund_not_allowed")
        self.assertEqual(self.refund(DELIVERED, {"amount": 10}, "k").status, 201)

    def test_replay_after_the_order_changed(self):
        """A retried cancel answers what the first one did, though the order is no longer pending."""
        first = self.cancel(PENDING, key="cancel-1")
        self.assertEqual(first.status, 200)
        r = self.cancel(PENDING, key="cancel-1")
        self.assertEqual((r.status, r.headers.get("idempotent-replayed"), r.json()), (200, "true", first.json()))
        self.err(self.cancel(PENDING), 422, "cancel_not_allowed", "order %s is cancelled, not pending" % PENDING)
        self.assertEqual([t["transaction_type"] for t in order(PENDING)["payment_history"]], ["payment", "refund"])

    def test_concurrent_same_key(self):
        data = json.dumps({"amount": 5}).encode()

        async def one():
            out = await selftest_util.async_exchange(PORT, (
                b"POST /delay=50/api/orders/%%23W4435622/refunds HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nIdempotency-Key: same\r\nContent-Length: %d\r\n\r\n%s"
                % (len(data), data)))
            return int(out.split(b" ")[1])

        async def many():
            return await asyncio.gather(*(one() for _ in range(20)))
        self.assertEqual(sorted(asyncio.run(many())), [200] * 19 + [201])
        self.assertEqual([(x["amount"], x["replays"]) for x in refunds()], [(5, 19)])

    def test_idempotency_key_checks(self):
        self.err(self.refund(DELIVERED, {"amount": 1}, None), 400, "idempotency_key_required",
                 "Idempotency-Key required", op="create_refund")
        self.err(self.refund(DELIVERED, {"amount": 1}, ""), 400, "idempotency_key_required")
        self.err(self.refund(DELIVERED, {"amount": 1}, "a b"), 400, "invalid_request", "1 to 255 visible ASCII")
        self.err(self.refund(DELIVERED, {"amount": 1}, "k" * 256), 400, "invalid_request")
        self.err(self.cancel(PENDING, key="caf\u00e9"), 400, "invalid_request")
        self.assertEqual(self.refund(DELIVERED, {"amount": 1}, "k" * 255).status, 201)
        # optional for address and cancel; an empty one is none
        self.assertEqual(self.patch(PENDING, ADDRESS, key="").status, 200)
        self.assertEqual(self.cancel(PENDING).status, 200)
        self.assertEqual(len(refunds()), 1)

    # ---------------------------------------------------------------- validation
    def test_bad_bodies(self):
        cases = [
            ({"amount": 10, "item_ids": ["7292993796"]}, "/: exactly one of 'amount' and 'item_ids' is required"),
            ({"reason": "x"}, "/: exactly one of 'amount' and 'item_ids' is required"),
            ({"amount": 0}, "/amount: 0 is less than or equal to the minimum of 0"),
            ({"amount": -5}, "/amount: -5 is less than or equal to the minimum of 0"),
            ({"amount": "10"}, "/amount: '10' is not of type 'number'"),
            ({"amount": True}, "/amount: True is not of type 'number'"),
            ({"amount": 10.005}, "/amount: 10.005 has more than two decimal places"),
            ({"amount": 1e7}, "/amount: 10000000.0 is greater than the maximum of 1000000"),
            ({"item_ids": []}, "/item_ids: [] is too short"),
            ({"item_ids": ["abc"]}, "/item_ids/0: 'abc' does not match"),
            ({"item_ids": [7292993796]}, "/item_ids/0: 7292993796 is not of type 'string'"),
            ({"amount": 1, "reason": "r" * 201}, "/reason: 'rrrr"),
            ({"amount": 1, "currency": "USD"}, "/: Additional properties are not allowed ('currency' was unexpected)"),
            ([{"amount": 1}], "/: [{'amount': 1}] is not of type 'object'"),
        ]
        for body, message in cases:
            d = self.err(self.refund(DELIVERED, body, "k"), 400, "invalid_request", op="create_refund")
            self.assertIn(message, d, body)
            rec = last_record()
            self.assertEqual((rec["status"], rec["outcome"], rec["body"]), (400, "invalid", body))
            self.assertTrue(any(e.startswith(message) for e in rec["errors"]), rec["errors"])
        # every error, sorted by path
        d = self.err(self.patch(PENDING, dict(ADDRESS, zip="1234", state="Texas", city="")), 400, "invalid_request",
                     op="update_shipping_address")
        self.assertEqual(d, "/city: '' is too short; /state: 'Texas' does not match '^[A-Z]{2}$'; "
                            "/zip: '1234' does not match '^[0-9]{5}$'")
        for address, message in ((dict(ADDRESS, extra="x"), "Additional properties"),
                                 ({k: v for k, v in ADDRESS.items() if k != "address2"}, "'address2' is a required"),
                                 (dict(ADDRESS, zip=73301), "/zip: 73301 is not of type 'string'")):
            self.err(self.patch(PENDING, address), 400, "invalid_request", message)
        for body, message in (({"reason": "too expensive"}, "/reason: 'too expensive' is not one of"),
                              ({}, "'reason' is a required property"),
                              ({"reason": "no longer needed", "note": "x"}, "Additional properties")):
            self.err(request("/api/orders/%s/cancel" % enc(PENDING), body), 400, "invalid_request", message,
                     op="cancel_order")
        # not JSON, not a JSON content type
        for raw in (b"{", b"", b"\xff\xfe", b'{"amount": NaN}'):
            self.err(request("/api/orders/W4435622/refunds", raw=raw, key="k"), 400, "invalid_json", "not JSON")
            self.assertEqual(last_record()["errors"], ["body is not JSON"])
        self.err(self.refund(DELIVERED, {"amount": 1}, "k", headers={"Content-Type": "text/plain"}), 415,
                 "unsupported_media_type", op="create_refund")
        self.err(self.refund(DELIVERED, {"amount": 1}, "k", headers={"Content-Type": None}), 415, "unsupported_media_type")
        self.assertEqual(self.refund(DELIVERED, {"amount": 1}, "k",
                                     headers={"Content-Type": "application/json; charset=utf-8"}).status, 201)
        # nothing was changed by the refused ones
        self.assertEqual(len(refunds()), 1)
        self.assertEqual(order(PENDING)["status"], "pending")
        # a foreign address is not held to US formats
        uk = {"address1": "10 Downing Street", "address2": "", "city": "London", "state": "London", "zip": "SW1A 2AA",
              "country": "UK"}
        self.assertEqual(self.patch(PENDING, uk).json()["shipping_address"], uk)

    def test_no_validate(self):
        # the handlers still refuse what they cannot use, with a 400
        r = request("/api/orders/W4435622/refunds", {"sum": 3}, key="k", port=NOVAL_PORT)
        self.err(r, 400, "invalid_request", "cannot be used (--no-validate)")
        self.err(request("/api/orders/W6247578/cancel", [], port=NOVAL_PORT), 400, "invalid_request")
        r = request("/api/orders/W4435622/refunds", {"amount": 2, "note": "kept"}, key="k", port=NOVAL_PORT)
        self.assertEqual(r.status, 201)
        # the database is the --db file
        db = sqlite3.connect("file:%s?mode=ro" % DB, uri=True)
        self.assertEqual(db.execute("SELECT count(*) FROM orders").fetchone()[0], 12)
        self.assertEqual(db.execute("SELECT refund_id, amount_cents, idempotency_key FROM refunds").fetchall(),
                         [("re_1001", 200, "k")])
        db.close()
        self.assertEqual(request("/_reset", port=NOVAL_PORT).json(),
                         {"cleared": True, "users": 6, "orders": 12, "products": 22})
        db = sqlite3.connect("file:%s?mode=ro" % DB, uri=True)
        self.assertEqual(db.execute("SELECT count(*) FROM refunds").fetchone()[0], 0)
        db.close()

    # ---------------------------------------------------------------- address, cancel
    def test_address_change(self):
        r = self.patch(PENDING, ADDRESS, key="addr-1")
        o = self.conforms("update_shipping_address", r)
        self.assertEqual((o["status"], o["shipping_address"]), ("pending", ADDRESS))
        self.assertEqual(order(PENDING)["shipping_address"], ADDRESS)
        rec = last_record()
        self.assertEqual((rec["method"], rec["outcome"], rec["applied"]), ("PATCH", "ok", True))
        r = self.patch(PENDING, ADDRESS, key="addr-1")
        self.assertEqual((r.status, r.headers.get("idempotent-replayed"), r.json()), (200, "true", o))
        self.assertEqual(last_record()["applied"], False)
        self.err(self.patch(PENDING, dict(ADDRESS, city="Dallas"), key="addr-1"), 409, "idempotency_key_reused")
        for oid, status in ((PROCESSED_PAYPAL, "processed"), (DELIVERED, "delivered"), (CANCELLED, "cancelled")):
            d = self.err(self.patch(oid, ADDRESS), 422, "address_change_not_allowed", op="update_shipping_address")
            self.assertEqual(d, "order %s is %s, not pending" % (oid, status))
        self.err(self.patch("#W0000000", ADDRESS), 404, "order_not_found")
        self.assertEqual(order(PROCESSED_PAYPAL)["shipping_address"]["zip"],
                         seed()["orders"][PROCESSED_PAYPAL]["address"]["zip"])

    def test_cancel(self):
        r = self.cancel(PENDING_PAYPAL, "ordered by mistake")
        o = self.conforms("cancel_order", r)
        self.assertEqual((o["status"], o["cancel_reason"], o["refundable_amount"], o["refunds"]),
                         ("cancelled", "ordered by mistake", 0, []))
        self.assertEqual(o["payment_history"][1], {"transaction_type": "refund", "amount": o["total"],
                                                   "payment_method_id": "paypal_7529813"})
        self.assertEqual(order(PENDING_PAYPAL), o)
        d = self.err(self.cancel(PENDING_PAYPAL), 422, "cancel_not_allowed", op="cancel_order")
        self.assertEqual(d, "order %s is cancelled, not pending" % PENDING_PAYPAL)
        for oid, status in ((PROCESSED, "processed"), (DELIVERED, "delivered")):
            self.assertEqual(self.err(self.cancel(oid), 422, "cancel_not_allowed"), "order %s is %s, not pending" % (oid, status))
        self.err(self.cancel("#W0000000"), 404, "order_not_found")
        # a gift card is credited at once
        before = gift_balance("amelia.silva7872@example.com", "gift_card_3491931")
        total = order(PENDING_GIFT)["total"]
        self.assertEqual(self.cancel(PENDING_GIFT).status, 200)
        self.assertEqual(gift_balance("amelia.silva7872@example.com", "gift_card_3491931"), round(before + total, 2))
        # an address change after the cancellation is refused
        self.err(self.patch(PENDING_GIFT, ADDRESS), 422, "address_change_not_allowed", "is cancelled, not pending")

    # ---------------------------------------------------------------- auth
    def test_auth(self):
        path = "/api/orders/" + enc(PROCESSED)
        self.err(request(path, port=KEY_PORT), 401, "unauthorized", "authentication required", op="get_order")
        rec = last_record(KEY_PORT)
        self.assertEqual((rec["authorization"], rec["status"], rec["outcome"]), (False, 401, "unauthorized"))
        self.err(request(path, port=KEY_PORT, headers={"Authorization": "Basic eDp5"}), 401, "unauthorized", "malformed")
        self.err(request(path, port=KEY_PORT, headers={"Authorization": "Bearer nope"}), 401, "unauthorized",
                 "invalid API key")
        auth = {"Authorization": "Bearer " + API_KEY}
        self.assertEqual(request(path, port=KEY_PORT, headers=auth).status, 200)
        # auth comes before the other checks, for writes too
        self.err(self.refund(DELIVERED, {"amount": -1}, None, port=KEY_PORT), 401, "unauthorized")
        self.assertEqual(self.refund(DELIVERED, {"amount": 1}, "k", port=KEY_PORT, headers=auth).status, 201)
        dump = request("/_requests", port=KEY_PORT).body
        self.assertNotIn(API_KEY.encode(), dump)
        self.assertNotIn(b"nope", dump)
        self.assertIs(last_record(KEY_PORT)["authorization"], True)
        # control endpoints need no key; without --require-key any Authorization is accepted
        self.assertEqual(len(refunds(KEY_PORT)), 1)
        self.assertEqual(request(path, headers={"Authorization": "Bearer whatever"}).status, 200)

    # ---------------------------------------------------------------- transport
    def test_keep_alive_and_chunked(self):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        r = request("/api/orders/" + enc(PENDING), sock=s, keep=True)
        self.assertEqual((r.status, r.headers["connection"]), (200, "keep-alive"))
        r = self.refund(DELIVERED, {"amount": 3, "reason": "a longer reason, sent in several chunks"}, "k", sock=s,
                        keep=True, chunked=True)
        self.assertEqual(r.status, 201)
        self.err(self.refund(DELIVERED, {"amount": 3}, None, sock=s, keep=True), 400, "idempotency_key_required")
        self.assertEqual(request("/api/orders/" + enc(DELIVERED), sock=s, keep=True).json()["refundable_amount"], 284.54)
        s.close()
        r = self.cancel(PENDING, headers={"Expect": "100-continue"})
        self.assertEqual((r.informational, r.status), (100, 200))

    # ---------------------------------------------------------------- scenarios
    def test_fail_then_succeed(self):
        statuses = []
        for _ in range(3):
            r = request("/fail=503:2/api/orders/%23W4435622/refunds", {"amount": 5}, key="k-fail")
            statuses.append(r.status)
            if r.status == 503:
                self.assertEqual(r.json(), {"error": "scripted_failure", "detail": "scripted 503 from shop_server.py"})
                self.assertNotIn("retry-after", r.headers)
                self.assertEqual(refunds(), [])  # nothing done
        self.assertEqual(statuses, [503, 503, 201])
        self.assertEqual(request("/fail=503:2/api/orders/%23W4435622/refunds", {"amount": 5}, key="k-fail").status, 200)
        self.assertEqual([(x["outcome"], x["applied"]) for x in records("?scenario=fail=503:2")],
                         [("scripted", False), ("scripted", False), ("ok", True), ("replayed", False)])
        # GETs take scenarios too
        self.assertEqual(request("/fail=500:1/api/orders/W2611340").status, 500)
        self.assertEqual(request("/fail=500:1/api/orders/W2611340").status, 200)

    def test_fail_forms(self):
        r = request("/fail=429/api/orders/W2611340")
        self.err(r, 429, "scripted_failure")
        self.assertEqual(r.headers["retry-after"], "1")
        self.assertEqual(request("/fail=429/api/orders/W2611340").status, 429)  # no :N = always
        r = request("/fail=502:1,ra=7/api/orders/W2611340")
        self.assertEqual((r.status, r.headers["retry-after"]), (502, "7"))
        # counters are per exact scenario string; refused requests are not counted
        self.assertEqual(request("/fail=503:1/api/orders/W2611340/refunds", {"amount": 1}).status, 400)
        self.assertEqual(request("/fail=503:1/api/orders/W2611340").status, 503)
        self.assertEqual(request("/fail=503:1,ra=2/api/orders/W2611340").status, 503)
        self.assertEqual(request("/fail=503:1/api/orders/W2611340").status, 200)
        # a failing cancel cancels nothing
        self.assertEqual(request("/fail=500/api/orders/W6247578/cancel", {"reason": "no longer needed"}).status, 500)
        self.assertEqual(order(PENDING)["status"], "pending")

    def test_bad_scenario(self):
        for scn in ("fail=abc", "fail=99", "delay=x", "delay=10:x", "hang=soon", "reset=1", "reset:x", "bogus",
                    "badjson=1", "ra=x"):
            self.err(request("/%s/api/orders/W2611340" % scn), 400, "bad_scenario", "bad scenario option")
        self.assertEqual(last_record()["outcome"], "invalid")

    def test_delay_then_dedup(self):
        """The refund is made before the delay: a client that times out and retries with the same
        key gets the replay, not a second refund."""
        t0 = time.monotonic()
        r = request("/delay=300/api/orders/W2611340")
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.assertEqual(r.status, 200)
        s = socket.create_connection(("127.0.0.1", PORT), timeout=0.1)
        with self.assertRaises(socket.timeout):
            request("/delay=400:1/api/orders/%23W4435622/refunds", {"amount": 7}, key="k-slow", sock=s)
        s.close()
        time.sleep(0.1)
        rec = last_record()
        self.assertEqual((rec["outcome"], rec["status"], rec["applied"], rec["refund_id"]),
                         ("client_closed", None, True, "re_1001"))
        self.assertEqual([(x["refund_id"], x["amount"]) for x in refunds()], [("re_1001", 7)])
        t0 = time.monotonic()
        r = request("/delay=400:1/api/orders/%23W4435622/refunds", {"amount": 7}, key="k-slow")
        self.assertLess(time.monotonic() - t0, 0.3)
        self.assertEqual((r.status, r.headers.get("idempotent-replayed"), r.json()["refund_id"]), (200, "true", "re_1001"))
        self.assertEqual(order(DELIVERED)["refundable_amount"], 280.54)

    def test_hang(self):
        t0 = time.monotonic()
        r = request("/hang=0.3/api/orders/W4435622/refunds", {"amount": 1}, key="k")
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.assertEqual((r.status, r.body), (None, b""))
        self.assertEqual(last_record()["outcome"], "hang_timeout")
        s = socket.create_connection(("127.0.0.1", PORT), timeout=0.1)
        with self.assertRaises(socket.timeout):
            request("/hang/api/orders/W2611340", sock=s)
        s.close()
        time.sleep(0.1)
        self.assertEqual(last_record()["outcome"], "client_closed")
        self.assertEqual(refunds(), [])

    def test_reset_and_close(self):
        r = request("/reset:1/api/orders/W6247578/cancel", {"reason": "no longer needed"})
        self.assertTrue(r.reset or r.status is None)
        self.assertEqual(r.body, b"")
        self.assertEqual(last_record()["outcome"], "reset")
        self.assertEqual(order(PENDING)["status"], "pending")
        self.assertEqual(request("/reset:1/api/orders/W6247578/cancel", {"reason": "no longer needed"}).status, 200)
        r = request("/close/api/orders/W4435622/refunds", {"amount": 1}, key="k")
        self.assertEqual((r.status, r.body, r.reset), (None, b"", False))
        self.assertEqual(last_record()["outcome"], "closed")
        self.assertEqual(refunds(), [])

    def test_badjson_then_dedup(self):
        r = request("/badjson:1/api/orders/W4435622/refunds", {"amount": 4}, key="k")
        self.assertEqual(r.status, 201)
        with self.assertRaises(ValueError):
            json.loads(r.body)
        self.assertTrue(r.body.startswith(b'{"refund_id":"re_1001"'))
        r = request("/badjson:1/api/orders/W4435622/refunds", {"amount": 4}, key="k")
        self.assertEqual((r.status, r.json()["refund_id"]), (200, "re_1001"))
        self.assertEqual(len(refunds()), 1)

    # ---------------------------------------------------------------- records, reset, long poll
    def test_records(self):
        self.refund(DELIVERED, {"amount": 2}, "k-rec", headers={"Authorization": "Bearer t0ken"})
        rec = last_record()
        self.assertEqual(list(rec), ["seq", "time", "method", "path", "scenario", "operation", "order_id",
                                     "idempotency_key", "authorization", "content_type", "body", "errors", "status",
                                     "outcome", "applied", "refund_id"])
        self.assertEqual({k: v for k, v in rec.items() if k not in ("seq", "time")},
                         {"method": "POST", "path": "/api/orders/%23W4435622/refunds", "scenario": "",
                          "operation": "create_refund", "order_id": DELIVERED, "idempotency_key": "k-rec",
                          "authorization": True, "content_type": "application/json", "body": {"amount": 2},
                          "errors": [], "status": 201, "outcome": "ok", "applied": True, "refund_id": "re_1001"})
        self.assertLess(abs(rec["time"] - time.time()), 5)
        self.assertNotIn(b"t0ken", request("/_requests").body)
        request("/fail=500/api/orders/W2611340")
        seqs = [r["seq"] for r in records()]
        self.assertEqual(seqs, [rec["seq"], rec["seq"] + 1])  # seq goes on across resets: record file names
        self.assertEqual(records("?last=0"), [])
        self.assertEqual([r["seq"] for r in records("?scenario=fail%3D500")], seqs[1:])
        self.assertEqual([r["seq"] for r in records("?operation=create_refund")], seqs[:1])
        # control requests are not recorded
        order(DELIVERED)
        refunds()
        self.assertEqual(len(records()), 2)
        # DELETE /_requests: records and counters go, the database stays
        self.assertEqual(request("/fail=500:1/api/orders/W2611340").status, 500)
        self.assertEqual(request("/_requests", method="DELETE").json(), {"cleared": True})
        self.assertEqual(records(), [])
        self.assertEqual(request("/fail=500:1/api/orders/W2611340").status, 500)
        self.assertEqual(len(refunds()), 1)

    def test_reset_restores(self):
        self.assertEqual(self.refund(DELIVERED, {"amount": 9}, "k").status, 201)
        self.assertEqual(self.cancel(PENDING_GIFT, key="c").status, 200)
        self.assertEqual(self.patch(PENDING, ADDRESS).status, 200)
        r = request("/_reset", method="POST")
        self.assertEqual(r.json(), {"cleared": True, "users": 6, "orders": 12, "products": 22})
        self.assertEqual((records(), refunds()), ([], []))
        s = seed()
        self.assertEqual(order(PENDING_GIFT)["status"], "pending")
        self.assertEqual(order(PENDING)["shipping_address"], {k: s["orders"][PENDING]["address"][k]
                                                              for k in shop_server.ADDRESS_KEYS})
        self.assertEqual(gift_balance("amelia.silva7872@example.com", "gift_card_3491931"),
                         s["users"]["amelia_silva_7726"]["payment_methods"]["gift_card_3491931"]["balance"])
        o = order(DELIVERED)
        self.assertEqual((o["refundable_amount"], o["refunds"], o["updated_at"]), (287.54, [], o["created_at"]))
        # keys are forgotten and refund ids restart
        r = self.refund(DELIVERED, {"amount": 9}, "k")
        self.assertEqual((r.status, r.json()["refund_id"]), (201, "re_1001"))

    def test_long_poll(self):
        """GET /_refunds?min=N&wait=S and /_requests?min=N&wait=S wait for what arrives later."""
        async def scenario():
            async def post_later():
                await asyncio.sleep(0.3)
                await asyncio.get_running_loop().run_in_executor(None, self.refund, DELIVERED, {"amount": 1}, "k")
                return time.monotonic()
            get = selftest_util.timed_get
            return await asyncio.gather(get(PORT, "/_refunds?min=1&wait=5"),
                                        get(PORT, "/_requests?min=1&wait=5&operation=create_refund"), post_later())
        (t1, o1), (t2, o2), posted = asyncio.run(scenario())
        self.assertEqual([x["refund_id"] for x in o1["refunds"]], ["re_1001"])
        self.assertEqual([x["outcome"] for x in o2], ["ok"])
        self.assertGreaterEqual(min(t1, t2), posted - 0.25)
        t0 = time.monotonic()
        self.assertEqual(len(control("/_refunds?min=2&wait=0.2")["refunds"]), 1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)

    def test_record_dir_and_check(self):
        self.refund(DELIVERED, {"amount": 1}, "k1")
        self.patch(PENDING, ADDRESS)
        self.refund(DELIVERED, {"amount": 1, "item_ids": ["1"]}, "k2")
        request("/api/orders/W2611340")
        seqs = [r["seq"] for r in records()]
        names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(REC, "*")))
        for seq, op in zip(seqs[:3], ("create_refund", "update_shipping_address", "create_refund")):
            self.assertIn("%06d-%s.json" % (seq, op), names)
        self.assertFalse(any(n.startswith("%06d-" % seqs[3]) for n in names))
        one = os.path.join(TMP, "one")
        os.makedirs(one, exist_ok=True)
        for seq, op in zip(seqs[:2], ("create_refund", "update_shipping_address")):
            shutil.copy(os.path.join(REC, "%06d-%s.json" % (seq, op)), one)
        out = subprocess.run(["/usr/bin/python3", SERVER, "check", one], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn("2 of 2 request files valid", out.stdout)
        out = subprocess.run(["/usr/bin/python3", SERVER, "check", REC], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("%06d-create_refund.json: INVALID: /: exactly one of" % seqs[2], out.stdout)
        out = subprocess.run(["/usr/bin/python3", SERVER, "check", os.path.join(TMP, "none")],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 2)

    # ---------------------------------------------------------------- seeds
    def test_seed_tau(self):
        if TAU_PORT is None:
            self.skipTest("../shared/data/tau-retail not found")
        self.assertEqual(request("/_reset", port=TAU_PORT).json(),
                         {"cleared": True, "users": 500, "orders": 1000, "products": 50})
        o = self.conforms("get_order", request("/api/orders/%23W2611340", port=TAU_PORT))
        self.assertEqual(o["total"], 536.65)
        c = request("/api/customers?email=james.li4495%40example.com", port=TAU_PORT).json()
        self.assertEqual(c["orders"], ["#W2611340", "#W3632959", "#W4435622", "#W3638028"])
        self.assertEqual(self.refund("#W3638028", {"amount": 1}, "k", port=TAU_PORT).status, 201)
        # every order and customer of tau's data is answered as the document says
        store = shop_server.Store(None, shop_server.load_seed(tau_dir=TAU))
        statuses = set()
        for oid in store.seed["orders"]:
            o = store.order(oid)
            statuses.add(o["status"])
            self.assertEqual(SPEC.check(SPEC.schema("Order"), o), [], oid)
        for u in store.seed["users"].values():
            self.assertEqual(SPEC.check(SPEC.schema("CustomerLookup"), store.find_customer(email=u["email"])), [])
        self.assertEqual(statuses, {"pending", "processed", "delivered", "cancelled"})

    def test_other_statuses_and_bad_seeds(self):
        """tau's tools also leave orders 'return requested', 'exchange requested' or 'pending
        (item modified)': a seed may hold them, and nothing is allowed on them."""
        s = seed()
        s["orders"][DELIVERED]["status"] = "return requested"
        s["orders"][PENDING]["status"] = "pending (item modified)"
        store = shop_server.Store(None, shop_server.load_seed(self.write(s)))
        with self.assertRaisesRegex(shop_server.Refused, "order #W4435622 is return requested, not delivered"):
            store.create_refund(DELIVERED, {"amount": 1}, "k")
        with self.assertRaisesRegex(shop_server.Refused, r"is pending \(item modified\), not pending"):
            store.cancel_order(PENDING, {"reason": "no longer needed"})
        self.assertEqual(SPEC.check(SPEC.schema("Order"), store.order(DELIVERED)), [])
        # a seed without products, dates given
        s = seed()
        del s["products"]
        s["orders"][PENDING]["created_at"] = "2024-02-03T04:05:06Z"
        store = shop_server.Store(None, shop_server.load_seed(self.write(s)))
        self.assertEqual((store.order(PENDING)["created_at"], store.order(PENDING)["updated_at"]),
                         ("2024-02-03T04:05:06Z", "2024-02-03T04:05:06Z"))
        # a broken seed: the server says why and exits 2
        s = seed()
        s["orders"][PENDING]["user_id"] = "nobody"
        for path, message in ((self.write(s), "order #W6247578: not in tau's shape, or its user is missing"),
                              (os.path.join(TMP, "missing.json"), "cannot read the seed"),
                              (self.write([]), "must be an object")):
            out = subprocess.run(["/usr/bin/python3", SERVER, "--seed", path], capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn(message, out.stderr)
        out = subprocess.run(["/usr/bin/python3", SERVER, "--seed", SEED, "--seed-tau", TMP], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 2)
        self.assertIn("not allowed with argument", out.stderr)

    def write(self, obj):
        path = os.path.join(TMP, "seed-%d.json" % time.monotonic_ns())
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def test_extract(self):
        if not os.path.isdir(TAU):
            self.skipTest("../shared/data/tau-retail not found")
        out = subprocess.run(["/usr/bin/python3", SERVER, "extract", "--from", TAU] + list(seed()["orders"]),
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(SEED) as f:
            self.assertEqual(out.stdout, f.read())


if __name__ == "__main__":
    verbosity = 2 if "-v" in sys.argv else 1
    t0 = time.monotonic()
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("shop_server_selftest: %d passed, %d failed, %d skipped (%.1f s)" % (
        res.testsRun - failed - len(res.skipped), failed, len(res.skipped), time.monotonic() - t0))
    sys.exit(0 if res.wasSuccessful() else 1)
