#!/usr/bin/python3
"""Self-test of t/kb_server.py: starts it (as the suites do, via its CLI), drives every endpoint,
scenario option and error path over raw sockets, and validates what it emits against the
published schemas (openai, tei and qdrant bundles of ../shared).

    /usr/bin/python3 t/kb_server_selftest.py [-v]     exit 0 = all passed
"""
import asyncio
import base64
import glob
import hashlib
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no t/__pycache__ in the work tree
import kb_server  # noqa: E402
import selftest_util  # noqa: E402
from selftest_util import read_response  # noqa: E402

SERVER = os.path.join(HERE, "kb_server.py")
HELPCENTER = os.path.join(os.path.dirname(HERE), "kb-build", "sample-helpcenter")
SHARED = os.path.join(os.path.dirname(HERE), "..", "shared")
PORT = None
PROC = None
TMP = tempfile.mkdtemp(prefix="kb-selftest-")
REC = os.path.join(TMP, "rec")
V = {}
JSON = {"Content-Type": "application/json"}


def validator(defname, bundle):
    if (bundle, defname) not in V:
        V[(bundle, defname)] = kb_server.Validator(defname, bundle=bundle, strict=True)
    return V[(bundle, defname)]


def start(*extra):
    return selftest_util.start(SERVER, TMP, *extra)


def setUpModule():
    global PROC, PORT
    PROC, PORT = start("--record-dir", REC)


def tearDownModule():
    selftest_util.stop(PROC)
    shutil.rmtree(TMP, ignore_errors=True)


def request(path, obj=None, port=None, **kw):
    return selftest_util.json_request(port or PORT, path, obj, **kw)


def records(query=""):
    r = request("/_requests" + query, method="GET")
    assert r.status == 200
    return json.loads(r.body)


def last_record():
    return records("?last=1")[0]


def cosine(a, b):
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb) if na and nb else 0.0


def close(a, b, eps=1e-6):
    return abs(a - b) <= eps * max(1.0, abs(a), abs(b))


# ---- client side of Qdrant tests
def qpath(coll, sub="", scn=""):
    return ("/%s" % scn if scn else "") + "/collections/" + coll + sub


def qreq(verb, coll, sub="", obj=None, scn="", **kw):
    kw["method"] = verb
    return request(qpath(coll, sub, scn), obj, **kw)


class T(unittest.TestCase):
    maxDiff = None

    # ---------------------------------------------------------------- helpers
    def ok(self, r, resp_def, bundle="qdrant"):
        """A Qdrant success (envelope checked against resp.<op>.200) or any JSON 200."""
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        o = json.loads(r.body)
        if resp_def:
            self.assertEqual(validator(resp_def, bundle).check(o), [], o)
        if bundle == "qdrant":
            self.assertEqual(o["status"], "ok")
            self.assertIsInstance(o["time"], float)
            return o["result"]
        return o

    def qerr(self, r, status, prefix):
        self.assertEqual(r.status, status, r.body)
        o = json.loads(r.body)
        self.assertEqual(validator("ErrorResponse", "qdrant").check(o), [])
        self.assertEqual(set(o), {"status", "time"})
        self.assertTrue(o["status"]["error"].startswith(prefix), o["status"]["error"])
        return o["status"]["error"]

    def oai_err(self, r, status, etype=None, code=None):
        self.assertEqual(r.status, status, r.body)
        o = json.loads(r.body)
        self.assertEqual(validator("ErrorResponse", "openai").check(o), [])
        if etype:
            self.assertEqual(o["error"]["type"], etype)
        if code:
            self.assertEqual(o["error"]["code"], code)
        return o["error"]

    def tei_err(self, r, status, etype):
        self.assertEqual(r.status, status, r.body)
        o = json.loads(r.body)
        self.assertEqual(validator("ErrorResponse", "tei").check(o), [])
        self.assertEqual(o["error_type"], etype)
        return o["error"]

    def cohere_err(self, r, status):
        self.assertEqual(r.status, status, r.body)
        o = json.loads(r.body)
        self.assertEqual(set(o), {"id", "message"})
        return o["message"]

    def new_collection(self, name, cfg):
        qreq("DELETE", name, method="DELETE")
        self.assertIs(self.ok(qreq("PUT", name, obj=cfg, method="PUT"), "resp.create_collection.200"), True)

    def upsert(self, name, points, scn="", wait=True):
        r = qreq("PUT", name, "/points" + ("?wait=true" if wait else ""), {"points": points}, scn=scn, method="PUT")
        return self.ok(r, "resp.upsert_points.200")

    def query(self, name, body, scn=""):
        res = self.ok(qreq("POST", name, "/points/query", body, scn=scn), "resp.query_points.200")
        return res["points"]

    def ids(self, points):
        return [p["id"] for p in points]

    # ---------------------------------------------------------------- basics
    def test_health_404_cli(self):
        self.assertEqual(request("/_health", method="GET").body, b"ok\n")
        r = request("/nope", {})
        self.assertEqual((r.status, r.headers["content-type"]), (404, "text/plain; charset=utf-8"))
        self.assertIn(b"no endpoint POST /nope", r.body)
        self.assertEqual(request("/a/b/c", {}).status, 404)
        rec = last_record()
        self.assertEqual((rec["service"], rec["scenario"], rec["status"]), (None, None, 404))

    def test_analysis_and_embedding_function(self):
        stem = kb_server.stem
        for w, s in (("shipped", "ship"), ("shipping", "ship"), ("logged", "log"), ("boxes", "box"),
                     ("refunds", "refund"), ("address", "address"), ("addresses", "address"), ("status", "status"),
                     ("this", "this"), ("billed", "bill"), ("cancelled", "cancell"), ("used", "used"), ("bus", "bus")):
            self.assertEqual(stem(w), s, w)
        A = kb_server.analyze
        self.assertEqual(A("Can I call off my purchase?"), ["cancel", "order"])
        self.assertEqual(A("When will I get my money back?"), ["refund"])
        self.assertEqual(A("I forgot my credentials and cannot log on"), ["forgot", "login", "login"])
        self.assertEqual(A("How do I send back the jacket? Shipping is slow"), ["return", "jacket", "delivery", "slow"])
        self.assertEqual(A("Gift cards, e-mail, 2FA"), ["giftcard", "email", "twofactor"])
        self.assertEqual(A("the and of"), [])
        E = kb_server.embed
        self.assertEqual(E("refund"), E("reimbursement"))
        self.assertEqual(E("money back"), E("Refunds!"))
        self.assertEqual(E("the and of"), [0.0] * 64)
        self.assertEqual(len(E("x", 7)), 7)
        # the hashing, spelled out
        v = [0.0] * 64
        for t in ("cancel", "order"):
            d = hashlib.md5(t.encode()).digest()
            v[int.from_bytes(d[:4], "little") % 64] += -1.0 if d[4] & 1 else 1.0
        n = math.sqrt(sum(x * x for x in v))
        self.assertEqual(E("call off the purchase"), [x / n for x in v])
        self.assertEqual(E("cancel order cancel", 16, normalize=False), E("cancel order cancel", 16, False))
        raw = E("cancel cancel", 64, normalize=False)
        self.assertEqual(sorted(abs(x) for x in raw)[-1], 2.0)
        # rerank logit
        L = kb_server.rerank_logit
        self.assertEqual(L("refund window", "A refund or return window"), 4.0)   # both tokens, not adjacent
        self.assertEqual(L("refund window", "refund window for EU"), 6.0)
        self.assertEqual(L("call off purchase", "Cancel an order"), 6.0)
        self.assertEqual(L("refund shipping", "refund"), 0.0)
        self.assertEqual(L("the", "anything"), -4.0)
        self.assertEqual(L("refund", "gift cards"), -4.0)

    # ---------------------------------------------------------------- OpenAI embeddings
    def emb(self, scn="", obj=None, **kw):
        path = ("/%s/v1/embeddings" % scn) if scn else "/v1/embeddings"
        return request(path, obj if obj is not None else {"model": "text-embedding-3-small",
                                                           "input": ["Can I call off my purchase?", "refund"]}, **kw)

    def test_openai_embeddings(self):
        o = self.ok(self.emb(), "CreateEmbeddingResponse", "openai")
        self.assertEqual((o["object"], o["model"]), ("list", "text-embedding-3-small"))
        self.assertEqual([d["index"] for d in o["data"]], [0, 1])
        self.assertEqual(o["data"][0]["embedding"], kb_server.embed("Can I call off my purchase?"))
        self.assertEqual(len(o["data"][1]["embedding"]), 64)
        self.assertTrue(close(sum(x * x for x in o["data"][1]["embedding"]), 1.0))
        self.assertEqual(o["usage"], {"prompt_tokens": 7, "total_tokens": 7})
        o = self.ok(request("/embeddings", {"model": "m", "input": "refund", "dimensions": 300}),
                    "CreateEmbeddingResponse", "openai")
        self.assertEqual(o["data"][0]["embedding"], kb_server.embed("refund", 300))
        o = self.ok(request("/v1/embeddings", {"model": "m", "input": [[12, 345], [7]], "user": "u"}),
                    "CreateEmbeddingResponse", "openai")
        self.assertEqual(o["data"][0]["embedding"], kb_server.embed("12 345"))
        self.assertEqual(o["usage"]["prompt_tokens"], 3)
        o = self.ok(request("/v1/embeddings", {"model": "m", "input": [1, 2, 3]}), "CreateEmbeddingResponse", "openai")
        self.assertEqual(len(o["data"]), 1)
        o = json.loads(request("/v1/embeddings", {"model": "m", "input": ["refund", "x"], "dimensions": 8,
                                                  "encoding_format": "base64"}).body)
        vec = struct.unpack("<8f", base64.b64decode(o["data"][0]["embedding"]))
        self.assertTrue(all(close(a, b) for a, b in zip(vec, kb_server.embed("refund", 8))))
        o = self.ok(request("/v1/embeddings", {"model": "m", "input": ["a"], "encoding_format": "float"}),
                    "CreateEmbeddingResponse", "openai")

    def test_openai_errors(self):
        e = self.oai_err(self.emb(obj={"model": "m", "input": "x", "bogus": 1}), 400, "invalid_request_error",
                         "schema_validation_failed")
        self.assertIn("bogus", e["message"])
        rec = last_record()
        self.assertEqual((rec["valid"], rec["service"]), (False, "embeddings"))
        self.assertTrue(any("bogus" in x for x in rec["errors"]))
        self.oai_err(self.emb(obj={"model": "m", "input": []}), 400, code="schema_validation_failed")
        self.oai_err(self.emb(obj={"model": "m"}), 400, code="schema_validation_failed")
        e = self.oai_err(self.emb(obj={"model": "m", "input": ["ok", ""]}), 400, "invalid_request_error")
        self.assertIn("'$.input' is invalid", e["message"])
        e = self.oai_err(self.emb(obj={"model": "m", "input": "x", "dimensions": 9000}), 400, code="invalid_value")
        self.assertEqual(e["param"], "dimensions")
        self.oai_err(self.emb(raw=b"{nope"), 400, "invalid_request_error")
        self.assertEqual(last_record()["body"], "{nope")
        self.oai_err(self.emb(raw=b'{"model":"m","input":"x","dimensions":NaN}'), 400)
        self.oai_err(request("/v1/embeddings", method="GET"), 405, code="method_not_allowed")
        self.oai_err(self.emb("nosuch"), 400, code="bad_scenario")
        self.oai_err(self.emb("dim=0"), 400, code="bad_scenario")
        self.oai_err(self.emb("first_ms=x"), 400, code="bad_scenario")
        self.oai_err(self.emb(headers={"Authorization": "Basic Zm9v"}), 401, code="invalid_api_key")
        # no Content-Type is fine for OpenAI
        self.ok(self.emb(headers={"Content-Type": None}), "CreateEmbeddingResponse", "openai")

    def test_openai_scenarios(self):
        o = self.ok(self.emb("shuffle"), "CreateEmbeddingResponse", "openai")
        self.assertEqual([d["index"] for d in o["data"]], [1, 0])
        self.assertEqual(o["data"][1]["embedding"], kb_server.embed("Can I call off my purchase?"))
        o = self.ok(self.emb("dim=5", {"model": "m", "input": "x", "dimensions": 100}), "CreateEmbeddingResponse", "openai")
        self.assertEqual(len(o["data"][0]["embedding"]), 5)
        o = self.ok(self.emb("empty"), "CreateEmbeddingResponse", "openai")
        self.assertEqual(o["data"], [])
        got = []
        for _ in range(4):
            r = self.emb("fail=429:1,ra=2")
            got.append(r.status)
            if r.status == 429:
                self.oai_err(r, 429, "requests", "rate_limit_exceeded")
                self.assertEqual(r.headers["retry-after"], "2")
        self.assertEqual(got, [429, 200, 429, 200])
        for status, etype in ((500, "server_error"), (503, "server_error"), (400, "invalid_request_error"),
                              (404, "invalid_request_error")):
            self.oai_err(self.emb("fail=%d" % status), status, etype)
        self.oai_err(self.emb("fail=502"), 502, "server_error")

    def test_require_key(self):
        proc, port = start("--require-key", "sk-kb")
        try:
            # OpenAI
            self.oai_err(self.emb(port=port), 401)
            self.oai_err(self.emb(port=port, headers={"Authorization": "Bearer no"}), 401, code="invalid_api_key")
            self.ok(self.emb(port=port, headers={"Authorization": "Bearer sk-kb"}), "CreateEmbeddingResponse", "openai")
            # TEI: empty 401
            for path, body in (("/embed", {"inputs": "x"}), ("/rerank", {"query": "q", "texts": ["a"]})):
                r = request(path, body, port=port)
                self.assertEqual((r.status, r.body), (401, b""))
                r = request(path, body, port=port, headers={"Authorization": "Bearer no"})
                self.assertEqual((r.status, r.body), (401, b""))
                self.assertEqual(request(path, body, port=port, headers={"Authorization": "Bearer sk-kb"}).status, 200)
            # Cohere
            body = {"model": "rerank-v3.5", "query": "q", "documents": ["a"]}
            self.assertEqual(self.cohere_err(request("/v2/rerank", body, port=port), 401), "no api key supplied")
            self.assertEqual(self.cohere_err(request("/v2/rerank", body, port=port,
                                                     headers={"Authorization": "Bearer x"}), 401), "invalid api token")
            self.assertEqual(request("/v2/rerank", body, port=port, headers={"Authorization": "Bearer sk-kb"}).status, 200)
            # Qdrant: plain-text 401
            r = request("/collections", method="GET", port=port)
            self.assertEqual((r.status, r.body), (401, b"Must provide an API key or an Authorization bearer token"))
            self.assertTrue(r.headers["content-type"].startswith("text/plain"))
            r = request("/collections", method="GET", port=port, headers={"api-key": "nope"})
            self.assertEqual((r.status, r.body), (401, b"Invalid API key or JWT"))
            self.assertEqual(request("/collections", method="GET", port=port, headers={"api-key": "sk-kb"}).status, 200)
            self.assertEqual(request("/collections", method="GET", port=port,
                                     headers={"Authorization": "Bearer sk-kb"}).status, 200)
            # control endpoints need no key
            self.assertEqual(request("/_health", method="GET", port=port).status, 200)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(5), 0)

    def test_no_validate_and_internal_error(self):
        proc, port = start("--no-validate")
        try:
            r = request("/v1/embeddings", {"model": "m", "input": "x", "bogus": 1}, port=port)
            self.assertEqual(r.status, 200)
            r = request("/_requests?last=1", method="GET", port=port)
            self.assertIsNone(json.loads(r.body)[0]["valid"])
            e = self.oai_err(request("/v1/embeddings", {"model": "m", "input": 5}, port=port), 500, "server_error")
            self.assertIn("internal error", e["message"])
            # Cohere is checked by the server itself, always
            self.cohere_err(request("/v2/rerank", {"query": "q"}, port=port), 400)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(5), 0)

    def test_parent_pid(self):
        pf = os.path.join(TMP, "parent-port")
        sh = subprocess.Popen(["/bin/sh", "-c", 'exec /usr/bin/python3 "$0" --port 0 --port-file "$1" --quiet '
                               '--parent-pid $PPID', SERVER, pf], stdout=subprocess.DEVNULL)
        # the server's parent is this process; it must outlive a parent that stays
        for _ in range(100):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        time.sleep(0.7)
        self.assertIsNone(sh.poll())
        sh.terminate()
        self.assertEqual(sh.wait(5), 0)
        # and a server whose --parent-pid is not its parent exits at once
        proc = subprocess.Popen(["/usr/bin/python3", SERVER, "--port", "0", "--quiet", "--parent-pid", "1"],
                                stdout=subprocess.DEVNULL)
        self.assertEqual(proc.wait(5), 0)

    # ---------------------------------------------------------------- TEI embed
    def test_tei_embed(self):
        o = self.ok(request("/embed", {"inputs": "Can I call off my purchase?"}), "EmbedResponse", "tei")
        self.assertEqual(o, [kb_server.embed("Can I call off my purchase?")])
        o = self.ok(request("/embed", {"inputs": ["refund", "return"], "normalize": True, "truncate": False,
                                       "truncation_direction": "right", "prompt_name": None, "dimensions": None}),
                    "EmbedResponse", "tei")
        self.assertEqual(o, [kb_server.embed("refund"), kb_server.embed("return")])
        o = self.ok(request("/embed", {"inputs": "cancel cancel order", "normalize": False, "dimensions": 128,
                                       "truncation_direction": "Left"}), "EmbedResponse", "tei")
        self.assertEqual(o, [kb_server.embed("cancel cancel order", 128, False)])
        self.assertEqual(sorted(abs(x) for x in o[0])[-2:], [1.0, 2.0])
        o = self.ok(request("/embed", {"inputs": [[12, 345], [7]]}), "EmbedResponse", "tei")
        self.assertEqual(o[0], kb_server.embed("12 345"))
        o = self.ok(request("/embed", {"inputs": [12, 345]}), "EmbedResponse", "tei")
        self.assertEqual(len(o), 1)
        o = self.ok(request("/dim=3/embed", {"inputs": ["a", "b"], "dimensions": 50}), "EmbedResponse", "tei")
        self.assertEqual([len(v) for v in o], [3, 3])
        self.assertEqual(self.ok(request("/empty/embed", {"inputs": "a"}), "EmbedResponse", "tei"), [])
        self.assertEqual(self.ok(request("/embed", {"inputs": ["x"] * 32}), "EmbedResponse", "tei").__len__(), 32)

    def test_tei_errors(self):
        e = self.tei_err(request("/embed", {"inputs": ["x"] * 33}), 422, "Validation")
        self.assertEqual(e, "batch size 33 > maximum allowed batch size 32")
        self.assertEqual(self.tei_err(request("/embed", {"inputs": []}), 400, "Empty"), "`inputs` cannot be empty")
        self.tei_err(request("/embed", {"inputs": "x", "dimensions": 0}), 422, "Validation")
        self.tei_err(request("/embed", {"inputs": "x", "dimensions": 9000}), 422, "Validation")
        r = request("/embed", {"inputs": "x", "bogus": True})
        self.assertEqual((r.status, r.headers["content-type"]), (422, "text/plain; charset=utf-8"))
        self.assertTrue(r.body.startswith(b"Failed to deserialize the JSON body into the target type: "), r.body)
        self.assertIn(b"bogus", r.body)
        r = request("/embed", {"inputs": 5})
        self.assertEqual(r.status, 422)
        r = request("/embed", raw=b"{")
        self.assertEqual(r.status, 400)
        self.assertTrue(r.body.startswith(b"Failed to parse the request body as JSON: "))
        r = request("/embed", {"inputs": "x"}, headers={"Content-Type": "text/plain"})
        self.assertEqual((r.status, r.body), (415, b"Expected request with `Content-Type: application/json`"))
        r = request("/embed", {"inputs": "x"}, headers={"Content-Type": None})
        self.assertEqual(r.status, 415)
        self.assertEqual(request("/embed", {"inputs": "x"}, headers={"Content-Type": "application/json; charset=utf-8"}).status, 200)
        r = request("/embed", method="GET")
        self.assertEqual((r.status, r.body), (405, b""))
        self.assertEqual(self.tei_err(request("/x=1/embed", {"inputs": "x"}), 400, "Validation")[:12], "bad_scenario")
        for status, etype in ((429, "Overloaded"), (503, "Unhealthy"), (424, "Backend"), (400, "Empty"),
                              (413, "Validation"), (500, "Backend")):
            self.tei_err(request("/fail=%d/embed" % status, {"inputs": "x"}), status, etype)
        self.tei_err(request("/fail=429/rerank", {"query": "q", "texts": ["a"]}), 429, "Overloaded")
        r = request("/fail=401/embed", {"inputs": "x"})
        self.assertEqual((r.status, r.body), (401, b""))

    # ---------------------------------------------------------------- rerank
    DOCS = ["Shipping takes 3 days.", "EU customers may return items within 30 days.",
            "Cancel an order while it is pending.", "Refund window for EU returns: 30 days.", "Gift cards"]

    def test_tei_rerank(self):
        o = self.ok(request("/rerank", {"query": "refund window EU", "texts": self.DOCS}), "RerankResponse", "tei")
        scores = {r["index"]: r["score"] for r in o}
        for i, d in enumerate(self.DOCS):
            self.assertTrue(close(scores[i], kb_server.sigmoid(kb_server.rerank_logit("refund window EU", d))))
        self.assertEqual([r["index"] for r in o], [3, 1, 0, 2, 4])  # ties (0, 2, 4) by index
        self.assertTrue(all(0 < r["score"] < 1 for r in o))
        self.assertEqual([r["score"] for r in o], sorted((r["score"] for r in o), reverse=True))
        o = self.ok(request("/rerank", {"query": "refund window EU", "texts": self.DOCS, "raw_scores": True,
                                        "return_text": True, "truncate": True, "truncation_direction": "left"}),
                    "RerankResponse", "tei")
        self.assertEqual((o[0]["index"], o[0]["score"], o[0]["text"]), (3, 6.0, self.DOCS[3]))
        self.assertEqual(o[-1]["score"], -4.0)
        e = self.tei_err(request("/rerank", {"query": "q", "texts": ["a"] * 33}), 422, "Validation")
        self.assertEqual(e, "batch size 33 > maximum allowed batch size 32")
        self.assertEqual(self.tei_err(request("/rerank", {"query": "q", "texts": []}), 400, "Empty"),
                         "`texts` cannot be empty")
        self.assertEqual(request("/rerank", {"query": "q", "texts": ["a"], "top_n": 1}).status, 422)
        self.assertEqual(request("/rerank", {"texts": ["a"]}).status, 422)
        self.assertEqual(self.ok(request("/empty/rerank", {"query": "q", "texts": ["a"]}), "RerankResponse", "tei"), [])
        r = request("/rerank", method="PUT")
        self.assertEqual((r.status, r.body), (405, b""))

    def test_cohere_rerank(self):
        body = {"model": "rerank-v3.5", "query": "refund window EU", "documents": self.DOCS, "top_n": 2,
                "max_tokens_per_doc": 4096, "priority": 0}
        o = self.ok(request("/v2/rerank", body), None, "cohere")
        self.assertEqual(set(o), {"id", "results", "meta"})
        uuid.UUID(o["id"])
        self.assertEqual(o["meta"], {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}})
        self.assertEqual([r["index"] for r in o["results"]], [3, 1])
        self.assertTrue(close(o["results"][0]["relevance_score"], kb_server.sigmoid(6.0)))
        self.assertEqual(set(o["results"][0]), {"index", "relevance_score"})
        o = self.ok(request("/v2/rerank", dict(body, top_n=99)), None, "cohere")
        self.assertEqual([r["index"] for r in o["results"]], [3, 1, 0, 2, 4])
        del body["top_n"]
        self.assertEqual(len(self.ok(request("/v2/rerank", body), None, "cohere")["results"]), 5)
        # max_tokens_per_doc cuts documents: "Refund window for EU..." keeps only "Refund"
        o = self.ok(request("/v2/rerank", dict(body, max_tokens_per_doc=1)), None, "cohere")
        self.assertTrue(close(o["results"][0]["relevance_score"], kb_server.sigmoid(8 / 3 - 4)))
        self.assertEqual(self.ok(request("/empty/v2/rerank", body), None, "cohere")["results"], [])
        self.assertEqual(last_record()["valid"], True)
        for bad_body, word in (({"model": "m", "query": "q", "documents": ["a"], "return_documents": True}, "return_documents"),
                               ({"query": "q", "documents": ["a"]}, "model"),
                               ({"model": "", "query": "q", "documents": ["a"]}, "model"),
                               ({"model": "m", "query": 1, "documents": ["a"]}, "query"),
                               ({"model": "m", "query": "q", "documents": [{"text": "a"}]}, "strings"),
                               ({"model": "m", "query": "q", "documents": []}, "empty"),
                               ({"model": "m", "query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
                               ({"model": "m", "query": "q", "documents": ["a"], "max_tokens_per_doc": True}, "max_tokens"),
                               ({"model": "m", "query": "q", "documents": ["a"], "priority": 1000}, "priority"),
                               ([1], "object")):
            msg = self.cohere_err(request("/v2/rerank", bad_body), 400)
            self.assertTrue(msg.startswith("invalid request: "), msg)
            self.assertIn(word, msg)
            rec = last_record()
            self.assertEqual((rec["valid"], rec["service"]), (False, "rerank-cohere"))
        self.assertIn("parse", self.cohere_err(request("/v2/rerank", raw=b"nope"), 400))
        self.cohere_err(request("/v2/rerank", method="GET"), 405)
        self.assertTrue(self.cohere_err(request("/zz/v2/rerank", body), 400).startswith("bad_scenario"))
        r = request("/fail=429:1,ra=3/v2/rerank", body)
        self.assertEqual(r.headers["retry-after"], "3")
        self.assertIn("too many requests", self.cohere_err(r, 429))
        self.assertEqual(request("/fail=429:1,ra=3/v2/rerank", body).status, 200)
        self.cohere_err(request("/fail=500/v2/rerank", body), 500)

    # ---------------------------------------------------------------- Qdrant: collections
    def test_qdrant_collections(self):
        name = "life"
        qreq("DELETE", name, method="DELETE")
        self.assertEqual(self.ok(qreq("GET", name, "/exists", method="GET"), "resp.collection_exists.200"), {"exists": False})
        self.qerr(qreq("GET", name, method="GET"), 404, "Not found: Collection `life` doesn't exist!")
        self.assertIs(self.ok(qreq("DELETE", name, method="DELETE"), "resp.delete_collection.200"), False)
        cfg = {"vectors": {"dense": {"size": 4, "distance": "Cosine", "on_disk": True}},
               "sparse_vectors": {"sparse": {"modifier": "idf"}}, "hnsw_config": {"m": 0}, "on_disk_payload": True}
        self.assertIs(self.ok(qreq("PUT", name, obj=cfg, method="PUT"), "resp.create_collection.200"), True)
        self.qerr(qreq("PUT", name, obj=cfg, method="PUT"), 409, "Wrong input: Collection `life` already exists!")
        self.assertEqual(self.ok(qreq("GET", name, "/exists", method="GET"), "resp.collection_exists.200"), {"exists": True})
        names = [c["name"] for c in self.ok(request("/collections", method="GET"), "resp.get_collections.200")["collections"]]
        self.assertIn(name, names)
        self.upsert(name, [{"id": 1, "vector": {"dense": [1, 0, 0, 0]}, "payload": {"tenant": "a", "n": [1, 2]}},
                           {"id": 2, "vector": {"sparse": {"indices": [1], "values": [1.0]}}, "payload": {"tenant": "b"}}])
        for fs in ("keyword", {"type": "keyword", "is_tenant": True}):
            self.ok(qreq("PUT", name, "/index?wait=true", {"field_name": "tenant", "field_schema": fs}, method="PUT"),
                    "resp.create_field_index.200")
        self.ok(qreq("PUT", name, "/index", {"field_name": "n"}, method="PUT"), "resp.create_field_index.200")
        self.qerr(qreq("PUT", name, "/index", {"field_name": "nothing"}, method="PUT"), 400, "Bad request: Unable to infer")
        info = self.ok(qreq("GET", name, method="GET"), "resp.get_collection.200")
        self.assertEqual((info["points_count"], info["status"], info["segments_count"]), (2, "green", 1))
        self.assertEqual(info["config"]["params"]["vectors"], cfg["vectors"])
        self.assertEqual(info["config"]["params"]["sparse_vectors"], cfg["sparse_vectors"])
        self.assertEqual(info["payload_schema"]["tenant"],
                         {"data_type": "keyword", "points": 2, "params": {"type": "keyword", "is_tenant": True}})
        self.assertEqual(info["payload_schema"]["n"], {"data_type": "integer", "points": 1})
        self.assertIs(self.ok(qreq("DELETE", name, method="DELETE"), "resp.delete_collection.200"), True)
        self.qerr(qreq("PUT", name, "/index", {"field_name": "x", "field_schema": "keyword"}, method="PUT"), 404,
                  "Not found: Collection `life`")
        # sparse-only and unnamed collections
        self.new_collection("sponly", {"sparse_vectors": {"s": {}}})
        info = self.ok(qreq("GET", "sponly", method="GET"), "resp.get_collection.200")
        self.assertEqual(info["config"]["params"]["vectors"], {})
        self.new_collection("empty", {})
        self.ok(qreq("GET", "empty", method="GET"), "resp.get_collection.200")

    def test_qdrant_body_errors(self):
        self.new_collection("errs", {"vectors": {"size": 3, "distance": "Dot"}})
        self.qerr(qreq("PUT", "errs2", obj={"vectors": {"size": 0, "distance": "Dot"}}, method="PUT"), 422,
                  "Validation error in JSON body: [")
        e = self.qerr(qreq("PUT", "errs2", obj={"vectors": {"size": 3, "distance": "Cosine"}, "bogus": 1}, method="PUT"),
                      400, "Format error in JSON body: ")
        self.assertIn("bogus", e)
        self.qerr(qreq("PUT", "errs2", obj={"vectors": {"size": 3, "distance": "Hamming"}}, method="PUT"), 400,
                  "Format error in JSON body: ")
        self.qerr(qreq("PUT", "errs2", raw=b"{", method="PUT"), 400, "Format error in JSON body: ")
        self.qerr(qreq("PUT", "errs2", raw=b"", method="PUT"), 400,
                  "Format error in JSON body: EOF while parsing a value at line 1 column 0")
        self.qerr(qreq("PUT", "errs2", obj={}, method="PUT", headers={"Content-Type": None}), 400,
                  "Format error in JSON body: Content type error")
        self.assertEqual(self.ok(qreq("GET", "errs2", "/exists", method="GET"), "resp.collection_exists.200"),
                         {"exists": False})
        self.qerr(qreq("POST", "errs", "/points/query", {"query": [1, 0, 0], "limit": 0}), 422,
                  "Validation error in JSON body: [")
        self.qerr(qreq("POST", "errs", "/points/query", {"query": [1, 0, 0], "limit": -1}), 400,
                  "Format error in JSON body: ")
        e = self.qerr(qreq("POST", "errs", "/points/query", {"query": [1, 0, 0], "filter": {"must": [], "oops": 1}}),
                      400, "Format error in JSON body: ")
        self.assertIn("oops", e)
        rec = last_record()
        self.assertEqual((rec["service"], rec["valid"]), ("qdrant-query_points", False))
        self.qerr(qreq("POST", "nope", "/points/query", {"query": [1, 0, 0]}), 404,
                  "Not found: Collection `nope` doesn't exist!")
        # removed and unknown endpoints, wrong methods: actix's empty 404
        for method, sub, svc in (("POST", "/points/search", "qdrant-removed"),
                                 ("POST", "/points/search/batch", "qdrant-removed"),
                                 ("POST", "/points/recommend", "qdrant-removed"),
                                 ("POST", "/points/discover", "qdrant-removed"),
                                 ("POST", "/points/query/groups", "qdrant-unknown"),
                                 ("GET", "/points/query", "qdrant-query_points"),
                                 ("PATCH", "", "qdrant-unknown"),
                                 ("POST", "/points/bogus", "qdrant-unknown")):
            r = qreq(method, "errs", sub, {"vector": [1, 0, 0], "limit": 3}, method=method)
            self.assertEqual((r.status, r.body), (404, b""), (method, sub))
            self.assertEqual(last_record()["service"], svc if method != "GET" else "qdrant-unknown")

    def test_qdrant_upsert_retrieve_delete(self):
        self.new_collection("pts", {"vectors": {"dense": {"size": 2, "distance": "Cosine"}},
                                    "sparse_vectors": {"sparse": {}}})
        u = "5C56C793-69F3-4FBF-87E6-C4BF54C28C26"
        r1 = self.upsert("pts", [{"id": 7, "vector": {"dense": [3, 4]}, "payload": {"a": 1}},
                                 {"id": u, "vector": {"dense": [1, 0], "sparse": {"indices": [5, 2], "values": [0.5, 0.25]}},
                                  "payload": {"a": 2, "b": {"c": "x"}}},
                                 {"id": 3, "vector": {"sparse": {"indices": [], "values": []}}, "payload": None}], wait=False)
        self.assertEqual(r1["status"], "acknowledged")
        r2 = self.upsert("pts", [{"id": 9, "vector": {"dense": [0, 1]}}])
        self.assertEqual((r2["status"], r2["operation_id"]), ("completed", r1["operation_id"] + 1))
        # batch form, named vectors by column
        r3 = self.ok(qreq("PUT", "pts", "/points?wait=true",
                          {"batch": {"ids": [10, 11], "vectors": {"dense": [[1, 1], [2, 2]]},
                                     "payloads": [{"k": "v"}, None]}}, method="PUT"), "resp.upsert_points.200")
        recs = self.ok(qreq("POST", "pts", "/points", {"ids": [u.lower(), 3, 404, 7, 7, 10], "with_vector": True}),
                       "resp.get_points.200")
        self.assertEqual([r["id"] for r in recs], [u.lower(), 3, 7, 10])
        self.assertEqual(recs[0]["payload"], {"a": 2, "b": {"c": "x"}})
        self.assertEqual(recs[1]["payload"], {})
        self.assertEqual(recs[0]["vector"], {"dense": [1.0, 0.0], "sparse": {"indices": [2, 5], "values": [0.25, 0.5]}})
        self.assertEqual(recs[2]["vector"], {"dense": [0.6, 0.8]})  # Cosine: stored normalised
        recs = self.ok(qreq("POST", "pts", "/points", {"ids": [u], "with_payload": ["b.c", "zz"],
                                                       "with_vector": ["sparse"]}), "resp.get_points.200")
        self.assertEqual((recs[0]["payload"], recs[0]["vector"]), ({"b": {"c": "x"}}, {"sparse": {"indices": [2, 5], "values": [0.25, 0.5]}}))
        self.assertNotIn("vector", self.ok(qreq("POST", "pts", "/points", {"ids": [7]}), "resp.get_points.200")[0])
        for sel, want in (({"include": ["a"]}, {"a": 2}), ({"exclude": ["a", "b.c"]}, {"b": {}}), (False, None),
                          (None, {"a": 2, "b": {"c": "x"}})):
            got = self.ok(qreq("POST", "pts", "/points", {"ids": [u], "with_payload": sel}), "resp.get_points.200")
            self.assertEqual(got[0]["payload"], want, sel)
        self.assertEqual(self.ok(qreq("POST", "pts", "/points", {"ids": [7]}, scn="empty"), "resp.get_points.200"), [])
        # versions: the operation that wrote the point
        pts = self.query("pts", {"query": [1, 0], "using": "dense", "limit": 10})
        self.assertEqual({p["id"]: p["version"] for p in pts},
                         {7: r1["operation_id"], u.lower(): r1["operation_id"], 9: r2["operation_id"],
                          10: r3["operation_id"], 11: r3["operation_id"]})
        # errors
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": "abc", "vector": {"dense": [1, 0]}}]}, method="PUT"),
                  400, 'Format error in JSON body: value "abc" is not a valid point ID')
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1.5, "vector": {"dense": [1, 0]}}]}, method="PUT"),
                  400, "Format error in JSON body: ")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": -1, "vector": {"dense": [1, 0]}}]}, method="PUT"),
                  400, "Format error in JSON body: ")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"dense": [1, 0, 0]}}]}, method="PUT"),
                  400, "Wrong input: Vector dimension error: expected dim: 2, got 3")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"other": [1, 0]}}]}, method="PUT"),
                  400, "Wrong input: Not existing vector name error: other")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": [1, 0]}]}, method="PUT"),
                  400, "Wrong input: Not existing vector name error: ")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"sparse": [1, 0]}}]}, method="PUT"),
                  400, "Wrong input: Conversion between sparse and regular vectors failed")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"dense": {"indices": [1], "values": [1]}}}]},
                       method="PUT"), 400, "Wrong input: Conversion between sparse and regular vectors failed")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"sparse": {"indices": [1, 2], "values": [1]}}}]},
                       method="PUT"), 422, "Validation error in JSON body: [points[0].vector.sparse: indices and values")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"sparse": {"indices": [1, 1], "values": [1, 2]}}}]},
                       method="PUT"), 422, "Validation error in JSON body: [points[0].vector.sparse: indices must be unique")
        self.qerr(qreq("PUT", "pts", "/points", {"batch": {"ids": [1, 2], "vectors": {"dense": [[1, 0]]}}}, method="PUT"),
                  422, "Validation error in JSON body: [batch.vectors.dense")
        self.qerr(qreq("PUT", "pts", "/points", {"batch": {"ids": [1], "vectors": {"dense": [[1, 0]]}, "payloads": []}},
                       method="PUT"), 422, "Validation error in JSON body: [batch.payloads")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"dense": [[1, 0], [0, 1]]}}]}, method="PUT"),
                  400, "Bad request: points[0].vector.dense: multivectors are not supported")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"dense": {"text": "hi", "model": "m"}}}]},
                       method="PUT"), 400, "Bad request: points[0].vector.dense: inference objects")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [{"id": 1, "vector": {"text": "hi", "model": "m"}}]},
                       method="PUT"), 400, "Bad request: points[0].vector: inference objects")
        self.qerr(qreq("PUT", "pts", "/points", {"points": [], "shard_key": "a"}, method="PUT"), 400,
                  "Bad request: shard keys are not supported")
        self.qerr(qreq("POST", "pts", "/points", {"ids": ["nope"]}), 400, "Format error in JSON body: ")
        self.qerr(qreq("PUT", "nope", "/points", {"points": []}, method="PUT"), 404, "Not found: Collection `nope`")
        # batch form on an unnamed collection, update modes and update_filter
        self.new_collection("plain", {"vectors": {"size": 2, "distance": "Euclid"}})
        self.ok(qreq("PUT", "plain", "/points", {"batch": {"ids": [1, 2], "vectors": [[0, 0], [1, 1]]}}, method="PUT"),
                "resp.upsert_points.200")
        self.qerr(qreq("PUT", "plain", "/points", {"batch": {"ids": [1, 2], "vectors": [[0, 0]]}}, method="PUT"),
                  422, "Validation error in JSON body: [batch.vectors")
        self.ok(qreq("PUT", "plain", "/points", {"points": [{"id": 1, "vector": [5, 5], "payload": {"v": 2}},
                                                            {"id": 3, "vector": [3, 3], "payload": {"v": 1}}],
                                                 "update_mode": "insert_only"}, method="PUT"), "resp.upsert_points.200")
        self.ok(qreq("PUT", "plain", "/points", {"points": [{"id": 2, "vector": [7, 7], "payload": {"v": 3}},
                                                            {"id": 4, "vector": [4, 4]}],
                                                 "update_mode": "update_only"}, method="PUT"), "resp.upsert_points.200")
        self.ok(qreq("PUT", "plain", "/points", {"points": [{"id": 2, "vector": [8, 8]}, {"id": 3, "vector": [9, 9]}],
                                                 "update_filter": {"must": {"key": "v", "match": {"value": 1}}}},
                     method="PUT"), "resp.upsert_points.200")
        recs = self.ok(qreq("POST", "plain", "/points", {"ids": [1, 2, 3, 4], "with_vector": True}), "resp.get_points.200")
        self.assertEqual([(r["id"], r["vector"]) for r in recs], [(1, [0.0, 0.0]), (2, [7.0, 7.0]), (3, [9.0, 9.0])])
        # delete by ids and by filter
        self.assertEqual(self.ok(qreq("POST", "plain", "/points/count", {}), "resp.count_points.200"), {"count": 3})
        d = self.ok(qreq("POST", "plain", "/points/delete?wait=true", {"points": [1, 99]}), "resp.delete_points.200")
        self.assertEqual(d["status"], "completed")
        d = self.ok(qreq("POST", "plain", "/points/delete", {"filter": {"must": [{"key": "v", "match": {"value": 3}}]}}),
                    "resp.delete_points.200")
        self.assertEqual(d["status"], "acknowledged")
        self.assertEqual(self.ok(qreq("POST", "plain", "/points/count", {"exact": True}), "resp.count_points.200"), {"count": 1})
        self.assertEqual(self.ok(qreq("POST", "plain", "/points/count", {}, scn="empty"), "resp.count_points.200"), {"count": 0})
        self.qerr(qreq("POST", "plain", "/points/delete", {"points": ["x"]}), 400, "Format error in JSON body: ")

    def test_qdrant_scroll(self):
        self.new_collection("scr", {"vectors": {"size": 1, "distance": "Dot"}})
        u1, u2 = "00000000-0000-0000-0000-000000000002", "ffffffff-0000-0000-0000-000000000001"
        pts = [{"id": i, "vector": [1], "payload": {"i": i}} for i in (5, 1, 3)] + \
              [{"id": u2, "vector": [1], "payload": {"i": 100}}, {"id": u1, "vector": [1], "payload": {"i": 50}}]
        self.upsert("scr", pts)
        res = self.ok(qreq("POST", "scr", "/points/scroll", {"limit": 2}), "resp.scroll_points.200")
        self.assertEqual((self.ids(res["points"]), res["next_page_offset"]), ([1, 3], 5))
        self.assertEqual(res["points"][0]["payload"], {"i": 1})
        res = self.ok(qreq("POST", "scr", "/points/scroll", {"limit": 2, "offset": 5, "with_payload": False,
                                                             "with_vector": True}), "resp.scroll_points.200")
        self.assertEqual((self.ids(res["points"]), res["next_page_offset"]), ([5, u1], u2))
        self.assertEqual((res["points"][0]["payload"], res["points"][0]["vector"]), (None, [1.0]))
        res = self.ok(qreq("POST", "scr", "/points/scroll", {"offset": u2}), "resp.scroll_points.200")
        self.assertEqual((self.ids(res["points"]), res["next_page_offset"]), ([u2], None))
        res = self.ok(qreq("POST", "scr", "/points/scroll", {"filter": {"must": {"key": "i", "range": {"gte": 3, "lt": 100}}}}),
                      "resp.scroll_points.200")
        self.assertEqual(self.ids(res["points"]), [3, 5, u1])
        res = self.ok(qreq("POST", "scr", "/points/scroll", {}, scn="empty"), "resp.scroll_points.200")
        self.assertEqual(res, {"points": [], "next_page_offset": None})
        self.qerr(qreq("POST", "scr", "/points/scroll", {"order_by": "i"}), 400, "Bad request: order_by")
        self.qerr(qreq("POST", "scr", "/points/scroll", {"limit": 0}), 422, "Validation error")

    # ---------------------------------------------------------------- Qdrant: search
    def test_qdrant_dense_query(self):
        self.new_collection("dense", {"vectors": {"d": {"size": 3, "distance": "Cosine"},
                                                  "dot": {"size": 2, "distance": "Dot"},
                                                  "l2": {"size": 2, "distance": "Euclid"},
                                                  "l1": {"size": 2, "distance": "Manhattan"}}})
        u = "0a000000-0000-0000-0000-000000000000"
        vecs = {1: [1, 0, 0], 2: [1, 1, 0], 3: [0, 1, 0], 4: [1, 1, 0], u: [1, 1, 0], 6: [-1, 0, 0]}
        pts = [{"id": k, "vector": {"d": v, "dot": v[:2], "l2": v[:2], "l1": v[:2]}, "payload": {"k": str(k)}}
               for k, v in vecs.items()]
        pts.append({"id": 7, "vector": {"dot": [0.5, 0.5]}})  # no "d" vector
        self.upsert("dense", pts)
        q = [2, 1, 0]
        res = self.query("dense", {"query": q, "using": "d", "limit": 10, "with_payload": True})
        exp = sorted(((cosine(q, v), (0, k) if isinstance(k, int) else (1, 0)), k) for k, v in vecs.items())
        exp.sort(key=lambda x: (-x[0][0], x[0][1]))
        self.assertEqual(self.ids(res), [k for _, k in exp])
        self.assertEqual(self.ids(res)[:4], [2, 4, u, 1])  # a tie of three: ids in order, integers first
        for p in res:
            self.assertTrue(close(p["score"], cosine(q, vecs[p["id"]])))
            self.assertEqual(p["payload"], {"k": str(p["id"])})
            self.assertNotIn("vector", p)
        res = self.query("dense", {"query": {"nearest": q}, "using": "d", "limit": 2, "offset": 1})
        self.assertEqual(self.ids(res), [4, u])
        self.assertIsNone(res[0]["payload"])
        res = self.query("dense", {"query": q, "using": "d", "score_threshold": 0.9, "with_vector": ["d"]})
        self.assertEqual(self.ids(res), [2, 4, u])
        self.assertTrue(close(res[1]["vector"]["d"][0], 1 / math.sqrt(2)))
        res = self.query("dense", {"query": [1, 2], "using": "dot"})
        self.assertEqual([(p["id"], p["score"]) for p in res][:2], [(2, 3.0), (4, 3.0)])
        self.assertIn(7, self.ids(res))
        res = self.query("dense", {"query": [1, 1], "using": "l2", "score_threshold": 1.0})
        self.assertEqual([(p["id"], p["score"]) for p in res], [(2, 0.0), (4, 0.0), (u, 0.0), (1, 1.0), (3, 1.0)])
        res = self.query("dense", {"query": [0, 0], "using": "l1", "limit": 3, "params": {"hnsw_ef": 128, "exact": True}})
        self.assertEqual([(p["id"], p["score"]) for p in res], [(1, 1.0), (3, 1.0), (6, 1.0)])
        # DBSF over a distance (ascending) list: the nearest gets the highest score
        res = self.query("dense", {"prefetch": {"query": [1, 1], "using": "l2", "limit": 4}, "query": {"fusion": "dbsf"}})
        dists = [0.0, 0.0, 0.0, 1.0]
        m = sum(dists) / 4
        sd = math.sqrt(sum((x - m) ** 2 for x in dists) / 3)
        self.assertEqual(self.ids(res), [2, 4, u, 1])
        self.assertTrue(close(res[0]["score"], (m + 3 * sd) / (6 * sd)))
        self.assertTrue(close(res[3]["score"], (m + 3 * sd - 1) / (6 * sd)))
        # by point id: that point's vector, without the point itself
        res = self.query("dense", {"query": 2, "using": "d", "limit": 3})
        self.assertEqual(self.ids(res), [4, u, 1])
        res = self.query("dense", {"query": u.upper(), "using": "d", "limit": 1})
        self.assertEqual(self.ids(res), [2])
        self.qerr(qreq("POST", "dense", "/points/query", {"query": 999, "using": "d"}), 404, "Not found: No point with id 999")
        self.qerr(qreq("POST", "dense", "/points/query", {"query": 7, "using": "d"}), 400,
                  "Wrong input: Not existing vector name error: d")
        self.qerr(qreq("POST", "dense", "/points/query", {"query": "text?", "using": "d"}), 400, "Format error in JSON body")
        # no query: id order, score 0
        res = self.query("dense", {"limit": 3, "filter": {"must_not": {"has_id": [1]}}})
        self.assertEqual([(p["id"], p["score"]) for p in res], [(2, 0.0), (3, 0.0), (4, 0.0)])
        # errors
        self.qerr(qreq("POST", "dense", "/points/query", {"query": [1, 0], "using": "d"}), 400,
                  "Wrong input: Vector dimension error: expected dim: 3, got 2")
        self.qerr(qreq("POST", "dense", "/points/query", {"query": [1, 0, 0]}), 400,
                  "Wrong input: Not existing vector name error: ")
        self.qerr(qreq("POST", "dense", "/points/query", {"query": {"indices": [1], "values": [1]}, "using": "d"}), 400,
                  "Wrong input: Conversion between sparse and regular vectors failed")
        for q, word in (({"nearest": [1, 0, 0], "mmr": {"diversity": 0.5}}, "mmr"),
                        ({"recommend": {"positive": [1]}}, "recommend"), ({"order_by": "k"}, "order_by"),
                        ({"text": "hi", "model": "m"}, "inference"), ([[1, 0, 0]], "multivectors"),
                        ({"sample": "random"}, "sample")):
            e = self.qerr(qreq("POST", "dense", "/points/query", {"query": q, "using": "d"}), 400, "Bad request: ")
            self.assertIn(word, e)
        self.qerr(qreq("POST", "dense", "/points/query", {"query": [1, 0, 0], "using": "d",
                                                          "lookup_from": {"collection": "x"}}), 400, "Bad request: lookup_from")
        self.qerr(qreq("POST", "dense", "/points/query", {"query": [1, 0, 0], "using": "d", "shard_key": "a"}), 400,
                  "Bad request: shard keys")

    def test_qdrant_sparse_idf(self):
        self.new_collection("sp", {"sparse_vectors": {"bm25": {"modifier": "idf"}, "raw": {"modifier": "none"}}})
        docs = {1: {1: 1.0, 2: 2.0}, 2: {2: 1.0, 3: 1.0}, 3: {3: 3.0}, 4: {4: 1.0}}
        self.upsert("sp", [{"id": k, "vector": {"bm25": {"indices": list(d), "values": list(d.values())},
                                                "raw": {"indices": list(d), "values": list(d.values())}}}
                           for k, d in docs.items()] + [{"id": 5, "vector": {}}])
        n = 4

        def idf(i):
            df = sum(1 for d in docs.values() if i in d)
            return math.log((n - df + 0.5) / (df + 0.5) + 1)
        q = {2: 1.0, 3: 0.5}
        res = self.query("sp", {"query": {"indices": list(q), "values": list(q.values())}, "using": "bm25"})
        exp = {k: sum(v * idf(i) * d[i] for i, v in q.items() if i in d) for k, d in docs.items() if set(q) & set(d)}
        self.assertEqual(sorted(self.ids(res)), sorted(exp))  # 4 and 5 share nothing: not returned
        for p in res:
            self.assertTrue(close(p["score"], exp[p["id"]]), (p, exp))
        self.assertEqual(self.ids(res), sorted(exp, key=lambda k: -exp[k]))
        res = self.query("sp", {"query": {"indices": [3, 2], "values": [0.5, 1.0]}, "using": "raw"})
        self.assertEqual([(p["id"], p["score"]) for p in res], [(1, 2.0), (2, 1.5), (3, 1.5)])
        self.qerr(qreq("POST", "sp", "/points/query", {"query": {"indices": [1, 1], "values": [1, 1]}, "using": "raw"}),
                  422, "Validation error in JSON body: [query")
        self.qerr(qreq("POST", "sp", "/points/query", {"query": {"indices": [1], "values": [1]}}), 400,
                  "Wrong input: Not existing vector name error: ")
        self.qerr(qreq("POST", "sp", "/points/query", {"query": [1.0], "using": "raw"}), 400,
                  "Wrong input: Conversion between sparse and regular vectors failed")
        res = self.query("sp", {"query": 1, "using": "raw"})  # by id, sparse
        self.assertEqual(self.ids(res), [2])

    def hybrid_setup(self):
        self.new_collection("hy", {"vectors": {"d": {"size": 2, "distance": "Dot"}},
                                   "sparse_vectors": {"s": {}}})
        # dense order: 1 > 2 > 3 > 4; sparse order: 3 > 4 > 1 (2 has no overlap)
        pts = [(1, [4, 0], {9: 1.0}, "acme"), (2, [3, 0], {8: 1.0}, "other"), (3, [2, 0], {9: 3.0}, "acme"),
               (4, [1, 0], {9: 2.0}, "other")]
        self.upsert("hy", [{"id": i, "vector": {"d": d, "s": {"indices": list(s), "values": list(s.values())}},
                            "payload": {"tenant": t}} for i, d, s, t in pts])
        return {"query": [1, 0], "using": "d"}, {"query": {"indices": [9], "values": [1.0]}, "using": "s"}

    def test_qdrant_hybrid(self):
        dense, sparse = self.hybrid_setup()
        rrf = lambda ranks, k=2: sum(1.0 / (r + k) for r in ranks)
        res = self.query("hy", {"prefetch": [dense, sparse], "query": {"fusion": "rrf"}})
        exp = {1: rrf([0, 2]), 2: rrf([1]), 3: rrf([2, 0]), 4: rrf([3, 1])}
        self.assertEqual(self.ids(res), [1, 3, 4, 2])  # 1 and 3 tie: id order
        for p in res:
            self.assertTrue(close(p["score"], exp[p["id"]]))
        res = self.query("hy", {"prefetch": [dense, sparse], "query": {"rrf": {"k": 60}}})
        self.assertTrue(close(res[0]["score"], rrf([0, 2], 60)))
        res = self.query("hy", {"prefetch": [dense, sparse], "query": {"rrf": {"weights": [1.0, 3.0]}}})
        w = lambda rank, wt, k=2: 1.0 / ((rank + 1) / wt + k - 1)
        exp = {1: w(0, 1) + w(2, 3), 2: w(1, 1), 3: w(2, 1) + w(0, 3), 4: w(3, 1) + w(1, 3)}
        self.assertEqual(self.ids(res), sorted(exp, key=lambda k: -exp[k]))
        for p in res:
            self.assertTrue(close(p["score"], exp[p["id"]]))
        # DBSF: mean +- 3 sample standard deviations
        res = self.query("hy", {"prefetch": [dense, sparse], "query": {"fusion": "dbsf"}})

        def norm(scores):
            m = sum(scores) / len(scores)
            sd = math.sqrt(sum((s - m) ** 2 for s in scores) / (len(scores) - 1))
            return [(s - (m - 3 * sd)) / (6 * sd) for s in scores]
        dn, sn = norm([4, 3, 2, 1]), norm([3, 2, 1])
        exp = {1: dn[0] + sn[2], 2: dn[1], 3: dn[2] + sn[0], 4: dn[3] + sn[1]}
        for p in res:
            self.assertTrue(close(p["score"], exp[p["id"]]), (p, exp))
        self.assertEqual(self.ids(res), sorted(exp, key=lambda k: -exp[k]))
        one = self.query("hy", {"prefetch": [dict(dense, limit=1), dict(sparse, limit=1)], "query": {"fusion": "dbsf"}})
        self.assertEqual([(p["id"], p["score"]) for p in one], [(1, 0.5), (3, 0.5)])
        # the top-level filter applies to the final step only: fewer than limit
        flt = {"must": [{"key": "tenant", "match": {"value": "acme"}}]}
        res = self.query("hy", {"prefetch": [dict(dense, limit=1), dict(sparse, limit=1)], "query": {"fusion": "rrf"},
                                "filter": {"must": [{"key": "tenant", "match": {"value": "other"}}]}, "limit": 5})
        self.assertEqual(res, [])
        res = self.query("hy", {"prefetch": [dict(dense, limit=2, filter=flt), dict(sparse, limit=2, filter=flt)],
                                "query": {"fusion": "rrf"}, "filter": flt, "limit": 5})
        self.assertEqual(self.ids(res), [1, 3])
        res = self.query("hy", {"prefetch": [dict(dense, limit=2), dict(sparse, limit=2)],
                                "query": {"fusion": "rrf"}, "filter": flt, "limit": 5})
        self.assertEqual(self.ids(res), [1, 3])
        res = self.query("hy", {"prefetch": [dict(dense, limit=1), dict(sparse, limit=1)], "query": {"fusion": "rrf"},
                                "filter": {"must_not": flt}, "limit": 5})
        self.assertEqual(res, [])
        # prefetch as one object, its score_threshold, rescoring with a vector, nesting, limits, offset
        res = self.query("hy", {"prefetch": dict(dense, score_threshold=2.5), "query": {"fusion": "rrf"}})
        self.assertEqual(self.ids(res), [1, 2])
        res = self.query("hy", {"prefetch": sparse, "query": [0, 1], "using": "d"})
        self.assertEqual([(p["id"], p["score"]) for p in res], [(1, 0.0), (3, 0.0), (4, 0.0)])
        res = self.query("hy", {"prefetch": [{"prefetch": [dense, sparse], "query": {"fusion": "rrf"}, "limit": 2}],
                                "query": [1, 0], "using": "d", "score_threshold": 2.5, "with_payload": ["tenant"]})
        self.assertEqual([(p["id"], p["score"], p["payload"]) for p in res], [(1, 4.0, {"tenant": "acme"})])
        res = self.query("hy", {"prefetch": [dense, sparse], "query": {"fusion": "rrf"}, "limit": 2, "offset": 1,
                                "score_threshold": 0.3})
        self.assertEqual(self.ids(res), [3, 4])
        many = [{"id": 100 + i, "vector": {"d": [0.001 * i, 0]}} for i in range(20)]
        self.upsert("hy", many)
        res = self.query("hy", {"prefetch": {"query": [-1, 0], "using": "d"}, "query": {"fusion": "rrf"}, "limit": 50})
        self.assertEqual(len(res), 10)  # prefetch limit defaults to 10
        self.assertEqual(len(self.query("hy", {"query": [1, 0], "using": "d", "limit": None})), 10)
        # batch
        res = self.ok(qreq("POST", "hy", "/points/query/batch",
                           {"searches": [dict(dense, limit=1), {"prefetch": [dense, sparse], "query": {"fusion": "rrf"},
                                                                "limit": 2}]}), "resp.query_batch_points.200")
        self.assertEqual([self.ids(r["points"]) for r in res], [[1], [1, 3]])
        res = self.ok(qreq("POST", "hy", "/points/query/batch", {"searches": [dense]}, scn="empty"),
                      "resp.query_batch_points.200")
        self.assertEqual(res, [{"points": []}])
        self.qerr(qreq("POST", "hy", "/points/query/batch", {"searches": [dict(dense, shard_key="x")]}), 400,
                  "Bad request: shard keys")
        self.qerr(qreq("POST", "hy", "/points/query/batch", {"searches": [{"query": [1]}]}), 400, "Wrong input")
        # errors
        self.qerr(qreq("POST", "hy", "/points/query", {"prefetch": [dense, sparse]}), 400,
                  "Bad request: A query is needed to merge the prefetches")
        self.qerr(qreq("POST", "hy", "/points/query", {"prefetch": [dense, sparse], "query": {"rrf": {"weights": [1]}}}),
                  400, "Bad request: Number of RRF weights (1) must match the number of prefetches (2)")
        self.qerr(qreq("POST", "hy", "/points/query", {"prefetch": [dense, sparse], "query": {"rrf": {"weights": [1, 0]}}}),
                  400, "Bad request: RRF weights must be positive")
        self.qerr(qreq("POST", "hy", "/points/query", {"query": {"fusion": "rrf"}}), 400, "Bad request: Fusion queries need")
        self.qerr(qreq("POST", "hy", "/points/query", {"prefetch": [dense], "query": {"fusion": "max"}}), 400,
                  "Format error in JSON body")
        self.qerr(qreq("POST", "hy", "/points/query", {"prefetch": [dict(dense, offset=1)], "query": {"fusion": "rrf"}}),
                  400, "Format error in JSON body")

    def test_qdrant_filters(self):
        self.new_collection("flt", {"vectors": {"size": 1, "distance": "Dot"}, "sparse_vectors": {"s": {}}})
        u = "00000000-0000-0000-0000-00000000000a"
        pays = {
            1: {"tenant": "acme", "lang": "en", "n": 5, "f": 1.5, "ok": True, "tags": ["a", "b"],
                "when": "2026-03-01T00:00:00Z", "meta": {"area": "billing"}, "items": [{"sku": "x", "q": 1}, {"sku": "y", "q": 5}],
                "title": "Refund timelines"},
            2: {"tenant": "acme", "lang": "de", "n": 10, "ok": False, "tags": [], "nul": None, "when": "2023-01-01",
                "items": [{"sku": "x", "q": 5}], "title": "Gift cards"},
            3: {"tenant": "other", "n": 1, "f": 5, "ok": 1, "tags": ["c"], "nul": [None, 1], "meta": {"area": "orders"}},
            4: {"tenant": "acme", "lang": "en", "n": 7.5, "tags": "a"},
        }
        self.upsert("flt", [{"id": k, "vector": [1], "payload": v} for k, v in pays.items()]
                    + [{"id": u, "vector": {"": [1], "s": {"indices": [1], "values": [1]}}, "payload": {}}])

        def got(flt):
            res = self.ok(qreq("POST", "flt", "/points/scroll", {"filter": flt, "limit": 100}), "resp.scroll_points.200")
            count = self.ok(qreq("POST", "flt", "/points/count", {"filter": flt}), "resp.count_points.200")["count"]
            self.assertEqual(count, len(res["points"]))
            return self.ids(res["points"])
        F = lambda key, **c: dict(key=key, **c)
        cases = [
            ({"must": [F("tenant", match={"value": "acme"})]}, [1, 2, 4]),
            ({"must": F("tenant", match={"value": "acme"}), "must_not": F("lang", match={"value": "de"})}, [1, 4]),
            ({"should": [F("lang", match={"value": "de"}), F("n", match={"value": 1})]}, [2, 3]),
            ({"should": []}, []),
            ({}, [1, 2, 3, 4, u]),
            ({"min_should": {"conditions": [F("tenant", match={"value": "acme"}), F("lang", match={"value": "en"}),
                                            F("ok", match={"value": True})], "min_count": 2}}, [1, 4]),
            ({"must": [F("n", match={"value": 5})]}, [1]),
            ({"must": [F("ok", match={"value": True})]}, [1]),       # 1 is not true
            ({"must": [F("ok", match={"value": 1})]}, [3]),          # true is not 1
            ({"must": [F("n", match={"value": 7})]}, []),            # 7.5 is no integer
            ({"must": [F("tags", match={"value": "a"})]}, [1, 4]),   # array elements and scalars
            ({"must": [F("tags", match={"any": ["b", "c"]})]}, [1, 3]),
            ({"must": [F("n", match={"any": [1, 10]})]}, [2, 3]),
            ({"must": [F("lang", match={"except": ["en"]})]}, [2]),  # missing lang: no match
            ({"must": [F("n", match={"except": [5]})]}, [2, 3, 4]),  # 7.5 is not an integer: matches
            ({"must": [F("title", match={"text": "fund"})]}, [1]),
            ({"must": [F("title", match={"phrase": "Gift cards"})]}, [2]),
            ({"must": [F("title", match={"text_any": "cards timelines"})]}, [1, 2]),
            ({"must": [F("title", match={"prefix": "Gift"})]}, [2]),
            ({"must": [F("n", range={"gt": 5, "lte": 10})]}, [2, 4]),
            ({"must": [F("f", range={"gte": 1.5})]}, [1, 3]),
            ({"must": [F("when", range={"gte": "2025-01-01T00:00:00Z"})]}, [1]),
            ({"must": [F("when", range={"lt": "2024-01-01"})]}, [2]),
            ({"must": [F("tags", values_count={"gte": 2})]}, [1]),
            ({"must": [F("tags", values_count={"lt": 1})]}, [2, u]),
            ({"must": [F("tags", is_empty=True)]}, [2, u]),
            ({"must": [F("tags", is_empty=False)]}, [1, 3, 4]),
            ({"must": [{"is_empty": {"key": "tags"}}]}, [2, u]),
            ({"must": [{"is_null": {"key": "nul"}}]}, [2]),
            ({"must": [F("nul", is_null=True)]}, [2, 3]),
            ({"must": [F("nul", is_null=False)]}, [1, 4, u]),
            ({"must": [{"has_id": [2, u.upper(), 99]}]}, [2, u]),
            ({"must": [{"has_vector": "s"}]}, [u]),
            ({"must": [{"has_vector": ""}]}, [1, 2, 3, 4, u]),
            ({"must": [F("meta.area", match={"value": "orders"})]}, [3]),
            ({"must": [F("items[].sku", match={"value": "y"})]}, [1]),
            ({"must": [F("items[0].q", match={"value": 5})]}, [2]),
            ({"must": [F("items.sku", match={"value": "x"})]}, []),  # arrays need []
            ({"must": [F("items[].sku", match={"value": "x"}), F("items[].q", match={"value": 5})]}, [1, 2]),
            ({"must": [{"nested": {"key": "items", "filter": {"must": [F("sku", match={"value": "x"}),
                                                                        F("q", match={"value": 5})]}}}]}, [2]),
            ({"must": [{"should": [F("n", match={"value": 1}), F("n", match={"value": 10})]},
                       {"must_not": [{"has_id": [3]}]}]}, [2]),
        ]
        for flt, want in cases:
            self.assertEqual(got(flt), want, flt)
        self.ok(qreq("PUT", "flt", "/index", {"field_name": "f"}, method="PUT"), "resp.create_field_index.200")
        self.ok(qreq("PUT", "flt", "/index", {"field_name": "lang", "field_schema": None}, method="PUT"),
                "resp.create_field_index.200")
        schema = self.ok(qreq("GET", "flt", method="GET"), "resp.get_collection.200")["payload_schema"]
        self.assertEqual((schema["f"]["data_type"], schema["f"]["points"]), ("float", 2))
        self.assertEqual(schema["lang"], {"data_type": "keyword", "points": 3})
        for field in ("meta", "ok"):  # objects; bools mixed with integers
            self.qerr(qreq("PUT", "flt", "/index", {"field_name": field}, method="PUT"), 400, "Bad request: Unable to infer")
        # a filter in a query, and errors
        res = self.query("flt", {"query": [1], "filter": {"must": {"key": "tenant", "match": {"value": "other"}}}})
        self.assertEqual(self.ids(res), [3])
        self.qerr(qreq("POST", "flt", "/points/count", {"filter": {"must": [{"key": "n"}]}}), 422,
                  "Validation error in JSON body: [filter: at least one condition")
        self.qerr(qreq("POST", "flt", "/points/count", {"filter": {"must": [{"key": "loc", "geo_radius": {
            "center": {"lon": 0, "lat": 0}, "radius": 1.0}}]}}), 400, "Bad request: geo_radius")
        self.qerr(qreq("POST", "flt", "/points/count", {"filter": {"must": [{"key": "n", "range": {"gt": "yesterday"}}]}}),
                  400, "Format error in JSON body: range bounds")
        self.qerr(qreq("POST", "flt", "/points/count", {"filter": {"must": [{"key": "n", "match": {"value": 1}, "x": 1}]}}),
                  400, "Format error in JSON body: ")
        self.qerr(qreq("POST", "flt", "/points/count", {"filter": {"must": [{"has_id": ["nope"]}]}}), 400,
                  "Format error in JSON body: ")

    # ---------------------------------------------------------------- scenarios, generic
    def test_scenarios_qdrant(self):
        self.new_collection("sc", {"vectors": {"size": 1, "distance": "Dot"}})
        pt = {"points": [{"id": 1, "vector": [1]}]}
        got = []
        for _ in range(3):
            r = qreq("PUT", "sc", "/points", pt, scn="fail=503:1,ra=1", method="PUT")
            got.append(r.status)
        self.assertEqual(got, [503, 200, 503])
        self.qerr(r, 503, "Service internal error")
        self.assertEqual(r.headers["retry-after"], "1")
        self.assertEqual(self.ok(qreq("POST", "sc", "/points/count", {}), "resp.count_points.200")["count"], 1)
        self.qerr(qreq("PUT", "sc", "/points", pt, scn="fail=429", method="PUT"), 429, "Rate limiting exceeded")
        self.qerr(qreq("GET", "sc", scn="fail=404", method="GET"), 404, "Not found")
        self.qerr(qreq("GET", "sc", scn="fail=500", method="GET"), 500, "Service internal error")
        r = qreq("GET", "sc", scn="fail=401", method="GET")
        self.assertEqual((r.status, r.headers["content-type"]), (401, "text/plain; charset=utf-8"))
        self.assertTrue(self.qerr(qreq("GET", "sc", scn="bogus=1", method="GET"), 400, "bad_scenario"))
        # failures do not run the operation
        qreq("DELETE", "sc", scn="fail=500", method="DELETE")
        self.assertTrue(self.ok(qreq("GET", "sc", "/exists", method="GET"), "resp.collection_exists.200")["exists"])
        # html_error
        r = qreq("GET", "sc", scn="html_error=502:1,ra=4", method="GET")
        self.assertEqual((r.status, r.headers["content-type"], r.headers["retry-after"]), (502, "text/html", "4"))
        self.assertIn(b"<h1>502 Bad Gateway</h1>", r.body)
        self.assertEqual(qreq("GET", "sc", scn="html_error=502:1,ra=4", method="GET").status, 200)
        # cut: headers + half the body, then close; the write happened
        r = qreq("PUT", "sc", "/points?wait=true", {"points": [{"id": 2, "vector": [1]}]}, scn="cut", method="PUT")
        self.assertEqual(r.status, 200)
        self.assertFalse(r.complete)
        self.assertEqual(len(r.body), int(r.headers["content-length"]) // 2)
        self.assertEqual(last_record()["outcome"], "cut")
        # badjson: 200, a body that is not JSON; the write happened
        r = qreq("PUT", "sc", "/points", {"points": [{"id": 3, "vector": [1]}]}, scn="badjson", method="PUT", keep=True)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.complete)
        self.assertRaises(ValueError, json.loads, r.body)
        self.assertEqual(last_record()["outcome"], "badjson")
        r2 = qreq("POST", "sc", "/points/count", {}, sock=r.sock, keep=True)  # connection still usable
        self.assertEqual(self.ok(r2, "resp.count_points.200")["count"], 3)
        r.sock.close()
        # empty
        self.assertEqual(self.query("sc", {"query": [1]}, scn="empty"), [])
        self.assertEqual(len(self.query("sc", {"query": [1]})), 3)

    def test_scenarios_timing(self):
        t = time.monotonic()
        self.ok(self.emb("first_ms=300"), "CreateEmbeddingResponse", "openai")
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        t = time.monotonic()
        r = request("/first_ms=200,fail=503/embed", {"inputs": "x"})
        self.assertEqual(r.status, 503)
        self.assertGreaterEqual(time.monotonic() - t, 0.2)
        t = time.monotonic()
        r = request("/hang=1/rerank", {"query": "q", "texts": ["a"]})
        self.assertIsNone(r.status)
        self.assertGreaterEqual(time.monotonic() - t, 0.9)
        self.assertEqual(last_record()["outcome"], "hang_timeout")
        s = socket.create_connection(("127.0.0.1", PORT))
        data = b'{"searches": []}'
        s.sendall(b"POST /hang/collections/x/points/query/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        time.sleep(0.3)
        s.close()
        time.sleep(0.3)
        rec = [x for x in records() if x["scenario"] == "hang"][-1]
        self.assertEqual((rec["status"], rec["outcome"], rec["service"]), (None, "client_closed", "qdrant-query_batch_points"))
        # cut on the other services
        r = request("/cut/v1/embeddings", {"model": "m", "input": "x"})
        self.assertFalse(r.complete)
        r = request("/badjson/v2/rerank", {"model": "m", "query": "q", "documents": ["a"]})
        self.assertRaises(ValueError, json.loads, r.body)

    def test_fail_counters_per_service(self):
        request("/_requests", method="DELETE")
        scn = "fail=500:1"
        self.new_collection("fc", {"vectors": {"size": 1, "distance": "Dot"}})
        seq = [self.emb(scn).status, qreq("POST", "fc", "/points/count", {}, scn=scn).status,
               self.emb(scn).status, qreq("POST", "fc", "/points/count", {}, scn=scn).status,
               request("/%s/rerank" % scn, {"query": "q", "texts": ["a"]}).status]
        self.assertEqual(seq, [500, 500, 200, 200, 500])
        self.assertEqual(len(records("?scenario=" + scn)), 5)
        request("/_requests", method="DELETE")
        self.assertEqual(records(), [])
        self.assertEqual(self.emb(scn).status, 500)  # counters were reset
        self.assertTrue(self.ok(qreq("GET", "fc", "/exists", method="GET"), "resp.collection_exists.200")["exists"])
        r = request("/_reset", method="POST")
        self.assertEqual(json.loads(r.body), {"cleared": True})
        self.assertEqual(records(), [])
        self.assertEqual(self.emb(scn).status, 500)
        self.assertFalse(self.ok(qreq("GET", "fc", "/exists", method="GET"), "resp.collection_exists.200")["exists"])

    # ---------------------------------------------------------------- HTTP and records
    def test_keepalive_http10_chunked(self):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        for _ in range(3):
            r = self.emb(sock=s, keep=True)
            self.assertEqual(r.headers["connection"], "keep-alive")
            self.ok(r, "CreateEmbeddingResponse", "openai")
        r = qreq("GET", "none", "/exists", method="GET", sock=s, keep=True)
        self.assertEqual(r.status, 200)
        s.close()
        r = request("/embed", {"inputs": "x"}, version="HTTP/1.0")
        self.assertEqual((r.status, r.headers["connection"]), (200, "close"))
        data = json.dumps({"inputs": ["a", "b"]}).encode()
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        f = s.makefile("rb")
        self.assertIn(b"100", f.readline())
        f.readline()
        s.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, data[:5], len(data) - 5, data[5:]))
        r = read_response(f)
        self.assertEqual(len(self.ok(r, "EmbedResponse", "tei")), 2)
        s.close()
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"garbage\r\n\r\n")
        self.assertEqual(read_response(s.makefile("rb")).status, 400)
        s.close()

    def test_records_and_record_dir(self):
        request("/_requests", method="DELETE")
        self.emb(headers={"Authorization": "Bearer abc", "X-Custom": "1"})
        rec = records()[-1]
        self.assertEqual(list(rec), ["seq", "time", "method", "path", "http_version", "service", "scenario", "headers",
                                     "body", "valid", "errors", "status", "outcome"])
        self.assertEqual((rec["service"], rec["scenario"], rec["valid"], rec["status"], rec["outcome"]),
                         ("embeddings", "", True, 200, "complete"))
        self.assertEqual((rec["headers"]["authorization"], rec["headers"]["x-custom"]), ("Bearer abc", "1"))
        self.assertEqual(rec["body"]["model"], "text-embedding-3-small")
        self.assertEqual(json.load(open(os.path.join(REC, "%06d-embeddings.json" % rec["seq"]))), rec["body"])
        qreq("GET", "none", method="GET")
        self.assertEqual(last_record()["service"], "qdrant-get_collection")
        self.assertFalse(glob.glob(os.path.join(REC, "%06d-*.json" % last_record()["seq"])))
        self.assertEqual(len(records("?service=embeddings")), 1)
        self.assertEqual(len(records("?last=1")), 1)
        self.assertEqual(records("?last=0"), [])

    def test_record_dir_validates(self):
        """A request of each service, recorded to --record-dir and re-validated with validate.py --strict
        against the $defs the docstring names (what `make validate-requests` does)."""
        rec = os.path.join(TMP, "rec2")
        proc, port = start("--record-dir", rec)
        try:
            request("/collections/rd", {"vectors": {"d": {"size": 2, "distance": "Cosine"}},
                                        "sparse_vectors": {"s": {"modifier": "idf"}}}, method="PUT", port=port)
            sent = [
                ("POST", "/v1/embeddings", {"model": "m", "input": ["a"], "dimensions": 2}),
                ("POST", "/embed", {"inputs": ["a"], "truncate": True}),
                ("POST", "/rerank", {"query": "q", "texts": ["a"], "raw_scores": False}),
                ("POST", "/v2/rerank", {"model": "m", "query": "q", "documents": ["a"]}),
                ("PUT", "/collections/rd/index", {"field_name": "t", "field_schema": "keyword"}),
                ("PUT", "/collections/rd/points?wait=true", {"points": [{"id": 1, "payload": {"t": "a"},
                                                             "vector": {"d": [1, 0], "s": {"indices": [1], "values": [1]}}}]}),
                ("POST", "/collections/rd/points", {"ids": [1], "with_payload": True}),
                ("POST", "/collections/rd/points/scroll", {"limit": 1}),
                ("POST", "/collections/rd/points/count", {"exact": True}),
                ("POST", "/collections/rd/points/query", {"prefetch": [{"query": [1, 0], "using": "d"}],
                                                          "query": {"fusion": "rrf"}}),
                ("POST", "/collections/rd/points/query/batch", {"searches": [{"query": [1, 0], "using": "d"}]}),
                ("POST", "/collections/rd/points/delete", {"points": [1]}),
            ]
            for method, path, body in sent:
                r = request(path, body, method=method, port=port)
                self.assertEqual(r.status, 200, (path, r.body))
            request("/collections/rd/exists", method="GET", port=port)   # no body: no file
            request("/v1/embeddings", {"model": "m", "input": "x", "bogus": 1}, port=port)  # invalid: recorded too
            recs = json.loads(request("/_requests", method="GET", port=port).body)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(5), 0)
        files = sorted(os.listdir(rec))
        self.assertEqual([f[7:-5] for f in files],
                         ["qdrant-create_collection", "embeddings", "embed", "rerank-tei", "rerank-cohere",
                          "qdrant-create_field_index", "qdrant-upsert_points", "qdrant-get_points",
                          "qdrant-scroll_points", "qdrant-count_points", "qdrant-query_points",
                          "qdrant-query_batch_points", "qdrant-delete_points", "embeddings"])
        self.assertEqual([int(f[:6]) for f in files], [r["seq"] for r in recs if r["method"] != "GET"])
        defs = {"embeddings": ("openai", "CreateEmbeddingRequest"), "embed": ("tei", "EmbedRequest"),
                "rerank-tei": ("tei", "RerankRequest")}
        tool = os.path.join(SHARED, "tools", "validate.py")
        for f in files[:-1]:
            svc = f[7:-5]
            if svc == "rerank-cohere":
                continue
            bundle, d = defs.get(svc) or ("qdrant", "req." + svc[len("qdrant-"):])
            out = subprocess.run(["/usr/bin/python3", tool, "--strict",
                                  os.path.join(SHARED, "specs", "bundles", bundle + ".schema.json"), d,
                                  os.path.join(rec, f)], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout)
        out = subprocess.run(["/usr/bin/python3", tool, "--strict", os.path.join(SHARED, "specs", "bundles",
                              "openai.schema.json"), "CreateEmbeddingRequest", os.path.join(rec, files[-1])],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("bogus", out.stdout)

    def test_concurrency(self):
        async def one(i):
            data = json.dumps({"model": "m", "input": ["text %d" % i]}).encode()
            out = await selftest_util.async_exchange(PORT, (
                b"POST /first_ms=50/v1/embeddings HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(data), data)))
            return out.startswith(b"HTTP/1.1 200")

        async def many():
            return await asyncio.gather(*(one(i) for i in range(200)))
        t = time.monotonic()
        self.assertTrue(all(asyncio.run(many())))
        self.assertLess(time.monotonic() - t, 10)

    # ---------------------------------------------------------------- the sample help center
    def test_paraphrase_dense_beats_lexical(self):
        """Dense retrieval finds orders/cancel-an-order for "Can I call off my purchase?", which shares
        no word with it; the lexical (sparse) search does not return it; RRF fusion does."""
        secs = []
        for path in sorted(glob.glob(os.path.join(HELPCENTER, "*", "*.md"))):
            doc = os.path.relpath(path, HELPCENTER)[:-3]
            text = re.sub(r"^---.*?---\n", "", open(path, encoding="utf-8").read(), flags=re.S)
            title = re.search(r"^# (.*)$", text, re.M).group(1)
            parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
            for i in range(1, len(parts), 2):
                secs.append((doc, "%s\n%s\n%s" % (title, parts[i].lstrip("#").strip(), parts[i + 1])))
        self.assertGreater(len(secs), 100)
        self.assertEqual(len({d for d, _ in secs}), 30)
        vecs = []
        for i in range(0, len(secs), 100):
            o = json.loads(request("/v1/embeddings", {"model": "m", "input": [t for _, t in secs[i:i + 100]]}).body)
            vecs += [d["embedding"] for d in sorted(o["data"], key=lambda d: d["index"])]
        stop = {"a", "an", "the", "and", "or", "of", "to", "in", "is", "it", "i", "my", "can", "you", "your", "for", "on"}

        def sparse(text, query=False):
            tf = {}
            for w in re.findall(r"[a-z0-9]+", text.lower()):
                if w not in stop:
                    k = int.from_bytes(hashlib.md5(w.encode()).digest()[:4], "little") & 0x7fffffff
                    tf[k] = 1.0 if query else tf.get(k, 0.0) + 1.0
            return {"indices": list(tf), "values": list(tf.values())}
        self.new_collection("help", {"vectors": {"dense": {"size": 64, "distance": "Cosine"}},
                                     "sparse_vectors": {"bm25": {"modifier": "idf"}}})
        for i in range(0, len(secs), 50):
            self.upsert("help", [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "%s#%d" % (d, j))),
                                  "vector": {"dense": vecs[j], "bm25": sparse(t)}, "payload": {"doc": d}}
                                 for j, (d, t) in enumerate(secs) if i <= j < i + 50])
        q = "Can I call off my purchase?"
        qv = json.loads(request("/embed", {"inputs": q}).body)[0]
        docs = lambda pts: [p["payload"]["doc"] for p in pts]
        dense = self.query("help", {"query": qv, "using": "dense", "limit": 5, "with_payload": True})
        self.assertEqual(docs(dense)[0], "orders/cancel-an-order")
        lexical = self.query("help", {"query": sparse(q, True), "using": "bm25", "limit": 100, "with_payload": True})
        self.assertTrue(lexical)
        self.assertNotIn("orders/cancel-an-order", docs(lexical))
        fused = self.query("help", {"prefetch": [{"query": qv, "using": "dense", "limit": 20},
                                                 {"query": sparse(q, True), "using": "bm25", "limit": 20}],
                                    "query": {"fusion": "rrf"}, "limit": 5, "with_payload": ["doc"]})
        self.assertIn("orders/cancel-an-order", docs(fused)[:2])
        # the reranker agrees
        texts = [t for d, t in secs if d in ("orders/cancel-an-order", "billing/gift-cards")]
        o = json.loads(request("/rerank", {"query": q, "texts": texts}).body)
        self.assertTrue(texts[o[0]["index"]].startswith("Cancel an order"))


if __name__ == "__main__":
    verbosity = 2 if "-v" in sys.argv else 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("kb_server_selftest: %d passed, %d failed" % (res.testsRun - failed, failed))
    sys.exit(0 if res.wasSuccessful() else 1)
