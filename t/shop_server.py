#!/usr/bin/python3
"""Demo shop API: the order and refund API of an online shop, standing in for the company's own
API that the agent's actions ("Act": look up an order, refund, change the shipping address,
cancel) call. The test and demo peer of those actions, NOT part of the module. Its data are
tau-bench's retail domain (MIT, Copyright (c) 2024 Sierra): a small fixture by default
(t/fixtures/shop-seed.json), all 1,000 orders with --seed-tau. The API is specified by
docs/shop-api.openapi.json (OpenAPI 3.1; docs/shop-api.md says the rules): the server routes
exactly its paths and validates every request body against its schemas, strictly.

Python 3 standard library only (sqlite3, asyncio; raw HTTP/1.1 with keep-alive, request bodies
with Content-Length or chunked). Run with Debian's /usr/bin/python3.

CLI
    shop_server.py [--host 127.0.0.1] [--port 0] [--port-file PATH] [--record-dir DIR]
                   [--require-key KEY] [--no-validate] [--parent-pid PID] [--quiet]
                   [--db PATH] [--seed FILE | --seed-tau DIR]
    Prints "listening on HOST:PORT" (flushed) once it accepts connections; --port-file gets the
    port number (written atomically). --parent-pid: exit when that process goes away.
    SIGTERM / SIGINT exit 0. --require-key KEY: every /api request wants "Authorization: Bearer
    KEY". --no-validate: request bodies are not checked against the schemas (a body a handler
    cannot use is still a 400). --db PATH: the sqlite3 database file (default in memory); it
    is rebuilt from the seed at start and by /_reset. --seed FILE: JSON {"users": {...},
    "orders": {...}, "products": {...}} in tau's own shapes (default t/fixtures/shop-seed.json;
    "products" may be left out; keys starting with "_" are ignored). --seed-tau DIR: tau's
    users.json, orders.json and products.json from DIR (e.g. ../shared/data/tau-retail).
    shop_server.py check PATH...
    Validates recorded request bodies (a directory: every NNNNNN-<operationId>.json below it)
    against the schema of their operation; one line per invalid file, exit 0 when all are
    valid, 1 otherwise, 2 when a PATH is missing or there is no file at all.
    shop_server.py extract --from DIR ORDER_ID...
    Prints a seed with those orders of tau's DIR, their customers (their "orders" lists cut to
    the orders taken) and the products of their items (cut to those items): how
    t/fixtures/shop-seed.json was made.

Endpoints (the API under /api; a scenario goes in front: /fail=503:1/api/orders/%23W2611340)
    GET   /api/orders/{order_id}                   200 the order
    GET   /api/customers?email=E                   200 {"customer": {...}, "orders": [...]}
    GET   /api/customers?first_name=F&last_name=L&zip=Z
    GET   /api/products/{product_id}               200 the product
    POST  /api/orders/{order_id}/refunds           {"amount": N} | {"item_ids": [...]},
                                                   optional "reason"; Idempotency-Key required;
                                                   201 the refund
    PATCH /api/orders/{order_id}/shipping_address  the whole address; 200 the order
    POST  /api/orders/{order_id}/cancel            {"reason": "no longer needed" |
                                                   "ordered by mistake"}; 200 the order
    order_id: "%23W2611340" (URL-encoded '#') or "W2611340". Errors: {"error": code, "detail":
    text}. Recorded. Anything else: 404 not_found; a wrong method: 405 method_not_allowed
    (with Allow); both recorded.
    Control (not recorded, no key):
    GET    /_requests[?last=N][&scenario=S][&operation=OP][&min=N&wait=S]   the records
           (below), oldest first; min=N first waits (up to S seconds, default 10) until at
           least N records match
    DELETE /_requests          clear the records and the scenario counters
    any    /_reset             restore the database to the seed; clear the records, the scenario
                               counters and the idempotency keys; refund ids restart (re_1001)
    GET    /_refunds[?min=N&wait=S]   {"refunds": [refund + "idempotency_key", "replays"]}
                               every refund made since the seed, oldest first
    GET    /_orders/{order_id} the order as GET /api/orders answers it (404 otherwise)
    GET    /_health            200 "ok"

Checks of an /api request, in this order (answers {"error", "detail"}):
    path            no such path: 404 not_found; the wrong method: 405 method_not_allowed
    scenario        unknown option or bad value                       400 bad_scenario
    auth            with --require-key: Authorization missing, not "Bearer <token>" or
                    another token                                     401 unauthorized
    query           a parameter the operation does not have, given twice or empty
                                                                      400 invalid_request
    content type    (bodies) not application/json                     415 unsupported_media_type
    idempotency     refunds: no (or an empty) Idempotency-Key         400 idempotency_key_required
                    a key that is not 1-255 visible ASCII characters  400 invalid_request
    JSON            body not UTF-8 JSON (NaN/Infinity are not JSON)   400 invalid_json
    schema          not valid under the operation's schema            400 invalid_request
                    ("<path>: <message>; ..." sorted by path; the record has them as a list)
    Then the scenario runs (counted, see below): hang, reset, close and fail= answer without
    doing anything; then the operation (with a key: replay or 409 first, see below), delay=,
    and the answer (badjson).

The rules (docs/shop-api.md)
    refunds   only delivered orders (422 refund_not_allowed "order #W.. is processed, not
              delivered"); amount, or the sum of the items' prices, at most refundable_amount
              (paid minus refunded; "amount 600.00 is over the refundable amount 536.65"); item
              ids of the order ("item 1 is not in order #W.."), each refunded at most as many
              times as the order holds it ("item .. of order #W.. is already refunded"); amounts
              with at most two decimals (400). 201 {"refund_id": "re_1001", "order_id",
              "amount", "item_ids", "reason", "payment_method_id", "status": "succeeded",
              "created_at"}; the order gets it in "refunds", a "refund" transaction in
              payment_history (to the original payment method; a gift card's balance grows at
              once) and a smaller refundable_amount; it stays delivered.
    address   only pending orders (422 address_change_not_allowed "order #W.. is processed,
              not pending"); 200 the order with its new shipping_address.
    cancel    only pending orders (422 cancel_not_allowed "order #W.. is delivered, not
              pending"); 200 the order: status "cancelled", cancel_reason, a refund transaction
              of what was paid.
    Idempotency-Key (required for refunds, honoured for address and cancel when given): the
    first successful request with a key is remembered with its request (operation, order,
    body compared as parsed JSON) and its answer. The same key and request again: 200 with that
    answer and "Idempotent-Replayed: true", nothing is done again (also when the order has
    changed since). The same key with another request: 409 idempotency_key_reused. A refused
    request (4xx) is not remembered: it may be retried with the same key.

Scenario options (combine with ","; values URL-decoded). Each distinct scenario string has its
own counter of the requests that passed the checks above; an option with ":N" applies to the
first N of them only (then the scenario behaves normally; no cycling), without ":N" to all.
    fail=STATUS[:N]   answer STATUS {"error": "scripted_failure", "detail": "scripted STATUS
                      from shop_server.py"} (429 carries "Retry-After: 1"); nothing is done
    ra=SECONDS        fail= answers carry "Retry-After: SECONDS"
    delay=MS[:N]      wait MS ms before answering; the operation is applied BEFORE the wait, so
                      a client that times out and retries with the same Idempotency-Key gets
                      the replay, not a second refund
    hang[=S]          read the request, never answer, close after S seconds (default 120);
                      nothing is done
    reset[:N]         abort the connection (TCP RST) without any answer; nothing is done
    close[:N]         close the connection (FIN) without any answer; nothing is done
    badjson[:N]       a successful answer's status with the first half of its JSON as the body;
                      the operation IS applied
    Precedence: hang, reset, close, fail, then the operation, delay, badjson.

Record (GET /_requests, last 1000 requests, keys in this order):
    {"seq": 1, "time": 1700000000.123, "method": "POST",
     "path": "/fail=503:1/api/orders/%23W2611340/refunds", "scenario": "fail=503:1" | "" |
     null (not an /api path), "operation": "create_refund" | null, "order_id": "#W2611340" |
     null, "idempotency_key": "..." | null, "authorization": true|false (present; the token is
     never recorded), "content_type": ... | null, "body": <parsed JSON> | null,
     "errors": ["/amount: ...", ...], "status": 201 | ... | null (no answer),
     "outcome": "pending" | "ok" | "replayed" | "conflict" | "refused" (422) | "not_found" |
     "invalid" (400/415) | "unauthorized" | "error" (404 path, 405) | "scripted" (fail=) |
     "hang_timeout" | "reset" | "closed" | "client_closed",
     "applied": true when this request changed the database, "refund_id": "re_1001" | null}
    --record-dir DIR also writes the body of each request with a body to
    DIR/NNNNNN-<operationId>.json (NNNNNN = seq); `shop_server.py check DIR` validates them.
"""
import argparse
import collections
import datetime
import decimal
import json
import math
import os
import re
import sqlite3
import sys
import time
import urllib.parse
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testserver  # noqa: E402
from testserver import ScenarioError, applies, canonical, dumps, reject_constant  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(REPO, "docs", "shop-api.openapi.json")
DEFAULT_SEED = os.path.join(REPO, "t", "fixtures", "shop-seed.json")
FIRST_REFUND = 1001
CURRENCY = "USD"


def log(msg):
    sys.stderr.write("shop_server: %s\n" % msg)
    sys.stderr.flush()


def cents(x):
    """Dollars (a JSON number) to integer cents, exactly for what has two decimals."""
    return int((decimal.Decimal(repr(x)) * 100).to_integral_value(decimal.ROUND_HALF_EVEN))


def two_decimals(x):
    if isinstance(x, float) and not math.isfinite(x):
        return False
    return decimal.Decimal(repr(x)).as_tuple().exponent >= -2


def dollars(c):
    return c / 100


def money(c):
    return "%d.%02d" % divmod(c, 100) if c >= 0 else "-" + money(-c)


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def seed_time(order_id):
    """tau's orders have no dates: a fixed one per order id, in the first half of 2024."""
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    t = base + datetime.timedelta(seconds=zlib.crc32(order_id.encode()) % (182 * 86400))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def short(x, n=80):
    r = repr(x)
    return r if len(r) <= n else r[:n - 3] + "..."


# ---------------------------------------------------------------- the OpenAPI document

class SpecError(Exception):
    pass


class Spec:
    """docs/shop-api.openapi.json: the operations (routes, parameters, body schemas) and a
    validator of the JSON Schema 2020-12 keywords its schemas use (any other keyword is refused
    at load, so the document cannot say more than the server checks)."""

    CHECKED = {"$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
               "const", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
               "exclusiveMaximum", "minItems", "maxItems", "oneOf", "anyOf", "allOf", "if", "then", "else"}
    ANNOTATIONS = {"description", "title", "examples", "format", "default", "$comment", "deprecated",
                   "readOnly", "writeOnly", "summary"}
    SCHEMA_MAP = {"properties"}
    SCHEMA_ONE = {"items", "additionalProperties", "if", "then", "else"}
    SCHEMA_LIST = {"oneOf", "anyOf", "allOf"}

    def __init__(self, path=SPEC):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        for name, s in self.doc["components"]["schemas"].items():
            self.lint(s, "components/schemas/" + name)
        self.ops = {}      # operationId -> dict
        self.routes = []   # (regex, {METHOD: operationId}, template)
        for template, item in self.doc["paths"].items():
            methods = {}
            for method, op in item.items():
                if method not in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                    continue
                oid = op["operationId"]
                params = [self.deref(p) for p in op.get("parameters", [])]
                o = {"id": oid, "method": method.upper(), "template": template,
                     "query": {p["name"]: p for p in params if p["in"] == "query"},
                     "key": next((p["required"] for p in params
                                  if p["in"] == "header" and p["name"] == "Idempotency-Key"), None),
                     "key_schema": next((p["schema"] for p in params
                                         if p["in"] == "header" and p["name"] == "Idempotency-Key"), None),
                     "body": None, "responses": op["responses"]}
                rb = op.get("requestBody")
                if rb is not None:
                    o["body"] = rb["content"]["application/json"]["schema"]
                    self.lint(o["body"], oid + " body")
                for p in params:
                    self.lint(p["schema"], "%s parameter %s" % (oid, p["name"]))
                methods[o["method"]] = oid
                self.ops[oid] = o
            rx = "".join("([^/]+)" if re.fullmatch(r"\{\w+\}", seg) else re.escape(seg)
                         for seg in re.split(r"(\{\w+\})", template))
            self.routes.append((re.compile(rx), methods, template))

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            node = self.pointer(node["$ref"])
        return node

    def pointer(self, ref):
        if not ref.startswith("#/"):
            raise SpecError("only local references: %s" % ref)
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def lint(self, s, where):
        if isinstance(s, bool):
            return
        for k, v in s.items():
            if k in self.SCHEMA_MAP:
                for name, sub in v.items():
                    self.lint(sub, where + "/" + name)
            elif k in self.SCHEMA_ONE:
                self.lint(v, where)
            elif k in self.SCHEMA_LIST:
                for sub in v:
                    self.lint(sub, where)
            elif k == "$ref":
                self.pointer(v)
            elif k not in self.CHECKED and k not in self.ANNOTATIONS:
                raise SpecError("%s: keyword %r is not checked by shop_server.py" % (where, k))

    def route(self, path):
        """(operation ids by method, path parameter values, template) or None."""
        for rx, methods, template in self.routes:
            m = rx.fullmatch(path)
            if m:
                return methods, [urllib.parse.unquote(g) for g in m.groups()], template  # decoded
        return None

    def schema(self, name):
        return {"$ref": "#/components/schemas/" + name}

    def response_schema(self, op, status):
        """The JSON schema of an operation's answer with that status, or None."""
        r = self.deref(self.ops[op]["responses"].get(str(status)))
        if r is None:
            return None
        return r.get("content", {}).get("application/json", {}).get("schema")

    # ------------------------------------------------------------ validation

    def check(self, schema, inst):
        """Sorted list of "<path>: <message>" strings, empty when valid."""
        return sorted({"%s: %s" % ("/" + "/".join(str(p) for p in path), msg)
                       for path, msg in self.errors(schema, inst, ())})

    def valid(self, schema, inst):
        return next(iter(self.errors(schema, inst, ())), None) is None

    @staticmethod
    def is_type(inst, t):
        if t == "object":
            return isinstance(inst, dict)
        if t == "array":
            return isinstance(inst, list)
        if t == "string":
            return isinstance(inst, str)
        if t == "boolean":
            return isinstance(inst, bool)
        if t == "null":
            return inst is None
        if isinstance(inst, bool):
            return False
        if t == "number":
            return isinstance(inst, (int, float))
        if t == "integer":
            return isinstance(inst, int) or (isinstance(inst, float) and inst.is_integer())
        raise SpecError("unknown type %r" % t)

    def errors(self, s, inst, path):
        if s is True:
            return
        if s is False:
            yield path, "False schema does not allow %s" % short(inst)
            return
        if "$ref" in s:
            yield from self.errors(self.pointer(s["$ref"]), inst, path)
        if "type" in s:
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            if not any(self.is_type(inst, t) for t in types):
                yield path, "%s is not of type %s" % (short(inst), ", ".join(repr(t) for t in types))
                return
        if "enum" in s and not any(inst == e and type(inst) is type(e) for e in s["enum"]):
            yield path, "%s is not one of %r" % (short(inst), s["enum"])
        if "const" in s and not (inst == s["const"] and type(inst) is type(s["const"])):
            yield path, "%r was expected" % (s["const"],)
        if isinstance(inst, str):
            if "minLength" in s and len(inst) < s["minLength"]:
                yield path, "%s is too short" % short(inst)
            if "maxLength" in s and len(inst) > s["maxLength"]:
                yield path, "%s is too long" % short(inst)
            if "pattern" in s and not re.search(s["pattern"], inst):
                yield path, "%s does not match %r" % (short(inst), s["pattern"])
        if isinstance(inst, (int, float)) and not isinstance(inst, bool):
            if "minimum" in s and inst < s["minimum"]:
                yield path, "%r is less than the minimum of %r" % (inst, s["minimum"])
            if "exclusiveMinimum" in s and inst <= s["exclusiveMinimum"]:
                yield path, "%r is less than or equal to the minimum of %r" % (inst, s["exclusiveMinimum"])
            if "maximum" in s and inst > s["maximum"]:
                yield path, "%r is greater than the maximum of %r" % (inst, s["maximum"])
            if "exclusiveMaximum" in s and inst >= s["exclusiveMaximum"]:
                yield path, "%r is greater than or equal to the maximum of %r" % (inst, s["exclusiveMaximum"])
        if isinstance(inst, list):
            if "minItems" in s and len(inst) < s["minItems"]:
                yield path, "%s is too short" % short(inst)
            if "maxItems" in s and len(inst) > s["maxItems"]:
                yield path, "%s is too long" % short(inst)
            if "items" in s:
                for i, v in enumerate(inst):
                    yield from self.errors(s["items"], v, path + (i,))
        if isinstance(inst, dict):
            for name in s.get("required", ()):
                if name not in inst:
                    yield path, "%r is a required property" % name
            props = s.get("properties", {})
            for name, v in inst.items():
                if name in props:
                    yield from self.errors(props[name], v, path + (name,))
            if "additionalProperties" in s:
                extra = [n for n in inst if n not in props]
                if s["additionalProperties"] is False:
                    if extra:
                        yield path, "Additional properties are not allowed (%s %s unexpected)" % (
                            ", ".join(repr(n) for n in extra), "was" if len(extra) == 1 else "were")
                else:
                    for n in extra:
                        yield from self.errors(s["additionalProperties"], inst[n], path + (n,))
        for sub in s.get("allOf", ()):
            yield from self.errors(sub, inst, path)
        if "anyOf" in s and not any(self.valid(sub, inst) for sub in s["anyOf"]):
            yield path, "%s is not valid under any of the given schemas" % short(inst)
        if "oneOf" in s:
            n = sum(1 for sub in s["oneOf"] if self.valid(sub, inst))
            if n != 1:
                names = [sub["required"][0] for sub in s["oneOf"]
                         if isinstance(sub, dict) and list(sub) == ["required"] and len(sub["required"]) == 1]
                if len(names) == len(s["oneOf"]):  # "exactly one of these properties"
                    yield path, "exactly one of %s is required" % " and ".join(repr(x) for x in names)
                elif n == 0:
                    yield path, "%s is not valid under any of the given schemas" % short(inst)
                else:
                    yield path, "%s is valid under more than one of the given schemas" % short(inst)
        if "if" in s:
            if self.valid(s["if"], inst):
                if "then" in s:
                    yield from self.errors(s["then"], inst, path)
            elif "else" in s:
                yield from self.errors(s["else"], inst, path)


# ---------------------------------------------------------------- seed

class SeedError(ValueError):
    pass


def load_seed(seed=None, tau_dir=None):
    """{"users", "orders", "products"} in tau's shapes, checked enough to serve them."""
    try:
        if tau_dir:
            data = {}
            for name in ("users", "orders", "products"):
                with open(os.path.join(tau_dir, name + ".json"), encoding="utf-8") as f:
                    data[name] = json.load(f)
        else:
            with open(seed or DEFAULT_SEED, encoding="utf-8") as f:
                data = json.load(f)
    except (OSError, ValueError) as e:
        raise SeedError("cannot read the seed: %s" % e)
    if not (isinstance(data, dict) and isinstance(data.get("users"), dict) and isinstance(data.get("orders"), dict)):
        raise SeedError("the seed must be an object with \"users\" and \"orders\" objects")
    data.setdefault("products", {})
    for uid, u in data["users"].items():
        try:
            assert isinstance(u["email"], str) and isinstance(u["address"]["zip"], str)
            assert isinstance(u["name"]["first_name"], str) and isinstance(u["name"]["last_name"], str)
            assert isinstance(u.get("payment_methods", {}), dict) and isinstance(u.get("orders", []), list)
        except (KeyError, TypeError, AssertionError):
            raise SeedError("user %s: not in tau's shape (name, email, address, payment_methods, orders)" % uid)
    for oid, o in data["orders"].items():
        try:
            assert o["order_id"] == oid and o["user_id"] in data["users"] and isinstance(o["status"], str)
            assert isinstance(o["address"], dict) and isinstance(o["items"], list)
            assert isinstance(o.get("fulfillments", []), list) and isinstance(o.get("payment_history", []), list)
            for it in o["items"]:
                cents(it["price"])
                assert isinstance(it["item_id"], str)
            for t in o.get("payment_history", []):
                cents(t["amount"])
                assert t["transaction_type"] in ("payment", "refund")
        except (KeyError, TypeError, AssertionError, decimal.InvalidOperation):
            raise SeedError("order %s: not in tau's shape, or its user is missing" % oid)
    return data


def extract(argv):
    """`shop_server.py extract --from DIR ORDER_ID...`: a small seed from tau's data."""
    p = argparse.ArgumentParser(prog="shop_server.py extract")
    p.add_argument("--from", dest="src", required=True)
    p.add_argument("orders", nargs="+")
    a = p.parse_args(argv)
    tau = load_seed(tau_dir=a.src)
    out = {"_about": "A few customers, orders and products of tau-bench's retail domain "
                     "(github.com/sierra-research/tau-bench, MIT licence, Copyright (c) 2024 Sierra), "
                     "made by: t/shop_server.py extract --from DIR " + " ".join(a.orders),
           "users": {}, "orders": {}, "products": {}}
    for oid in a.orders:
        o = tau["orders"][oid]
        out["orders"][oid] = o
        u = out["users"].get(o["user_id"])
        if u is None:
            u = out["users"][o["user_id"]] = dict(tau["users"][o["user_id"]])
            u["orders"] = [x for x in u["orders"] if x in a.orders]
        for it in o["items"]:
            prod = tau["products"][it["product_id"]]
            q = out["products"].setdefault(it["product_id"], {"name": prod["name"], "product_id": prod["product_id"],
                                                              "variants": {}})
            q["variants"][it["item_id"]] = prod["variants"][it["item_id"]]
    out["users"] = dict(sorted(out["users"].items()))
    out["products"] = dict(sorted(out["products"].items()))
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


# ---------------------------------------------------------------- the database

class Refused(Exception):
    """A business rule (or a missing record) refuses the operation."""

    def __init__(self, status, code, detail):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


SCHEMA_SQL = """
CREATE TABLE users (user_id TEXT PRIMARY KEY, email TEXT NOT NULL, first_name TEXT NOT NULL,
                    last_name TEXT NOT NULL, zip TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX users_email ON users (email COLLATE NOCASE);
CREATE INDEX users_name_zip ON users (zip, last_name COLLATE NOCASE);
CREATE TABLE products (product_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE orders (order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, status TEXT NOT NULL,
                     doc TEXT NOT NULL, cancel_reason TEXT, created_at TEXT NOT NULL,
                     updated_at TEXT NOT NULL);
CREATE TABLE refunds (seq INTEGER PRIMARY KEY, refund_id TEXT UNIQUE NOT NULL,
                      order_id TEXT NOT NULL, amount_cents INTEGER NOT NULL, item_ids TEXT NOT NULL,
                      reason TEXT, payment_method_id TEXT NOT NULL, idempotency_key TEXT,
                      created_at TEXT NOT NULL);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE TABLE idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, operation TEXT NOT NULL,
                          order_id TEXT, status INTEGER NOT NULL, response TEXT NOT NULL,
                          refund_id TEXT, replays INTEGER NOT NULL DEFAULT 0,
                          created_at TEXT NOT NULL);
"""
TABLES = ("users", "products", "orders", "refunds", "idempotency")
ADDRESS_KEYS = ("address1", "address2", "city", "state", "zip", "country")


class Store:
    """The shop's database (sqlite3): the seed's documents in tau's shapes, and the refunds and
    idempotency keys of this run. Every write is one transaction."""

    def __init__(self, path, seed):
        self.db = sqlite3.connect(path or ":memory:")
        self.db.row_factory = sqlite3.Row
        self.seed = seed
        self.load()

    def load(self):
        with self.db:
            for t in TABLES:
                self.db.execute("DROP TABLE IF EXISTS %s" % t)
        self.db.executescript(SCHEMA_SQL)
        with self.db:
            self.db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", [
                (uid, u["email"], u["name"]["first_name"], u["name"]["last_name"], u["address"]["zip"],
                 json.dumps(u)) for uid, u in self.seed["users"].items()])
            self.db.executemany("INSERT INTO products VALUES (?, ?)", [
                (pid, json.dumps(p)) for pid, p in self.seed["products"].items()])
            self.db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", [
                (oid, o["user_id"], o["status"], json.dumps(o), o.get("cancel_reason"),
                 o.get("created_at") or seed_time(oid), o.get("updated_at") or o.get("created_at") or seed_time(oid))
                for oid, o in self.seed["orders"].items()])

    def counts(self):
        return {t: self.db.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                for t in ("users", "orders", "products")}

    # ------------------------------------------------------------ reads

    def user(self, uid):
        row = self.db.execute("SELECT doc FROM users WHERE user_id = ?", (uid,)).fetchone()
        return json.loads(row["doc"]) if row else None

    def order_row(self, oid, status=None, refused=None):
        """The row of order oid (404 without one); with status, the order must have it (422
        refused, the code, otherwise)."""
        row = self.db.execute("SELECT * FROM orders WHERE order_id = ?", (oid,)).fetchone()
        if row is None:
            raise Refused(404, "order_not_found", "no order %s" % oid)
        if status is not None and row["status"] != status:
            raise Refused(422, refused, "order %s is %s, not %s" % (oid, row["status"], status))
        return row

    def refunds_of(self, oid):
        return [self.refund_view(r) for r in
                self.db.execute("SELECT * FROM refunds WHERE order_id = ? ORDER BY seq", (oid,))]

    @staticmethod
    def refund_view(r):
        return {"refund_id": r["refund_id"], "order_id": r["order_id"], "amount": dollars(r["amount_cents"]),
                "item_ids": json.loads(r["item_ids"]), "reason": r["reason"],
                "payment_method_id": r["payment_method_id"], "status": "succeeded", "created_at": r["created_at"]}

    @staticmethod
    def paid_cents(doc):
        """What was paid minus what was refunded."""
        return sum(cents(t["amount"]) * (1 if t["transaction_type"] == "payment" else -1)
                   for t in doc.get("payment_history", []))

    def refunded_items(self, oid):
        c = collections.Counter()
        for r in self.db.execute("SELECT item_ids FROM refunds WHERE order_id = ?", (oid,)):
            c.update(json.loads(r["item_ids"]))
        return c

    def order(self, oid):
        """The order as the API answers it."""
        row = self.order_row(oid)
        doc = json.loads(row["doc"])
        u = self.user(row["user_id"]) or {}
        left = self.refunded_items(oid)
        items = []
        for it in doc["items"]:
            refunded = left[it["item_id"]] > 0
            if refunded:
                left[it["item_id"]] -= 1
            items.append({"item_id": it["item_id"], "product_id": it["product_id"], "name": it["name"],
                          "price": it["price"], "options": it.get("options", {}), "refunded": refunded})
        return {
            "order_id": oid, "status": row["status"],
            "customer": {"user_id": row["user_id"], "email": u.get("email"), "name": u.get("name"),
                         "zip": (u.get("address") or {}).get("zip")},
            "items": items,
            "total": dollars(sum(cents(it["price"]) for it in doc["items"])),
            "currency": CURRENCY,
            "shipping_address": {k: doc["address"].get(k) for k in ADDRESS_KEYS},
            "fulfillments": doc.get("fulfillments", []),
            "payment_history": doc.get("payment_history", []),
            "refunds": self.refunds_of(oid),
            "refundable_amount": dollars(max(0, self.paid_cents(doc))),
            "cancel_reason": row["cancel_reason"],
            "created_at": row["created_at"], "updated_at": row["updated_at"],
        }

    def find_customer(self, email=None, first=None, last=None, zip_=None):
        if email is not None:
            row = self.db.execute("SELECT user_id FROM users WHERE email = ? COLLATE NOCASE ORDER BY user_id",
                                  (email,)).fetchone()
            what = "with email %s" % email
        else:
            row = self.db.execute("SELECT user_id FROM users WHERE zip = ? AND first_name = ? COLLATE NOCASE "
                                  "AND last_name = ? COLLATE NOCASE ORDER BY user_id", (zip_, first, last)).fetchone()
            what = "named %s %s with zip %s" % (first, last, zip_)
        if row is None:
            raise Refused(404, "customer_not_found", "no customer %s" % what)
        u = self.user(row["user_id"])
        pms = []
        for pm in u.get("payment_methods", {}).values():
            pms.append({k: pm[k] for k in ("id", "source", "brand", "last_four", "balance") if k in pm})
        customer = {"user_id": row["user_id"], "email": u["email"], "name": u["name"], "zip": u["address"]["zip"],
                    "address": {k: u["address"].get(k) for k in ADDRESS_KEYS}, "payment_methods": pms}
        return {"customer": customer, "orders": u.get("orders", [])}

    def product(self, pid):
        row = self.db.execute("SELECT doc FROM products WHERE product_id = ?", (pid,)).fetchone()
        if row is None:
            raise Refused(404, "product_not_found", "no product %s" % pid)
        p = json.loads(row["doc"])
        return {"product_id": p["product_id"], "name": p["name"],
                "variants": [{"item_id": v["item_id"], "options": v.get("options", {}), "available": v["available"],
                              "price": v["price"]} for v in p["variants"].values()]}

    def refunds(self):
        out = []
        for r in self.db.execute("SELECT r.*, i.replays FROM refunds r LEFT JOIN idempotency i "
                                 "ON i.refund_id = r.refund_id ORDER BY r.seq"):
            x = self.refund_view(r)
            x["idempotency_key"] = r["idempotency_key"]
            x["replays"] = r["replays"] or 0
            out.append(x)
        return out

    # ------------------------------------------------------------ writes (inside a transaction)

    def save(self, oid, doc, **cols):
        cols["doc"] = json.dumps(doc)
        cols["status"] = doc["status"]
        cols["updated_at"] = now_iso()
        self.db.execute("UPDATE orders SET %s WHERE order_id = ?" % ", ".join("%s = ?" % k for k in cols),
                        list(cols.values()) + [oid])

    def credit(self, uid, pm_id, amount_cents):
        """A refund to a gift card is credited to its balance at once (tau's rule)."""
        u = self.user(uid)
        pm = (u or {}).get("payment_methods", {}).get(pm_id)
        if pm is not None and pm.get("source") == "gift_card":
            pm["balance"] = dollars(cents(pm.get("balance", 0)) + amount_cents)
            self.db.execute("UPDATE users SET doc = ? WHERE user_id = ?", (json.dumps(u), uid))

    @staticmethod
    def payment_method(doc):
        return next((t["payment_method_id"] for t in doc.get("payment_history", [])
                     if t["transaction_type"] == "payment"), None) or "unknown"

    def create_refund(self, oid, body, key):
        row = self.order_row(oid, "delivered", "refund_not_allowed")
        doc = json.loads(row["doc"])
        item_ids = body.get("item_ids")
        if item_ids is not None:
            held = collections.Counter(it["item_id"] for it in doc["items"])
            price = {it["item_id"]: cents(it["price"]) for it in doc["items"]}
            done = self.refunded_items(oid)
            asked = collections.Counter()
            for i in item_ids:
                asked[i] += 1
                if i not in held:
                    raise Refused(422, "refund_not_allowed", "item %s is not in order %s" % (i, oid))
                if done[i] + asked[i] > held[i]:
                    raise Refused(422, "refund_not_allowed", "item %s of order %s is already refunded" % (i, oid))
            amount = sum(price[i] for i in item_ids)
        else:
            amount = cents(body["amount"])
            item_ids = []
        refundable = max(0, self.paid_cents(doc))
        if amount > refundable:
            raise Refused(422, "refund_not_allowed", "amount %s is over the refundable amount %s"
                          % (money(amount), money(refundable)))
        pm = self.payment_method(doc)
        seq = (self.db.execute("SELECT max(seq) FROM refunds").fetchone()[0] or 0) + 1
        rid = "re_%d" % (FIRST_REFUND + seq - 1)
        created = now_iso()
        self.db.execute("INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, rid, oid, amount, json.dumps(item_ids), body.get("reason"), pm, key, created))
        doc.setdefault("payment_history", []).append({"transaction_type": "refund", "amount": dollars(amount),
                                                      "payment_method_id": pm, "refund_id": rid})
        self.save(oid, doc)
        self.credit(row["user_id"], pm, amount)
        r = self.db.execute("SELECT * FROM refunds WHERE refund_id = ?", (rid,)).fetchone()
        return self.refund_view(r)

    def update_shipping_address(self, oid, body):
        row = self.order_row(oid, "pending", "address_change_not_allowed")
        doc = json.loads(row["doc"])
        doc["address"] = {k: body[k] for k in ("address1", "address2", "city", "country", "state", "zip")}
        self.save(oid, doc)
        return self.order(oid)

    def cancel_order(self, oid, body):
        row = self.order_row(oid, "pending", "cancel_not_allowed")
        doc = json.loads(row["doc"])
        paid = self.paid_cents(doc)
        pm = self.payment_method(doc)
        if paid > 0:
            doc.setdefault("payment_history", []).append({"transaction_type": "refund", "amount": dollars(paid),
                                                          "payment_method_id": pm})
            self.credit(row["user_id"], pm, paid)
        doc["status"] = "cancelled"
        self.save(oid, doc, cancel_reason=body["reason"])
        return self.order(oid)

    # ------------------------------------------------------------ idempotency

    def remembered(self, key):
        return self.db.execute("SELECT * FROM idempotency WHERE key = ?", (key,)).fetchone()

    def remember(self, key, fingerprint, op, oid, status, obj, refund_id=None):
        self.db.execute("INSERT INTO idempotency (key, fingerprint, operation, order_id, status, response, "
                        "refund_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, fingerprint, op, oid, status, json.dumps(obj), refund_id, now_iso()))

    def replayed(self, key):
        with self.db:
            self.db.execute("UPDATE idempotency SET replays = replays + 1 WHERE key = ?", (key,))


# ---------------------------------------------------------------- scenarios

def parse_scenario(raw):
    """{option: value}; counted options carry (value, N or None)."""
    return testserver.parse_counted(raw, ("reset", "close", "badjson"),
                                    "bad scenario option %r (see the docstring of t/shop_server.py)")


# ---------------------------------------------------------------- server

class Reply(Exception):
    """An error answer {"error": code, "detail": text} (raised from anywhere in a request's
    handling)."""

    def __init__(self, status, code, detail, extra=(), outcome=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, list(extra)
        self.outcome = outcome or {400: "invalid", 415: "invalid", 401: "unauthorized", 404: "not_found",
                                   409: "conflict", 422: "refused"}.get(status, "error")


KEY_SCHEMA_FALLBACK = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}


class ShopServer(testserver.BaseServer):
    name = "shop_server"

    def __init__(self, args):
        self.args = args
        self.spec = Spec()
        missing = [op for op in self.spec.ops if not hasattr(self, "op_" + op)]
        if missing:
            raise SpecError("operations without a handler: %s" % ", ".join(missing))
        self.seed = load_seed(args.seed, args.seed_tau)
        self.store = Store(args.db, self.seed)
        super().__init__(args)
        c = self.store.counts()
        self.note("%d customers, %d orders, %d products from %s" % (
            c["users"], c["orders"], c["products"], args.seed_tau or args.seed or DEFAULT_SEED))

    # ------------------------------------------------------------ control

    async def control(self, conn, req, path, query):
        q = urllib.parse.parse_qs(query)
        if path == "/_health":
            await conn.simple(req, 200, body=b"ok\n", ctype="text/plain")
        elif path == "/_reset":
            self.store.load()
            self.records.clear()
            self.counters.clear()
            await conn.simple(req, 200, dict({"cleared": True}, **self.store.counts()))
        elif path == "/_requests" and req.method == "DELETE":
            self.records.clear()
            self.counters.clear()
            await conn.simple(req, 200, {"cleared": True})
        elif path == "/_requests":
            await testserver.wait_for(q, lambda: len(testserver.matching(self.records, q, "operation")))
            await conn.simple(req, 200, testserver.last_n(testserver.matching(self.records, q, "operation"), q))
        elif path == "/_refunds":
            await testserver.wait_for(q, lambda: self.store.db.execute("SELECT count(*) FROM refunds").fetchone()[0])
            await conn.simple(req, 200, {"refunds": self.store.refunds()})
        else:  # /_orders/<id>
            try:
                oid = order_key(urllib.parse.unquote(path[len("/_orders/"):]))
                await conn.simple(req, 200, self.store.order(oid))
            except Refused as e:
                await conn.simple(req, e.status, {"error": e.code, "detail": e.detail})
        return True

    # ------------------------------------------------------------ the API

    async def dispatch(self, conn, req):
        """Answer one request; returns False when the connection must be closed."""
        path, _, query = req.target.partition("?")
        if path in ("/_health", "/_reset", "/_requests", "/_refunds") or path.startswith("/_orders/"):
            return await self.control(conn, req, path, query)

        h = req.headers
        rec = self.record(conn, req, scenario=None, operation=None, order_id=None,
                          idempotency_key=h.get("idempotency-key"), authorization="authorization" in h,
                          content_type=h.get("content-type"), body=None, errors=[], status=None,
                          outcome="pending", applied=False, refund_id=None)
        parsed, is_json, jerr = None, False, "empty body"
        if req.body:
            parsed, is_json, jerr = testserver.parse_json(req.body)
            rec["body"] = parsed if is_json else None
        try:
            m = re.fullmatch(r"(?:/([^/]+))?/api(/.*)", path)
            rest = m.group(2).rstrip("/") if m else None
            route = self.spec.route(rest) if rest else None
            if route is None:
                raise Reply(404, "not_found", "no endpoint %s %s" % (req.method, path), outcome="error")
            scenario = m.group(1) or ""
            rec["scenario"] = scenario
            methods, params, template = route
            if req.method not in methods:
                raise Reply(405, "method_not_allowed", "method %s not allowed on %s; use %s" % (
                    req.method, "/api" + template, ", ".join(sorted(methods))),
                    extra=[("Allow", ", ".join(sorted(methods)))], outcome="error")
            op = self.spec.ops[methods[req.method]]
            rec["operation"] = op["id"]
            if "{order_id}" in template:
                rec["order_id"] = order_key(params[0])
            if self.args.record_dir and req.body and op["body"] is not None:
                with open(os.path.join(self.args.record_dir, "%06d-%s.json" % (rec["seq"], op["id"])), "wb") as f:
                    f.write(req.body)
            try:
                sc = parse_scenario(scenario)
            except ScenarioError as e:
                raise Reply(400, "bad_scenario", str(e))
            self.auth(h.get("authorization"))
            args = self.check_query(op, query)
            if op["body"] is not None:
                ctype = (h.get("content-type") or "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise Reply(415, "unsupported_media_type", "Content-Type must be application/json")
            key = self.check_key(op, h.get("idempotency-key"))
            body = None
            if op["body"] is not None:
                if not is_json:
                    rec["errors"] = ["body is not JSON"]
                    raise Reply(400, "invalid_json", "the body is not JSON: %s" % jerr)
                body = parsed
                errors = [] if self.args.no_validate else self.spec.check(op["body"], body)
                if not errors and isinstance(body, dict) and isinstance(body.get("amount"), (int, float)) \
                        and not two_decimals(body["amount"]):
                    errors = ["/amount: %r has more than two decimal places" % body["amount"]]
                if errors:
                    rec["errors"] = errors
                    raise Reply(400, "invalid_request", "; ".join(errors[:10]))
            return await self.operate(conn, req, rec, scenario, sc, op, params, args, key, body)
        except Reply as r:
            rec["status"], rec["outcome"] = r.status, r.outcome
            self.note("#%d %s %s -> %d %s: %s" % (rec["seq"], req.method, req.target, r.status, r.code, r.detail[:200]))
            await conn.simple(req, r.status, {"error": r.code, "detail": r.detail}, extra=r.extra)
            return True

    def auth(self, value):
        err = testserver.bearer_auth(value, self.args.require_key, "shop")
        if err:
            raise Reply(401, "unauthorized", err[0], extra=err[1])

    def check_query(self, op, query):
        args = {}
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            p = op["query"].get(name)
            if p is None:
                raise Reply(400, "invalid_request", "unknown query parameter %r for %s %s" % (
                    name, op["method"], "/api" + op["template"]))
            if name in args:
                raise Reply(400, "invalid_request", "query parameter %r given twice" % name)
            errors = self.spec.check(p["schema"], value)
            if errors:
                raise Reply(400, "invalid_request", "query parameter %s: %s" % (name, errors[0].split(": ", 1)[1]))
            args[name] = value
        for name, p in op["query"].items():
            if p.get("required") and name not in args:
                raise Reply(400, "invalid_request", "query parameter %r is required" % name)
        return args

    def check_key(self, op, key):
        if op["key"] is None:
            return None  # not an operation that takes one: ignored
        if not key:
            if op["key"]:
                raise Reply(400, "idempotency_key_required", "Idempotency-Key required (%s)" % op["id"])
            return None
        if self.spec.check(op["key_schema"] or KEY_SCHEMA_FALLBACK, key):
            raise Reply(400, "invalid_request", "Idempotency-Key must be 1 to 255 visible ASCII characters")
        return key

    async def operate(self, conn, req, rec, scenario, sc, op, params, args, key, body):
        seq = rec["seq"]
        count = self.count(scenario)
        if await conn.misbehave(sc, count, self.note):
            return False
        failure = testserver.scripted_failure(sc, count)
        if failure:
            raise Reply(failure[0], "scripted_failure", "scripted %d from shop_server.py" % failure[0], failure[1],
                        outcome="scripted")

        handler = getattr(self, "op_" + op["id"])
        extra = []
        try:
            if op["body"] is None:  # reads
                status, obj = handler(params, args)
                rec["outcome"] = "ok"
            else:
                oid = order_key(params[0])
                fingerprint = canonical([op["id"], oid, body])
                prev = self.store.remembered(key) if key else None
                if prev is not None:
                    if prev["fingerprint"] != fingerprint:
                        raise Reply(409, "idempotency_key_reused", "Idempotency-Key %s was used for another "
                                    "request (%s on order %s)" % (short(key, 60), prev["operation"], prev["order_id"]))
                    self.store.replayed(key)
                    status, obj = 200, json.loads(prev["response"])
                    rec["outcome"], rec["refund_id"] = "replayed", prev["refund_id"]
                    extra.append(("Idempotent-Replayed", "true"))
                else:
                    with self.store.db:  # one transaction: the change and its key
                        status, obj = handler(oid, body, key)
                        rid = obj.get("refund_id") if op["id"] == "create_refund" else None
                        if key:
                            self.store.remember(key, fingerprint, op["id"], oid, status, obj, rid)
                    rec["outcome"], rec["applied"], rec["refund_id"] = "ok", True, rid
        except Refused as e:
            raise Reply(e.status, e.code, e.detail)
        except (KeyError, TypeError, AttributeError, ValueError, decimal.InvalidOperation) as e:
            if not self.args.no_validate:
                raise
            raise Reply(400, "invalid_request", "the body cannot be used (--no-validate): %s: %s" % (
                type(e).__name__, e))

        if applies(sc.get("delay"), count):
            if await conn.pause(sc["delay"][0] / 1000.0):
                rec["outcome"] = "client_closed"
                self.note("#%d %s -> client left during the delay" % (seq, req.target))
                return False
        data = dumps(obj)
        if applies(sc.get("badjson"), count):
            data = data[:len(data) // 2]
        rec["status"] = status
        self.note("#%d %s %s -> %d %s" % (seq, req.method, req.target, status, rec["outcome"]))
        await conn.head(status, "application/json", len(data), req.keep_alive, extra)
        await conn.send(data)
        return True

    # ------------------------------------------------------------ operations (named by operationId)

    def op_get_order(self, params, args):
        return 200, self.store.order(order_key(params[0]))

    def op_find_customer(self, params, args):
        names = ("first_name", "last_name", "zip")
        if "email" in args and not any(n in args for n in names):
            return 200, self.store.find_customer(email=args["email"])
        if "email" not in args and all(n in args for n in names):
            return 200, self.store.find_customer(first=args["first_name"], last=args["last_name"], zip_=args["zip"])
        raise Reply(400, "invalid_request", "give email, or first_name, last_name and zip")

    def op_get_product(self, params, args):
        return 200, self.store.product(params[0])

    def op_create_refund(self, oid, body, key):
        return 201, self.store.create_refund(oid, body, key)

    def op_update_shipping_address(self, oid, body, key):
        return 200, self.store.update_shipping_address(oid, body)

    def op_cancel_order(self, oid, body, key):
        return 200, self.store.cancel_order(oid, body)


def order_key(value):
    """An order id from a (decoded) path segment: "#W2611340" or "W2611340"."""
    return value if value.startswith("#") else "#" + value


# ---------------------------------------------------------------- check, main

def check_files(paths):
    """`shop_server.py check PATH...`: exit status 0 (all valid), 1 or 2 (no files)."""
    spec = Spec()
    rx = re.compile(r"\d{6}-(%s)\.json" % "|".join(op for op, o in spec.ops.items() if o["body"] is not None))
    files = testserver.recorded_files(paths, rx, "shop_server", "request")
    if files is None:
        return 2
    bad = 0
    for path in files:
        m = rx.fullmatch(os.path.basename(path))
        try:
            if m is None:
                raise LookupError("not named NNNNNN-<operationId>.json")
            with open(path, "rb") as f:
                inst = json.loads(f.read().decode("utf-8"), parse_constant=reject_constant)
            errors = spec.check(spec.ops[m.group(1)]["body"], inst)
        except (ValueError, UnicodeDecodeError) as e:
            errors = ["not JSON: %s" % e]
        except (OSError, LookupError) as e:
            errors = [str(e)]
        if errors:
            bad += 1
            print("%s: INVALID: %s" % (path, "; ".join(errors)))
    print("shop_server check: %d of %d request files valid" % (len(files) - bad, len(files)))
    return 1 if bad else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        return check_files(argv[1:])
    if argv[:1] == ["extract"]:
        return extract(argv[1:])
    p = testserver.parser("Demo shop API (orders, refunds) test server (see the docstring).",
                          no_validate="skip schema validation of request bodies")
    p.add_argument("--db", help="sqlite3 database file (default: in memory); rebuilt from the seed")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seed", help="seed JSON {users, orders, products} (default t/fixtures/shop-seed.json)")
    g.add_argument("--seed-tau", metavar="DIR", help="tau's users.json, orders.json, products.json from DIR")
    args = p.parse_args(argv)
    try:
        srv = ShopServer(args)
    except (SeedError, SpecError, sqlite3.Error, OSError) as e:
        log("cannot start: %s" % e)
        return 2
    return testserver.run(args, srv, testserver.BaseConn, "shop_server")


if __name__ == "__main__":
    sys.exit(main())
