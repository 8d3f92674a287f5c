#!/usr/bin/python3
"""Retrieval services for the test suites: embeddings, rerank and Qdrant, in one local server.

Stands in for what the module and `kb-build` talk to when retrieval is remote, speaking the
published protocols (../shared/specs, digest in ../shared/notes/protocols.md (b)-(d)):
OpenAI embeddings, Hugging Face TEI /embed and /rerank, Cohere v2 rerank, and Qdrant 1.19 REST
(in-memory collections). Every request body is checked against the published schema, strictly
(unknown keys too), like t/llm_server.py does for chat. Embeddings and rerank scores come from a
deterministic text analysis (below), so that tests can predict rankings and dense retrieval
finds paraphrases that BM25 misses.

Python 3 standard library only (plus Debian's python3-jsonschema for validation), asyncio, raw
HTTP/1.1 with keep-alive, request bodies with Content-Length or chunked. Run with Debian's
/usr/bin/python3.

CLI
    kb_server.py [--host 127.0.0.1] [--port 0] [--port-file PATH] [--record-dir DIR]
                 [--require-key KEY] [--no-validate] [--parent-pid PID] [--quiet]
    Prints "listening on HOST:PORT" (flushed) once it accepts connections; --port-file gets the
    port number (written atomically). --parent-pid: exit when that process goes away.
    --no-validate: no schema checks (records say "valid": null; Cohere bodies, which have no
    schema, are still checked). SIGTERM / SIGINT exit 0.
    --require-key KEY: every service endpoint wants KEY, each in its own way (see Auth).

Endpoints (each also under a scenario prefix: /<scenario>/v1/embeddings,
/<scenario>/collections/kb/points/query, ...; <scenario> = comma-separated options, below; a path
without a prefix is the default behaviour)
  Embeddings, OpenAI: POST /v1/embeddings, POST /embeddings                 service "embeddings"
    Body: CreateEmbeddingRequest (openai bundle). input: a string, strings, token ids or arrays
    of token ids (a token-id input is embedded as the text of its numbers, "12 345").
    dimensions honoured (default 64, at most 8192); encoding_format "base64" gives each
    embedding as base64 of little-endian float32. model is echoed.
    -> {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...]}...],
        "model":M,"usage":{"prompt_tokens":P,"total_tokens":P}}, P = whitespace-separated words
        of the string inputs + the number of token ids.
    Errors {"error":{"message","type","param","code"}}: an empty string among the inputs 400
    ("'$.input' is invalid..."), dimensions > 8192 400 code "invalid_value".
  Embeddings, TEI: POST /embed                                             service "embed"
    Body: EmbedRequest (tei bundle; truncation_direction "left"/"right" accepted as TEI does).
    inputs: a string or a list (a token-id list counts as one input). normalize (default true;
    false = the hashed counts before L2 normalisation); dimensions (null = 64); truncate and
    prompt_name are ignored. -> [[f32,...],...] (bare array of arrays).
    Errors {"error": "...", "error_type": "..."}: inputs [] 400 "Empty"; more than 32 inputs 422
    "Validation" ("batch size 33 > maximum allowed batch size 32"); dimensions 0 or > 8192 422.
  Rerank, Cohere v2: POST /v2/rerank                                        service "rerank-cohere"
    No published schema; checked here: an object with the keys model (required, non-empty
    string), query (required, string), documents (required, non-empty array of strings), top_n
    (integer >= 1), max_tokens_per_doc (integer >= 1: each document is cut to that many
    whitespace words), priority (integer 0..999, ignored); any other key or value 400
    {"id","message":"invalid request: ..."}.
    -> {"id": uuid, "results":[{"index","relevance_score"}...] best first (ties: lower index),
        cut to top_n, "meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1}}}
  Rerank, TEI: POST /rerank                                                service "rerank-tei"
    Body: RerankRequest (tei bundle). -> [{"index","score"}...] sorted by score desc (ties:
    lower index), no top_n; return_text adds "text"; raw_scores: the logit instead of the
    sigmoid. texts [] 400 "Empty"; more than 32 texts 422 "Validation".
  TEI extractor errors (both TEI endpoints, as axum answers them, text/plain): no
    "Content-Type: application/json" 415; body not JSON 400 "Failed to parse the request body
    as JSON: ..."; schema errors 422 "Failed to deserialize the JSON body into the target
    type: ..." (strict: unknown keys too).
  Qdrant 1.19 REST, in memory. Service "qdrant-<op>", <op> = Qdrant's operationId; the body is
  checked against the qdrant bundle's $defs/req.<op> (same as the $defs named in brackets):
    GET    /collections                          get_collections   {"collections":[{"name"}]}
    PUT    /collections/{c}                      create_collection [CreateCollection] -> true;
           409 if it exists. vectors: one unnamed VectorParams or named ones; sparse_vectors
           with "modifier": "idf" or "none". Other settings accepted and ignored.
    GET    /collections/{c}                      get_collection    CollectionInfo: status,
           points_count, segments_count 1, config (params.vectors / sparse_vectors as created,
           Qdrant's default hnsw/optimizer/wal configs), payload_schema (indexes, with points =
           points having a value)
    GET    /collections/{c}/exists               collection_exists {"exists": bool}
    DELETE /collections/{c}                      delete_collection true (false if missing)
    PUT    /collections/{c}/index                create_field_index [CreateFieldIndex];
           field_schema a type name or params with "type"; missing: inferred from the payload
           (keyword/integer/float/bool), 400 if no point has the field.
    PUT    /collections/{c}/points[?wait=true]   upsert_points [PointInsertOperations]
           {"points":[{id,vector,payload}]} or {"batch":{ids,vectors,payloads}}; update_mode
           (upsert, insert_only, update_only) and update_filter honoured. -> {"operation_id",
           "status": "completed" with wait=true, else "acknowledged"} (applied at once anyway).
    POST   /collections/{c}/points               get_points [PointRequest] -> [Record] in the
           order asked, missing ids left out; with_payload default true, with_vector false
    POST   /collections/{c}/points/delete[?wait=true]   delete_points [PointsSelector]
           {"points":[ids]} or {"filter":...} -> UpdateResult
    POST   /collections/{c}/points/scroll        scroll_points [ScrollRequest] id order from
           offset (an id, inclusive), limit default 10 -> {"points":[Record],
           "next_page_offset": id|null}; with_payload default true; order_by unsupported (400)
    POST   /collections/{c}/points/count         count_points [CountRequest] -> {"count": n}
    POST   /collections/{c}/points/query         query_points [QueryRequest] -> {"points":[...]}
    POST   /collections/{c}/points/query/batch   query_batch_points [QueryRequestBatch]
           {"searches":[QueryRequest...]} -> [{"points":[...]}...]
    POST   /collections/{c}/points/search, /recommend, /discover (+ /batch, /groups): 404 with
           an empty body, as in Qdrant 1.19 where they were removed (service "qdrant-removed").
    Any other path under /collections, or a wrong method: 404, empty body ("qdrant-unknown").
  Qdrant envelope {"result": R, "status": "ok", "time": seconds}; errors
  {"status": {"error": "..."}, "time": seconds}:
    400 "Format error in JSON body: ..."    not JSON, no "Content-Type: application/json"
        ("Content type error"), schema errors other than ranges (types, required keys, unknown
        keys, negative unsigned numbers), an id that is neither an unsigned integer nor a UUID
    422 "Validation error in JSON body: [...]"  range errors (limit 0, size 0), sparse vectors
        with indices/values of different lengths or repeated indices, batch columns of
        different lengths, a FieldCondition with no condition
    400 "Wrong input: Vector dimension error: expected dim: D, got N"
    400 "Wrong input: Not existing vector name error: NAME" (a query without "using" on a
        collection of named vectors names "")
    400 "Wrong input: Conversion between sparse and regular vectors failed"
    400 "Bad request: ..." prefetches without a query, RRF weights count != prefetch count or
        a weight <= 0, fusion without prefetches, shard keys, and what this server does not
        implement: multivectors, inference objects (Document/Image), lookup_from, mmr,
        recommend/discover/context/order_by/formula/sample/relevance_feedback queries, geo and
        slice conditions, scroll order_by
    404 "Not found: Collection `c` doesn't exist!"; "Not found: No point with id X found"
    409 "Wrong input: Collection `c` already exists!"
  Query semantics (Qdrant's):
    query: a float array (dense; "using" names the vector, default ""), {indices, values}
      (sparse), a point id (that point's vector "using"; the point itself is left out),
      {"nearest": one of these}, {"fusion": "rrf"|"dbsf"}, {"rrf": {"k": K, "weights": [...]}},
      or absent (no prefetch: points in id order with score 0).
    Dense scores: Cosine = cosine similarity (stored vectors are normalised at upsert, as Qdrant
      does, and returned normalised), Dot = dot product (both larger = better); Euclid = L2
      distance, Manhattan = L1 distance (smaller = better; ascending results).
    Sparse score = sum over the indices the query and the point share of q * p, each query
      value multiplied by idf = ln((N - df + 0.5) / (df + 0.5) + 1) when the sparse vector has
      "modifier": "idf" (N = points having that sparse vector, df = those having the index;
      whole collection). Points sharing no index are not returned.
    prefetch: an object or an array, nested allowed; each {query, using, filter, limit
      (default 10), score_threshold, params, prefetch}. With prefetches the top-level query
      fuses or rescores their results; without a query they are an error.
    RRF: score = sum over prefetches of 1 / ((rank0 + 1) / w + k - 1), k default 2 (Qdrant's
      DEFAULT_RRF_K), w = weights[i] (default 1). DBSF: each prefetch's scores normalised with
      mean +- 3 sample standard deviations ((s - lo) / (hi - lo); one point or lo == hi: 0.5;
      ascending lists reversed), then summed. A vector query over prefetches rescores the union
      of their points with that vector.
    The top-level filter applies to the final step only (after fusion): a filter missing from
      the prefetches yields fewer results than limit. Each prefetch's filter applies to its
      own search. Then score_threshold (score >= t; <= t for distances), offset, limit
      (default 10).
    Ties are broken by id order (integers before UUIDs, then by value). Result points
      {"id" (an integer, or the UUID in canonical lower-case form), "version" (the operation_id
      of its last upsert), "score", "payload" (null unless with_payload), "vector" (only with
      with_vector)}.
    with_payload: true, false, ["a", "b.c"], {"include": [...]}, {"exclude": [...]};
      with_vector: true or [names] (an unnamed collection gives a plain array).
    Filter: must (all), should (at least one; an empty list matches nothing), must_not (none),
      min_should {conditions, min_count}; one condition or a list each. Conditions: a nested
      Filter; FieldCondition {key, match | range | values_count | is_empty | is_null} with match
      {value} (string, integer or bool, exact type), {any: [...]}, {except: [...]}, {text}/
      {phrase} (substring), {text_any} (any word), {prefix}; range gt/gte/lt/lte on numbers, or
      on RFC 3339 datetimes when a bound is a string; {"is_empty": {"key"}}, {"is_null":
      {"key"}}, {"has_id": [...]}, {"has_vector": name}, {"nested": {"key", "filter"}}.
      Keys are paths: "a.b", "a[].b" (every element), "a[0]". A leaf array matches when an
      element does; a missing value matches only is_empty (and values_count of 0).
  Control (never recorded, no scenario, no key):
    GET    /_requests[?last=N][&scenario=S][&service=S]   records, JSON array, oldest first
    DELETE /_requests        clear the records and the fail= counters
    any    /_reset           the same, and drop every Qdrant collection
    GET    /_health          200 "ok"
  Anything else: 404 text/plain, recorded with service null. Wrong method on an embeddings or
  rerank path: 405 in that service's error shape (TEI: empty body).

Auth (--require-key KEY; without it no key is asked for)
  embeddings  "Authorization: Bearer KEY"; a malformed header is 401 even without
              --require-key; missing 401; other key 401 code "invalid_api_key" (OpenAI envelope)
  TEI         "Authorization: Bearer KEY", else 401 with an empty body (TEI's middleware)
  Cohere      "Authorization: Bearer KEY"; missing 401 {"message": "no api key supplied"},
              wrong 401 {"message": "invalid api token"}
  Qdrant      "api-key: KEY" or "Authorization: Bearer KEY"; else 401 text/plain "Must provide
              an API key or an Authorization bearer token" (missing) / "Invalid API key or JWT"

Request checks, in this order: the path (404), the method (405 / Qdrant 404), the scenario (400
"bad_scenario"), the key (401), the content type (TEI and Qdrant; OpenAI and Cohere do not look
at it), JSON (400; NaN and Infinity are not JSON), TEI's empty inputs /
texts (400), the schema, then first_ms, hang, fail= / html_error=, then the operation itself
(its own 4xx; an unexpected exception is a 500 in the service's error shape). The schema check
is validate.py --strict from <repo>/../shared/tools with ../specs/bundles/{openai,tei,qdrant}
.schema.json (override the shared dir with env SA_SHARED_DIR; missing -> warning, no checks).

Scenario options (combine with ","; values URL-decoded; an unknown option or bad value is 400
with "bad_scenario" in the service's error shape: OpenAI code "bad_scenario", TEI error_type
"Validation", Cohere and Qdrant the message starting with "bad_scenario"). Options that do not
apply to a service are ignored by it.
    fail=STATUS[:N]   each service (embeddings, embed, rerank-cohere, rerank-tei, qdrant) counts
                      the requests of each scenario string: in each cycle of N+1 the first N get
                      STATUS in that service's error envelope, the (N+1)th succeeds; no :N =
                      always. The operation is not performed. Envelopes: OpenAI as in
                      llm_server.py (429 requests/rate_limit_exceeded, 500 server_error, 503
                      server_error/service_unavailable, ...); TEI error_type 400 Empty,
                      413/422 Validation, 424 Backend, 429 Overloaded, 503 Unhealthy, other
                      Backend (401: empty body); Cohere {"id","message"}; Qdrant
                      {"status":{"error"}} (429 "Rate limiting exceeded: ...", 401 plain text)
    html_error=STATUS[:N]  like fail=, but a text/html body (a proxy's error page)
    ra=SECONDS        fail= / html_error= answers carry "retry-after: SECONDS"
    first_ms=N        wait N ms before answering (errors of fail= too)
    hang[=S]          read the request, never answer; close after S seconds (default 120)
    cut               the answer's headers (full Content-Length) and half its body, then close
    badjson           200 with the first half of the answer as the whole body (unparsable JSON)
    empty             a valid empty answer: embeddings data [], TEI embed [], rerank results []
                      / [], Qdrant query (and batch) points [], scroll points [], get_points [],
                      count 0 (writes are performed as usual)
    dim=N             embeddings (OpenAI and TEI) have N dimensions whatever was asked (1..8192)
    shuffle           OpenAI embeddings: data in reverse order (clients must use "index")
  cut and badjson apply to successful answers; writes are performed.

Embedding function (deterministic; tests and kb-build rely on it; kb_server.embed())
  1. words = re.findall("[a-z0-9]+", text.lower())
  2. left to right: if stem(word) and stem(next word) form a PHRASES pair, emit that pair's
     concept and skip both words ("call off" -> cancel, "money back" -> refund, "send back" ->
     return, "sign in"/"log in"/"log on" -> login, "gift card" -> giftcard, ...); else drop the
     word if it is in STOP_WORDS, else emit CONCEPT.get(stem(word), stem(word)).
  3. stem(w), the first rule that applies (a remainder must keep >= 3 characters):
       "ing" or "ed" is stripped, then a doubled final consonant other than l or s is undoubled
       ("shipped" -> "ship", "logged" -> "log"); "es" is stripped after s, x, z, ch or sh
       ("boxes" -> "box"); otherwise a final "s" is stripped unless the word ends in "ss",
       "us" or "is" ("refunds" -> "refund").
  4. CONCEPT maps the stem of every word listed in CONCEPTS to its concept (synonyms embed
     alike): refund (reimburse, repay, ...), return, cancel, delivery (shipping, ship,
     dispatch, parcel, package, courier, ...), login (password, passcode, credentials,
     ...), invoice (receipt, bill), payment (charge, pay, card, ...), order (purchase, buy,
     bought, ...), change (modify, edit, update, ...), damaged (broken, faulty, smashed, ...),
     lost (missing, stolen, ...), late (delayed, ...) and others: see CONCEPTS and PHRASES.
  5. Feature hashing: for each emitted token t, d = md5(t.encode("utf-8")).digest(),
     bucket = int.from_bytes(d[0:4], "little") % dim, sign = -1 if d[4] & 1 else +1;
     v[bucket] += sign. Then v is L2-normalised (an all-zero vector stays zero).
  So "Can I call off my purchase?" analyses to [cancel, order] and is nearest to the sections
  of orders/cancel-an-order.md of the sample help center, though it shares no word with that
  article (BM25 does not return it at all).

Rerank score (kb_server.rerank_logit(); both rerank APIs)
  q, d = the analysed tokens (steps 1-4) of the query and of the document.
  coverage = |set(q) & set(d)| / |set(q)| (0 when q is empty); pairs = the share of q's
  adjacent token pairs that are also adjacent in d (0 when q has < 2 tokens).
  logit = 8 * coverage + 2 * pairs - 4 (in [-4, 6]); score = 1 / (1 + exp(-logit)).
  Cohere relevance_score and TEI score are the score; TEI raw_scores:true gives the logit.

Record (GET /_requests, last 1000 requests, JSON compact, keys in this order):
    {"seq": 1, "time": 1700000000.123, "method": "POST", "path": "/fail=503:1/v1/embeddings",
     "http_version": "HTTP/1.1", "service": "embeddings" | "embed" | "rerank-cohere" |
     "rerank-tei" | "qdrant-<op>" | "qdrant-removed" | "qdrant-unknown" | null (unknown path),
     "scenario": "fail=503:1" | "" | null (unknown path),
     "headers": {"lower-case-name": "value", ...} (repeats joined with ", "),
     "body": <parsed JSON> | "<raw text>" | null, "valid": true|false|null (not checked),
     "errors": ["INVALID at /path: ..." | "UNKNOWN KEY(S) at /path: a, b" | "..."],
     "status": 200|...|null (no answer), "outcome": "pending" | "complete" | "error" |
     "cut" | "badjson" | "hang_timeout" | "client_closed"}
    --record-dir DIR also writes the body of each request with a body schema to
    DIR/NNNNNN-<service>.json (NNNNNN = seq), for validate.py --strict: embeddings ->
    openai CreateEmbeddingRequest; embed -> tei EmbedRequest; rerank-tei -> tei RerankRequest;
    qdrant-<op> -> qdrant req.<op>; rerank-cohere has no published schema.
"""
import asyncio
import base64
import collections
import datetime
import hashlib
import json
import math
import os
import re
import struct
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testserver  # noqa: E402
from testserver import ScenarioError, dumps  # noqa: E402

DEFAULT_DIM = 64
MAX_DIM = 8192
TEI_MAX_BATCH = 32


def log(msg):
    sys.stderr.write("kb_server: %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------- validation

# jsonschema keywords whose failure Qdrant reports as a validation (422), not a format (400) error
RANGE_KW = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
            "minLength", "maxLength", "minProperties", "maxProperties", "uniqueItems", "multipleOf"}


class Validator(testserver.BundleValidator):
    """testserver.BundleValidator whose details() say (message, is_range): whether Qdrant would
    answer the error as a validation error (422) rather than a format error (400)."""

    def kind(self, leaf):
        is_range = leaf.validator in RANGE_KW
        fmt = str(leaf.schema.get("format", "")) if isinstance(leaf.schema, dict) else ""
        if (leaf.validator == "minimum" and isinstance(leaf.instance, (int, float)) and leaf.instance < 0
                and (leaf.validator_value == 0 or fmt.startswith("uint"))):
            is_range = False  # a negative unsigned number: a type error for serde
        return is_range


# ---------------------------------------------------------------- text analysis

STOP_WORDS = frozenset("""
a about after again all also am an and any anything are as at be been before being both but by
can cannot could d did didn do does doesn doing don during each few for from further get gets got
had has have having he her here hers him his how i if in into is isn it its itself just ll m me
more most my myself need no nor not nothing now of off on once only or other our ours out over
own please re s same she should so some something such t than that the their theirs them then
there these they this those through to too under until up ve very want was we were what when
where which while who whom why will with won would you your yours yourself
""".split())

# concept -> the words that mean it (listed as written; the table is keyed by their stems)
CONCEPTS = {
    "refund": "refund refunds refunded refunding reimburse reimbursed reimburses reimbursing "
              "reimbursement reimbursements repay repaid repayment payback",
    "return": "return returns returned returning",
    "cancel": "cancel cancels cancelled canceled cancelling canceling cancellation cancellations abort",
    "delivery": "delivery deliveries deliver delivers delivered delivering ship ships shipped shipping "
                "shipment shipments dispatch dispatched parcel parcels package packages courier couriers",
    "login": "login logins logon password passwords passcode passphrase credentials signin",
    "invoice": "invoice invoices invoiced receipt receipts bill bills billed",
    "payment": "payment payments pay pays paid paying charge charges charged charging card cards",
    "order": "order orders ordered ordering purchase purchases purchased purchasing buy buys bought",
    "change": "change changes changed changing modify modified edit edited update updated amend amended alter",
    "damaged": "damaged damage broken broke faulty defective defect cracked torn ripped smashed",
    "wrong": "wrong incorrect mistaken",
    "lost": "lost missing disappeared vanished stolen",
    "late": "late delayed delay delays overdue",
    "track": "track tracks tracked tracking trace",
    "delete": "delete deleted deletes deleting deletion erase erased",
    "contact": "contact contacted reach phone telephone speak talk agent human representative",
    "escalation": "escalation escalate escalated complaint complaints complain manager supervisor",
    "warranty": "warranty warranties guarantee guaranteed",
    "repair": "repair repairs repaired fix fixed mend",
    "price": "price prices priced cost costs fee fees expensive cheap cheaper",
    "promo": "promo promotion discount discounts coupon coupons",
    "exchange": "exchange exchanges exchanged swap swapped replace replaced replacement",
    "size": "size sizes fit fits",
    "colour": "colour colours color colors",
    "twofactor": "2fa authenticator otp",
    "membership": "membership memberships member members subscription subscribe subscribed",
    "paylater": "klarna installment installments",
    "problem": "problem problems issue issues trouble error errors fail fails failed failure",
    "declined": "declined decline declines rejected refused denied",
    "checkout": "checkout cart basket",
    "email": "email emails mail inbox",
    "expire": "expire expired expires expiry expiration lapsed",
    "privacy": "privacy personal gdpr",
    "holiday": "holiday holidays christmas xmas",
    "tax": "tax taxes vat customs duty duties import",
    "giftcard": "giftcard giftcards voucher vouchers",
}
# two words -> concept (matched on the stems of both words, before stop words are dropped)
PHRASES = {
    ("money", "back"): "refund", ("call", "off"): "cancel", ("called", "off"): "cancel",
    ("send", "back"): "return", ("sent", "back"): "return", ("ship", "back"): "return",
    ("bring", "back"): "return", ("take", "back"): "return", ("give", "back"): "return",
    ("sign", "in"): "login", ("signed", "in"): "login", ("log", "in"): "login",
    ("logged", "in"): "login", ("log", "on"): "login",
    ("gift", "card"): "giftcard", ("gift", "cards"): "giftcard",
    ("pay", "later"): "paylater", ("two", "factor"): "twofactor",
    ("check", "out"): "checkout", ("e", "mail"): "email",
}


def stem(w):
    """Light stemming, see the docstring (step 3)."""
    n = len(w)
    if n >= 6 and w.endswith("ing"):
        r = w[:-3]
    elif n >= 5 and w.endswith("ed"):
        r = w[:-2]
    elif n >= 5 and w.endswith("es") and w[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return w[:-2]
    elif n >= 4 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    else:
        return w
    if len(r) >= 4 and r[-1] == r[-2] and r[-1] not in "aeiouls":
        r = r[:-1]
    return r


CONCEPT = {stem(w): c for c, words in CONCEPTS.items() for w in words.split()}
PHRASE = {(stem(a), stem(b)): c for (a, b), c in PHRASES.items()}


def analyze(text):
    """Text -> tokens (concepts or stems): steps 1-4 of the embedding function."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    out, i = [], 0
    while i < len(words):
        if i + 1 < len(words):
            c = PHRASE.get((stem(words[i]), stem(words[i + 1])))
            if c:
                out.append(c)
                i += 2
                continue
        w = words[i]
        i += 1
        if w not in STOP_WORDS:
            s = stem(w)
            out.append(CONCEPT.get(s, s))
    return out


def embed(text, dim=DEFAULT_DIM, normalize=True):
    """The deterministic embedding of `text` (see the docstring)."""
    v = [0.0] * dim
    for t in analyze(text):
        d = hashlib.md5(t.encode("utf-8")).digest()
        v[int.from_bytes(d[0:4], "little") % dim] += -1.0 if d[4] & 1 else 1.0
    if normalize:
        n = math.sqrt(sum(x * x for x in v))
        if n:
            v = [x / n for x in v]
    return v


def rerank_logit(query, doc):
    """The reranker's raw score (logit) of `doc` for `query`."""
    q, d = analyze(query), analyze(doc)
    if not q:
        return -4.0
    coverage = len(set(q) & set(d)) / len(set(q))
    qpairs = set(zip(q, q[1:]))
    pairs = len(qpairs & set(zip(d, d[1:]))) / len(qpairs) if qpairs else 0.0
    return 8.0 * coverage + 2.0 * pairs - 4.0


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------- scenarios

INT_OPTS = {"first_ms", "dim"}
FLAG_OPTS = {"cut", "badjson", "empty", "shuffle"}
STR_OPTS = {"ra"}
FAIL_OPTS = {"fail", "html_error"}


def parse_scenario(raw):
    opts = testserver.parse_table(raw, FLAG_OPTS, INT_OPTS, STR_OPTS, FAIL_OPTS,
                                  "bad_scenario: bad scenario option %r (see the docstring of t/kb_server.py)")
    if "dim" in opts and not 1 <= opts["dim"] <= MAX_DIM:
        raise ScenarioError("bad_scenario: dim must be 1..%d" % MAX_DIM)
    return opts


# ---------------------------------------------------------------- services

class Reply(Exception):
    """An answer other than the operation's success (raised from anywhere in a handler)."""

    def __init__(self, status, body=b"", ctype="application/json", extra=(), obj=None):
        super().__init__(status)
        self.status, self.ctype, self.extra = status, ctype, list(extra)
        self.body = dumps(obj) if obj is not None else body


class Ctx:
    """What a handler knows about the request it answers."""

    def __init__(self, req, rec, sc, query, start):
        self.req, self.rec, self.sc, self.query, self.start = req, rec, sc, query, start
        self.seq = rec["seq"]


class Service:
    family = None          # fail= counters are per (scenario, family)
    content_type = False   # True: the JSON body needs "Content-Type: application/json"

    def __init__(self, srv):
        self.srv = srv

    # hooks
    def error(self, ctx, status, message, code=None):
        raise NotImplementedError

    def auth(self, ctx, key):
        pass

    def wrong_method(self, ctx):
        return self.error(ctx, 405, "Method %s not allowed on %s; use POST." % (ctx.req.method, ctx.req.target),
                          code="method_not_allowed")

    def bad_content_type(self, ctx):
        return self.error(ctx, 415, "Expected request with `Content-Type: application/json`")

    def bad_json(self, ctx, err):
        return self.error(ctx, 400, "body is not JSON: %s" % err)

    def invalid(self, ctx, details):
        return self.error(ctx, 400, "; ".join(m for m, _ in details), code="schema_validation_failed")

    def scripted(self, ctx, status):
        return self.error(ctx, status, "Scripted error %d from kb_server.py." % status)

    def precheck(self, ctx, op, body):
        """Checks that come before the schema (TEI's empty lists)."""

    def validate(self, ctx, op, body):
        """[(message, is_range)] from the schema (None: not checked)."""
        v = self.srv.validator(*self.schema(op)) if self.schema(op) else None
        if v is None:
            return None
        return v.details(body)

    def schema(self, op):
        return None


class OpenAIEmbeddings(Service):
    """POST /v1/embeddings, /embeddings (OpenAI; also what TEI and vLLM serve there)."""
    family = "embeddings"

    def schema(self, op):
        return ("openai", "CreateEmbeddingRequest")

    def error(self, ctx, status, message, code=None, etype=None, param=None):
        if etype is None:
            etype = "server_error" if status >= 500 else "invalid_request_error"
        return Reply(status, obj=testserver.openai_error(message, etype, code, param))

    def auth(self, ctx, key):
        err = testserver.openai_auth(ctx.req.headers.get("authorization"), key)
        if err:
            raise self.error(ctx, 401, err[0], code=err[1])

    def bad_json(self, ctx, err):
        return self.error(ctx, 400, testserver.OPENAI_BAD_JSON)

    def invalid(self, ctx, details):
        return self.error(ctx, 400, "Invalid request (CreateEmbeddingRequest, strict): "
                          + "; ".join(m for m, _ in details), code="schema_validation_failed")

    def scripted(self, ctx, status):
        msg, etype, code = testserver.openai_scripted(status, "kb_server.py")
        return self.error(ctx, status, msg, code=code, etype=etype)

    def handle(self, ctx, op, params, body):
        raw = body.get("input")
        if isinstance(raw, str):
            inputs = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            inputs = [raw]
        else:
            inputs = list(raw or [])
        if any(x == "" for x in inputs):
            raise self.error(ctx, 400, "'$.input' is invalid. Please check the API reference: "
                             "https://platform.openai.com/docs/api-reference.")
        dim = body.get("dimensions", DEFAULT_DIM)
        if dim > MAX_DIM:
            raise self.error(ctx, 400, "dimensions must be at most %d." % MAX_DIM, code="invalid_value",
                             param="dimensions")
        dim = ctx.sc.get("dim", dim)
        texts = [x if isinstance(x, str) else " ".join(str(t) for t in x) for x in inputs]
        tokens = sum(len(x.split()) if isinstance(x, str) else len(x) for x in inputs)
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            v = embed(text, dim)
            if b64:
                v = base64.b64encode(struct.pack("<%df" % len(v), *v)).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": v})
        if ctx.sc.get("shuffle"):
            data.reverse()
        if ctx.sc.get("empty"):
            data = []
        return 200, {"object": "list", "data": data, "model": body.get("model"),
                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


TEI_TYPES = {400: "Empty", 413: "Validation", 422: "Validation", 424: "Backend", 429: "Overloaded",
             503: "Unhealthy"}


class TEIService(Service):
    """Errors, auth and body extraction shared by TEI's /embed and /rerank (axum)."""
    content_type = True

    def error(self, ctx, status, message, code=None, etype=None):
        if status == 401:
            return Reply(401, b"", ctype=None)
        if code == "bad_scenario":
            etype = "Validation"
        return Reply(status, obj={"error": message, "error_type": etype or TEI_TYPES.get(status, "Backend")})

    def auth(self, ctx, key):
        if key is not None and ctx.req.headers.get("authorization") != "Bearer " + key:
            raise Reply(401, b"", ctype=None)

    def wrong_method(self, ctx):
        return Reply(405, b"", ctype=None)

    def bad_content_type(self, ctx):
        return Reply(415, b"Expected request with `Content-Type: application/json`", ctype="text/plain; charset=utf-8")

    def bad_json(self, ctx, err):
        return Reply(400, ("Failed to parse the request body as JSON: %s" % err).encode(),
                     ctype="text/plain; charset=utf-8")

    def invalid(self, ctx, details):
        return Reply(422, ("Failed to deserialize the JSON body into the target type: "
                           + "; ".join(m for m, _ in details)).encode(), ctype="text/plain; charset=utf-8")

    def scripted(self, ctx, status):
        msg = {429: "Model is overloaded", 503: "Model is not healthy"}.get(status, "scripted error %d from kb_server.py" % status)
        return self.error(ctx, status, msg)

    def validate(self, ctx, op, body):
        if isinstance(body, dict) and body.get("truncation_direction") in ("left", "right"):
            body = dict(body, truncation_direction=body["truncation_direction"].capitalize())  # serde alias
        return super().validate(ctx, op, body)

    def batch(self, ctx, n):
        if n > TEI_MAX_BATCH:
            raise self.error(ctx, 422, "batch size %d > maximum allowed batch size %d" % (n, TEI_MAX_BATCH))


class TEIEmbed(TEIService):
    """POST /embed."""
    family = "embed"

    def schema(self, op):
        return ("tei", "EmbedRequest")

    def precheck(self, ctx, op, body):
        if isinstance(body, dict) and body.get("inputs") == []:
            raise self.error(ctx, 400, "`inputs` cannot be empty")

    def handle(self, ctx, op, params, body):
        raw = body["inputs"]
        if isinstance(raw, str) or (raw and all(isinstance(x, int) for x in raw)):
            inputs = [raw]
        else:
            inputs = raw
        self.batch(ctx, len(inputs))
        dim = body.get("dimensions")
        if dim is not None and not 1 <= dim <= MAX_DIM:
            raise self.error(ctx, 422, "`dimensions` must be 1..%d" % MAX_DIM)
        dim = ctx.sc.get("dim", dim or DEFAULT_DIM)
        normalize = body.get("normalize", True)
        out = [embed(x if isinstance(x, str) else " ".join(str(t) for t in x), dim, normalize) for x in inputs]
        return 200, ([] if ctx.sc.get("empty") else out)


class TEIRerank(TEIService):
    """POST /rerank."""
    family = "rerank-tei"

    def schema(self, op):
        return ("tei", "RerankRequest")

    def precheck(self, ctx, op, body):
        if isinstance(body, dict) and body.get("texts") == []:
            raise self.error(ctx, 400, "`texts` cannot be empty")

    def handle(self, ctx, op, params, body):
        texts = body["texts"]
        self.batch(ctx, len(texts))
        raw = body.get("raw_scores", False)
        ranks = []
        for i, text in enumerate(texts):
            logit = rerank_logit(body["query"], text)
            r = {"index": i, "score": logit if raw else sigmoid(logit)}
            if body.get("return_text"):
                r["text"] = text
            ranks.append(r)
        ranks.sort(key=lambda r: (-r["score"], r["index"]))
        return 200, ([] if ctx.sc.get("empty") else ranks)


COHERE_KEYS = {"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"}


class CohereRerank(Service):
    """POST /v2/rerank (Cohere v2; no published schema: checked by cohere_errors())."""
    family = "rerank-cohere"

    def error(self, ctx, status, message, code=None):
        if code == "bad_scenario" and not message.startswith("bad_scenario"):
            message = "bad_scenario: " + message
        return Reply(status, obj={"id": str(uuid.UUID(int=ctx.seq)), "message": message})

    def auth(self, ctx, key):
        if key is None:
            return
        auth = ctx.req.headers.get("authorization")
        if auth is None:
            raise self.error(ctx, 401, "no api key supplied")
        if auth != "Bearer " + key:
            raise self.error(ctx, 401, "invalid api token")

    def bad_json(self, ctx, err):
        return self.error(ctx, 400, "invalid request: could not parse the JSON body: %s" % err)

    def invalid(self, ctx, details):
        return self.error(ctx, 400, "invalid request: " + "; ".join(m for m, _ in details))

    def scripted(self, ctx, status):
        msg = {429: "too many requests (scripted by kb_server.py)"}.get(status, "scripted error %d from kb_server.py" % status)
        return self.error(ctx, status, msg)

    def validate(self, ctx, op, body):
        return [(m, False) for m in cohere_errors(body)]

    def handle(self, ctx, op, params, body):
        cut = body.get("max_tokens_per_doc")
        results = []
        for i, doc in enumerate(body["documents"]):
            if cut:
                doc = " ".join(doc.split()[:cut])
            results.append({"index": i, "relevance_score": sigmoid(rerank_logit(body["query"], doc))})
        results.sort(key=lambda r: (-r["relevance_score"], r["index"]))
        if body.get("top_n"):
            results = results[:body["top_n"]]
        if ctx.sc.get("empty"):
            results = []
        return 200, {"id": str(uuid.UUID(int=ctx.seq)), "results": results,
                     "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}


def cohere_errors(body):
    """What Cohere's v2 rerank would reject in `body` (list of messages)."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    errs = ["unknown field %r" % k for k in sorted(set(body) - COHERE_KEYS)]
    for k in ("model", "query", "documents"):
        if k not in body:
            errs.append("missing required field %r" % k)
    if "model" in body and (not isinstance(body["model"], str) or not body["model"]):
        errs.append("model must be a non-empty string")
    if "query" in body and not isinstance(body["query"], str):
        errs.append("query must be a string")
    if "documents" in body:
        docs = body["documents"]
        if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
            errs.append("documents must be an array of strings (v2)")
        elif not docs:
            errs.append("documents must not be empty")

    def integer(k, lo, hi=None):
        v = body.get(k)
        if k in body and (not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi)):
            errs.append("%s must be an integer %s" % (k, (">= %d" % lo) if hi is None else "%d..%d" % (lo, hi)))
    integer("top_n", 1)
    integer("max_tokens_per_doc", 1)
    integer("priority", 0, 999)
    return errs


# ---------------------------------------------------------------- Qdrant

class QErr(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def bad(message):
    return QErr(400, "Bad request: " + message)


def wrong(message):
    return QErr(400, "Wrong input: " + message)


def unprocessable(message):
    return QErr(422, "Validation error in JSON body: [%s]" % message)


def parse_id(v):
    """(order key, id as answered) of a point id; QErr 400 if it is no valid id."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64:
        return (0, v), v
    if isinstance(v, str):
        try:
            u = uuid.UUID(v)
            return (1, u.int), str(u)
        except ValueError:
            pass
    raise QErr(400, "Format error in JSON body: value %s is not a valid point ID, valid values are either an "
               "unsigned integer or a UUID" % json.dumps(v))


def check_sparse(v, where):
    if len(v["indices"]) != len(v["values"]):
        raise unprocessable("%s: indices and values must be the same length" % where)
    if len(set(v["indices"])) != len(v["indices"]):
        raise unprocessable("%s: indices must be unique" % where)
    return dict(zip(v["indices"], v["values"]))


def is_inference(v):
    return isinstance(v, dict) and "model" in v and any(k in v for k in ("text", "image", "object"))


class Point:
    __slots__ = ("key", "id", "vectors", "payload", "version")

    def __init__(self, key, pid, vectors, payload, version):
        self.key, self.id, self.vectors, self.payload, self.version = key, pid, vectors, payload, version


class Collection:
    def __init__(self, name, cfg):
        self.name = name
        vectors = cfg.get("vectors")
        if vectors is None:
            vectors = {}
        self.unnamed = "distance" in vectors and not isinstance(vectors.get("distance"), dict)
        self.vectors_cfg = vectors
        self.dense = {"": vectors} if self.unnamed else dict(vectors)
        self.sparse_cfg = cfg.get("sparse_vectors")
        self.sparse = {k: (v or {}) for k, v in (self.sparse_cfg or {}).items()}
        self.points = {}
        self.indexes = collections.OrderedDict()

    def info(self):
        params = {"vectors": self.vectors_cfg, "shard_number": 1, "replication_factor": 1,
                  "write_consistency_factor": 1, "on_disk_payload": True}
        if self.sparse_cfg:
            params["sparse_vectors"] = self.sparse_cfg
        schema = {}
        for field, (dtype, fparams) in self.indexes.items():
            n = sum(1 for p in self.points.values() if any(v is not None and v != [] for v in get_values(p.payload, field)))
            schema[field] = {"data_type": dtype, "points": n}
            if fparams:
                schema[field]["params"] = fparams
        return {"status": "green", "optimizer_status": "ok", "indexed_vectors_count": 0,
                "points_count": len(self.points), "segments_count": 1,
                "config": {"params": params,
                           "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                                           "max_indexing_threads": 0, "on_disk": False},
                           "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                                                "default_segment_number": 0, "max_segment_size": None,
                                                "memmap_threshold": None, "indexing_threshold": 10000,
                                                "flush_interval_sec": 5, "max_optimization_threads": None},
                           "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
                           "quantization_config": None},
                "payload_schema": schema}

    # ---- vectors
    def dense_vector(self, name, v, where):
        if name not in self.dense:
            if name in self.sparse:
                raise wrong("Conversion between sparse and regular vectors failed")
            raise wrong("Not existing vector name error: %s" % name)
        if v and isinstance(v[0], list):
            raise bad("%s: multivectors are not supported by kb_server.py" % where)
        size = self.dense[name]["size"]
        if len(v) != size:
            raise wrong("Vector dimension error: expected dim: %d, got %d" % (size, len(v)))
        v = [float(x) for x in v]
        if self.dense[name]["distance"] == "Cosine":
            n = math.sqrt(sum(x * x for x in v))
            if n:
                v = [x / n for x in v]
        return v

    def sparse_vector(self, name, v, where):
        sv = check_sparse(v, where)
        if name not in self.sparse:
            if name in self.dense:
                raise wrong("Conversion between sparse and regular vectors failed")
            raise wrong("Not existing vector name error: %s" % name)
        return sv

    def point_vectors(self, vec, where):
        if is_inference(vec):
            raise bad("%s: inference objects are not supported by kb_server.py" % where)
        items = {"": vec} if isinstance(vec, list) else vec
        out = {}
        for name, v in items.items():
            w = "%s.%s" % (where, name) if name else where
            if isinstance(v, list):
                out[name] = self.dense_vector(name, v, w)
            elif isinstance(v, dict) and "indices" in v:
                out[name] = self.sparse_vector(name, v, w)
            else:
                raise bad("%s: inference objects are not supported by kb_server.py" % w)
        return out

    def vector_out(self, p, which):
        if which is True:
            names = list(p.vectors)
        else:
            names = [n for n in which if n in p.vectors]
        def one(n):
            v = p.vectors[n]
            if n in self.sparse:
                idx = sorted(v)
                return {"indices": idx, "values": [v[i] for i in idx]}
            return v
        if self.unnamed and names == [""]:
            return one("")
        return {n: one(n) for n in names}


def get_values(payload, key):
    """The values at a payload path ("a.b", "a[].b", "a[0]"), as Qdrant's JsonPath reads them."""
    vals = [payload]
    for m in re.finditer(r'(?:^|\.)(?:"([^"]*)"|([^.\[]+))((?:\[\d*\])*)', key):
        name = m.group(1) if m.group(1) is not None else m.group(2)
        nxt = []
        for v in vals:
            if isinstance(v, dict) and name in v:
                nxt.append(v[name])
        for idx in re.findall(r"\[(\d*)\]", m.group(3)):
            flat = []
            for v in nxt:
                if isinstance(v, list):
                    if idx == "":
                        flat.extend(v)
                    elif int(idx) < len(v):
                        flat.append(v[int(idx)])
            nxt = flat
        vals = nxt
    return vals


def as_conditions(x):
    if x is None:
        return None
    return x if isinstance(x, list) else [x]


def parse_dt(s):
    try:
        d = datetime.datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T"))
    except (ValueError, AttributeError):
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compile_match(m):
    if "value" in m:
        want = m["value"]
        return lambda v: type(v) is type(want) and v == want if not is_int(want) else is_int(v) and v == want
    if "any" in m:
        want = set(m["any"])
        strs = all(isinstance(x, str) for x in m["any"])
        return lambda v: (isinstance(v, str) if strs else is_int(v)) and v in want
    if "except" in m:
        want = set(m["except"])
        strs = all(isinstance(x, str) for x in m["except"])

        def exc(v):
            if v is None:
                return False
            if strs and isinstance(v, str):
                return v not in want
            if not strs and is_int(v):
                return v not in want
            return True
        return exc
    if "text" in m or "phrase" in m:
        t = m.get("text", m.get("phrase"))
        return lambda v: isinstance(v, str) and t in v
    if "text_any" in m:
        words = m["text_any"].split()
        return lambda v: isinstance(v, str) and any(w in v for w in words)
    if "prefix" in m:
        return lambda v: isinstance(v, str) and v.startswith(m["prefix"])
    raise bad("unsupported match %s" % json.dumps(m))


def compile_range(r):
    bounds = {k: r[k] for k in ("gt", "gte", "lt", "lte") if r.get(k) is not None}
    if any(isinstance(b, str) for b in bounds.values()):
        dts = {k: parse_dt(b) for k, b in bounds.items()}
        if any(d is None for d in dts.values()):
            raise QErr(400, "Format error in JSON body: range bounds must be numbers or RFC 3339 datetimes")
        conv, bounds = (lambda v: parse_dt(v) if isinstance(v, str) else None), dts
    else:
        conv = lambda v: v if is_num(v) else None
    ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}

    def check(v):
        x = conv(v)
        return x is not None and all(ops[k](x, b) for k, b in bounds.items())
    return check


def compile_count(c):
    ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
    bounds = {k: c[k] for k in ops if c.get(k) is not None}
    return lambda n: all(ops[k](n, b) for k, b in bounds.items())


def compile_field(c):
    key = c["key"]
    for k in ("geo_bounding_box", "geo_radius", "geo_polygon"):
        if c.get(k) is not None:
            raise bad("%s conditions are not supported by kb_server.py" % k)
    match = compile_match(c["match"]) if c.get("match") is not None else None
    rng = compile_range(c["range"]) if c.get("range") is not None else None
    count = compile_count(c["values_count"]) if c.get("values_count") is not None else None
    is_empty, is_null = c.get("is_empty"), c.get("is_null")
    if match is None and rng is None and count is None and is_empty is None and is_null is None:
        raise unprocessable("filter: at least one condition must be given for key %s" % key)

    def leaf(v):
        return (match is not None and match(v)) or (rng is not None and rng(v))

    def check(v):
        if count is not None:
            return count(len(v) if isinstance(v, list) else 1)
        if is_empty is not None:
            return (v is None or v == []) == is_empty
        if is_null is not None:
            return (v is None or (isinstance(v, list) and any(x is None for x in v))) == is_null
        return any(leaf(x) for x in v) if isinstance(v, list) else leaf(v)

    def field(p):
        vals = get_values(p.payload, key)
        if not vals:
            if is_empty is not None:
                return is_empty
            if is_null is not None:
                return not is_null
            return count is not None and count(0)
        return any(check(v) for v in vals)
    return field


def compile_condition(c):
    if not isinstance(c, dict):
        raise QErr(400, "Format error in JSON body: a condition must be an object")
    if "key" in c:
        return compile_field(c)
    if "is_empty" in c:
        k = c["is_empty"]["key"]
        return lambda p: all(v is None or v == [] for v in get_values(p.payload, k))
    if "is_null" in c:
        k = c["is_null"]["key"]
        return lambda p: any(v is None for v in get_values(p.payload, k))
    if "has_id" in c:
        keys = {parse_id(i)[0] for i in c["has_id"]}
        return lambda p: p.key in keys
    if "has_vector" in c:
        name = c["has_vector"]
        return lambda p: name in p.vectors
    if "nested" in c:
        arr, inner = c["nested"]["key"] + "[]", compile_filter(c["nested"]["filter"])
        return lambda p: any(inner(Point(None, None, {}, o, 0)) for o in get_values(p.payload, arr)
                             if isinstance(o, dict))
    if "slice" in c:
        raise bad("slice conditions are not supported by kb_server.py")
    return compile_filter(c)


def compile_filter(f):
    """A Filter -> predicate(point); None -> always true. Raises QErr on what is unsupported."""
    if f is None:
        return lambda p: True
    must = [compile_condition(c) for c in as_conditions(f.get("must")) or []]
    must_not = [compile_condition(c) for c in as_conditions(f.get("must_not")) or []]
    should = as_conditions(f.get("should"))
    should = None if should is None else [compile_condition(c) for c in should]
    ms = f.get("min_should")
    min_should = None
    if ms is not None:
        min_should = ([compile_condition(c) for c in ms["conditions"]], ms["min_count"])

    def pred(p):
        if should is not None and not any(c(p) for c in should):
            return False
        if min_should is not None and sum(1 for c in min_should[0] if c(p)) < min_should[1]:
            return False
        return all(c(p) for c in must) and not any(c(p) for c in must_not)
    return pred


def select_payload(payload, sel):
    if sel is None or sel is False:
        return None
    if sel is True:
        return json.loads(json.dumps(payload))
    if isinstance(sel, list):
        sel = {"include": sel}
    if "include" in sel:
        out = {}
        for path in sel["include"]:
            parts = path.split(".")
            src, dst = payload, out
            for i, part in enumerate(parts):
                if not isinstance(src, dict) or part not in src:
                    break
                if i == len(parts) - 1:
                    dst[part] = json.loads(json.dumps(src[part]))
                else:
                    src = src[part]
                    dst = dst.setdefault(part, {})
        return out
    out = json.loads(json.dumps(payload))
    for path in sel.get("exclude", []):
        parts, node = path.split("."), out
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


QDRANT_OPS = {
    # (method, route) -> operation id
    ("GET", "collections"): "get_collections",
    ("PUT", "collection"): "create_collection",
    ("GET", "collection"): "get_collection",
    ("DELETE", "collection"): "delete_collection",
    ("GET", "exists"): "collection_exists",
    ("PUT", "index"): "create_field_index",
    ("PUT", "points"): "upsert_points",
    ("POST", "points"): "get_points",
    ("POST", "delete"): "delete_points",
    ("POST", "scroll"): "scroll_points",
    ("POST", "count"): "count_points",
    ("POST", "query"): "query_points",
    ("POST", "batch"): "query_batch_points",
}
QDRANT_BODY = {  # operation id -> $defs of its body
    "create_collection": "CreateCollection", "create_field_index": "CreateFieldIndex",
    "upsert_points": "PointInsertOperations", "get_points": "PointRequest", "delete_points": "PointsSelector",
    "scroll_points": "ScrollRequest", "count_points": "CountRequest", "query_points": "QueryRequest",
    "query_batch_points": "QueryRequestBatch",
}


class Qdrant(Service):
    """Qdrant 1.19 REST over in-memory collections."""
    family = "qdrant"
    content_type = True

    def __init__(self, srv):
        super().__init__(srv)
        self.collections = collections.OrderedDict()
        self.op_id = 0

    def reset(self):
        self.collections.clear()
        self.op_id = 0

    def schema(self, op):
        return ("qdrant", QDRANT_BODY[op]) if op in QDRANT_BODY else None

    def error(self, ctx, status, message, code=None):
        if code == "bad_scenario" and not message.startswith("bad_scenario"):
            message = "bad_scenario: " + message
        return Reply(status, obj={"status": {"error": message}, "time": round(time.monotonic() - ctx.start, 6)})

    def auth(self, ctx, key):
        if key is None:
            return
        h = ctx.req.headers
        if "api-key" not in h and "authorization" not in h:
            raise Reply(401, b"Must provide an API key or an Authorization bearer token", ctype="text/plain; charset=utf-8")
        if h.get("api-key") != key and h.get("authorization") != "Bearer " + key:
            raise Reply(401, b"Invalid API key or JWT", ctype="text/plain; charset=utf-8")

    def wrong_method(self, ctx):
        return Reply(404, b"", ctype=None)

    def bad_content_type(self, ctx):
        return self.error(ctx, 400, "Format error in JSON body: Content type error")

    def bad_json(self, ctx, err):
        return self.error(ctx, 400, "Format error in JSON body: %s" % err)

    def invalid(self, ctx, details):
        if all(r for _, r in details):
            return self.error(ctx, 422, "Validation error in JSON body: [%s]" % ", ".join(m for m, _ in details))
        return self.error(ctx, 400, "Format error in JSON body: %s" % "; ".join(m for m, r in details if not r))

    def scripted(self, ctx, status):
        if status == 401:
            return Reply(401, b"Must provide an API key or an Authorization bearer token", ctype="text/plain; charset=utf-8")
        msg = {429: "Rate limiting exceeded: scripted by kb_server.py",
               404: "Not found: scripted by kb_server.py",
               503: "Service internal error: scripted by kb_server.py (shard unavailable)"}.get(
            status, "Service internal error: scripted error %d from kb_server.py" % status)
        return self.error(ctx, status, msg)

    # ---- dispatch
    def handle(self, ctx, op, params, body):
        try:
            result = getattr(self, "op_" + op)(ctx, params.get("collection"), body)
        except QErr as e:
            raise self.error(ctx, e.status, e.message)
        return 200, {"result": result, "status": "ok", "time": round(time.monotonic() - ctx.start, 6)}

    def coll(self, name):
        c = self.collections.get(name)
        if c is None:
            raise QErr(404, "Not found: Collection `%s` doesn't exist!" % name)
        return c

    def update_result(self, ctx):
        self.op_id += 1
        wait = urllib.parse.parse_qs(ctx.query).get("wait", ["false"])[-1] == "true"
        return {"operation_id": self.op_id, "status": "completed" if wait else "acknowledged"}

    @staticmethod
    def no_shard_key(body):
        if isinstance(body, dict) and body.get("shard_key") is not None:
            raise bad("shard keys are not supported: the collection is not sharded by key")

    def op_get_collections(self, ctx, name, body):
        return {"collections": [{"name": n} for n in self.collections]}

    def op_create_collection(self, ctx, name, body):
        if name in self.collections:
            raise QErr(409, "Wrong input: Collection `%s` already exists!" % name)
        self.collections[name] = Collection(name, body)
        return True

    def op_get_collection(self, ctx, name, body):
        return self.coll(name).info()

    def op_collection_exists(self, ctx, name, body):
        return {"exists": name in self.collections}

    def op_delete_collection(self, ctx, name, body):
        return self.collections.pop(name, None) is not None

    def op_create_field_index(self, ctx, name, body):
        c = self.coll(name)
        schema = body.get("field_schema")
        field = body["field_name"]
        if schema is None:
            kinds = frozenset(type(x) for p in c.points.values() for v in get_values(p.payload, field)
                              for x in (v if isinstance(v, list) else [v]) if x is not None)
            dtype = {frozenset([str]): "keyword", frozenset([bool]): "bool", frozenset([int]): "integer",
                     frozenset([float]): "float", frozenset([int, float]): "float"}.get(kinds)
            if dtype is None:
                raise bad("Unable to infer the type of field `%s`: give field_schema" % field)
            fparams = None
        elif isinstance(schema, str):
            dtype, fparams = schema, None
        else:
            dtype, fparams = schema["type"], schema
        c.indexes[field] = (dtype, fparams)
        return self.update_result(ctx)

    def op_upsert_points(self, ctx, name, body):
        self.no_shard_key(body)
        c = self.coll(name)
        if "batch" in body:
            b = body["batch"]
            ids, vecs, pays = b["ids"], b["vectors"], b.get("payloads")
            if isinstance(vecs, dict):
                for n, col in vecs.items():
                    if len(col) != len(ids):
                        raise unprocessable("batch.vectors.%s: %d vectors for %d ids" % (n, len(col), len(ids)))
                rows = [{n: col[i] for n, col in vecs.items()} for i in range(len(ids))]
            elif isinstance(vecs, list):
                if len(vecs) != len(ids):
                    raise unprocessable("batch.vectors: %d vectors for %d ids" % (len(vecs), len(ids)))
                rows = vecs
            else:
                raise bad("batch.vectors: inference objects are not supported by kb_server.py")
            if pays is not None and len(pays) != len(ids):
                raise unprocessable("batch.payloads: %d payloads for %d ids" % (len(pays), len(ids)))
            points = [{"id": ids[i], "vector": rows[i], "payload": pays[i] if pays else None} for i in range(len(ids))]
            where = "batch"
        else:
            points, where = body["points"], "points"
        parsed = []
        for i, pt in enumerate(points):
            key, pid = parse_id(pt["id"])
            vectors = c.point_vectors(pt["vector"], "%s[%d].vector" % (where, i))
            parsed.append((key, pid, vectors, pt.get("payload") or {}))
        mode = body.get("update_mode") or "upsert"
        only = compile_filter(body.get("update_filter")) if body.get("update_filter") is not None else None
        res = self.update_result(ctx)
        for key, pid, vectors, payload in parsed:
            old = c.points.get(key)
            if old is None and mode == "update_only":
                continue
            if old is not None and (mode == "insert_only" or (only is not None and not only(old))):
                continue
            c.points[key] = Point(key, pid, vectors, payload, self.op_id)
        return res

    def records(self, c, keys_points, sel_payload, sel_vector):
        out = []
        for p in keys_points:
            r = {"id": p.id, "payload": select_payload(p.payload, sel_payload)}
            if sel_vector:
                r["vector"] = c.vector_out(p, sel_vector)
            out.append(r)
        return out

    def op_get_points(self, ctx, name, body):
        self.no_shard_key(body)
        c = self.coll(name)
        keys = []
        for i in body["ids"]:
            k = parse_id(i)[0]
            if k in c.points and k not in keys:
                keys.append(k)
        if ctx.sc.get("empty"):
            keys = []
        sel = body.get("with_payload")
        return self.records(c, [c.points[k] for k in keys], True if sel is None else sel,
                            body.get("with_vector", False))

    def op_delete_points(self, ctx, name, body):
        self.no_shard_key(body)
        c = self.coll(name)
        if "points" in body:
            keys = [parse_id(i)[0] for i in body["points"]]
        else:
            pred = compile_filter(body["filter"])
            keys = [k for k, p in c.points.items() if pred(p)]
        res = self.update_result(ctx)
        for k in keys:
            c.points.pop(k, None)
        return res

    def op_scroll_points(self, ctx, name, body):
        self.no_shard_key(body)
        if body.get("order_by") is not None:
            raise bad("order_by is not supported by kb_server.py")
        c = self.coll(name)
        pred = compile_filter(body.get("filter"))
        start = parse_id(body["offset"])[0] if body.get("offset") is not None else None
        limit = body.get("limit") or 10
        pts = sorted((p for p in c.points.values() if (start is None or p.key >= start) and pred(p)),
                     key=lambda p: p.key)
        if ctx.sc.get("empty"):
            pts = []
        page = pts[:limit]
        sel = body.get("with_payload")
        return {"points": self.records(c, page, True if sel is None else sel, body.get("with_vector", False)),
                "next_page_offset": pts[limit].id if len(pts) > limit else None}

    def op_count_points(self, ctx, name, body):
        self.no_shard_key(body)
        c = self.coll(name)
        pred = compile_filter(body.get("filter"))
        return {"count": 0 if ctx.sc.get("empty") else sum(1 for p in c.points.values() if pred(p))}

    def op_query_points(self, ctx, name, body):
        self.no_shard_key(body)
        c = self.coll(name)
        pts = [] if ctx.sc.get("empty") else self.query(c, body)
        return {"points": pts}

    def op_query_batch_points(self, ctx, name, body):
        c = self.coll(name)
        out = []
        for q in body["searches"]:
            self.no_shard_key(q)
            out.append({"points": [] if ctx.sc.get("empty") else self.query(c, q)})
        return out

    # ---- the Query API
    def query(self, c, req):
        scored, _ = self.run(c, req, top=True)
        out = []
        for s, p in scored:
            r = {"id": p.id, "version": p.version, "score": s,
                 "payload": select_payload(p.payload, req.get("with_payload"))}
            if req.get("with_vector"):
                r["vector"] = c.vector_out(p, req["with_vector"])
            out.append(r)
        return out

    def scorer(self, c, q, using):
        """(score(point) -> float | None, ascending, excluded key) for a vector query."""
        if isinstance(q, dict) and "nearest" in q:
            if q.get("mmr") is not None:
                raise bad("mmr is not supported by kb_server.py")
            q = q["nearest"]
        name = using or ""
        exclude = None
        if (is_int(q) or isinstance(q, str)):
            key, pid = parse_id(q)
            p = c.points.get(key)
            if p is None:
                raise QErr(404, "Not found: No point with id %s found" % pid)
            if name not in p.vectors:
                raise wrong("Not existing vector name error: %s" % name)
            exclude, q = key, p.vectors[name]
            if isinstance(q, dict):
                q = {"indices": list(q), "values": list(q.values())}
        if is_inference(q):
            raise bad("inference objects are not supported by kb_server.py")
        if isinstance(q, dict) and "indices" in q:
            sq = c.sparse_vector(name, q, "query")
            idf = {}
            if (c.sparse[name].get("modifier") or "none") == "idf":
                having = [p.vectors[name] for p in c.points.values() if name in p.vectors]
                n = len(having)
                for i in sq:
                    df = sum(1 for v in having if i in v)
                    idf[i] = math.log((n - df + 0.5) / (df + 0.5) + 1.0)

            def sparse_score(p):
                v = p.vectors.get(name)
                if v is None or p.key == exclude:
                    return None
                shared = [i for i in sq if i in v]
                if not shared:
                    return None
                return sum(sq[i] * idf.get(i, 1.0) * v[i] for i in shared)
            return sparse_score, False
        if isinstance(q, list):
            qv = c.dense_vector(name, q, "query")
            dist = c.dense[name]["distance"]

            def dense_score(p):
                v = p.vectors.get(name)
                if v is None or p.key == exclude:
                    return None
                if dist == "Euclid":
                    return math.sqrt(sum((a - b) ** 2 for a, b in zip(qv, v)))
                if dist == "Manhattan":
                    return sum(abs(a - b) for a, b in zip(qv, v))
                return sum(a * b for a, b in zip(qv, v))
            return dense_score, dist in ("Euclid", "Manhattan")
        kind = next(iter(q)) if isinstance(q, dict) and q else type(q).__name__
        raise bad("%s queries are not supported by kb_server.py" % kind)

    @staticmethod
    def ordered(items, asc):
        return sorted(items, key=lambda sp: ((sp[0] if asc else -sp[0]), sp[1].key))

    def run(self, c, req, top):
        """[(score, point)] best first, and whether the scores ascend (distances)."""
        if req.get("lookup_from") is not None:
            raise bad("lookup_from is not supported by kb_server.py")
        pre = req.get("prefetch")
        pre = [] if pre is None else (pre if isinstance(pre, list) else [pre])
        q = req.get("query")
        pred = compile_filter(req.get("filter"))
        limit = req.get("limit") or 10
        offset = (req.get("offset") or 0) if top else 0
        threshold = req.get("score_threshold")
        fusion = None
        if isinstance(q, dict) and "fusion" in q:
            fusion = ("rrf", 2, None) if q["fusion"] == "rrf" else ("dbsf", None, None)
        elif isinstance(q, dict) and "rrf" in q:
            r = q["rrf"]
            fusion = ("rrf", r.get("k") or 2, r.get("weights"))
        if pre:
            if q is None:
                raise bad("A query is needed to merge the prefetches. Can't have prefetches without defining a query.")
            if fusion and fusion[2] is not None:
                if len(fusion[2]) != len(pre):
                    raise bad("Number of RRF weights (%d) must match the number of prefetches (%d)"
                              % (len(fusion[2]), len(pre)))
                if any(w <= 0 for w in fusion[2]):
                    raise bad("RRF weights must be positive")
            lists = [self.run(c, p, top=False) for p in pre]
            if fusion and fusion[0] == "rrf":
                items, asc = self.rrf(lists, fusion[1], fusion[2]), False
            elif fusion:
                items, asc = self.dbsf(lists), False
            else:
                score, asc = self.scorer(c, q, req.get("using"))
                seen, items = set(), []
                for lst, _ in lists:
                    for _, p in lst:
                        if p.key not in seen:
                            seen.add(p.key)
                            s = score(p)
                            if s is not None:
                                items.append((s, p))
            items = [(s, p) for s, p in items if pred(p)]
        elif fusion:
            raise bad("Fusion queries need prefetches: there is nothing to fuse")
        elif q is None:
            items, asc = [(0.0, p) for p in c.points.values() if pred(p)], False
        else:
            score, asc = self.scorer(c, q, req.get("using"))
            items = []
            for p in c.points.values():
                if pred(p):
                    s = score(p)
                    if s is not None:
                        items.append((s, p))
        if threshold is not None:
            items = [(s, p) for s, p in items if (s <= threshold if asc else s >= threshold)]
        return self.ordered(items, asc)[offset:offset + limit], asc

    def rrf(self, lists, k, weights):
        acc = {}
        for i, (lst, _) in enumerate(lists):
            w = weights[i] if weights else 1.0
            for rank, (_, p) in enumerate(lst):
                s, _p = acc.get(p.key, (0.0, p))
                acc[p.key] = (s + 1.0 / ((rank + 1) / w + k - 1), p)
        return list(acc.values())

    def dbsf(self, lists):
        acc = {}
        for lst, asc in lists:
            scores = [s for s, _ in lst]
            n = len(scores)
            if n == 0:
                continue
            if n == 1:
                norm = [0.5]
            else:
                mean = sum(scores) / n
                std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
                lo, hi = mean - 3 * std, mean + 3 * std
                if lo == hi:
                    norm = [0.5] * n
                else:
                    norm = [((hi - s) if asc else (s - lo)) / (hi - lo) for s in scores]
            for x, (_, p) in zip(norm, lst):
                s, _p = acc.get(p.key, (0.0, p))
                acc[p.key] = (s + x, p)
        return list(acc.values())


# ---------------------------------------------------------------- server

EMBED_ROUTES = {"/v1/embeddings": "embeddings", "/embeddings": "embeddings", "/embed": "embed",
                "/v2/rerank": "rerank-cohere", "/rerank": "rerank-tei"}
REMOVED = re.compile(r"/points/(search|recommend|discover)(/batch|/groups)?$")


def route(path):
    """(service key, route name, params) for a path without scenario prefix, or None."""
    if path in EMBED_ROUTES:
        return EMBED_ROUTES[path], None, {}
    if path == "/collections":
        return "qdrant", "collections", {}
    m = re.fullmatch(r"/collections/([^/]+)(/.*)?", path)
    if not m:
        return None
    name, rest = urllib.parse.unquote(m.group(1)), m.group(2) or ""
    params = {"collection": name}
    sub = {"": "collection", "/exists": "exists", "/index": "index", "/points": "points",
           "/points/delete": "delete", "/points/scroll": "scroll", "/points/count": "count",
           "/points/query": "query", "/points/query/batch": "batch"}.get(rest)
    if sub is None:
        sub = "removed" if REMOVED.fullmatch(rest) else "unknown"
    return "qdrant", sub, params


class KBServer(testserver.BaseServer):
    name = "kb_server"

    def __init__(self, args):
        super().__init__(args)
        self.validators = {}
        self.validate_ok = not args.no_validate
        if self.validate_ok:
            try:
                for bundle in ("openai", "tei", "qdrant"):
                    testserver.Bundle.get(bundle)
            except Exception as e:  # missing shared dir or jsonschema
                log("WARNING: request validation disabled: %s: %s" % (type(e).__name__, e))
                self.validate_ok = False
        self.services = {"embeddings": OpenAIEmbeddings(self), "embed": TEIEmbed(self),
                         "rerank-cohere": CohereRerank(self), "rerank-tei": TEIRerank(self), "qdrant": Qdrant(self)}

    def validator(self, bundle, defname):
        if not self.validate_ok:
            return None
        if (bundle, defname) not in self.validators:
            self.validators[(bundle, defname)] = Validator(defname, bundle=bundle)
        return self.validators[(bundle, defname)]

    async def control(self, conn, req, path, query):
        if path == "/_health":
            await conn.simple(req, 200, body=b"ok\n", ctype="text/plain")
        elif path == "/_reset" or (path == "/_requests" and req.method == "DELETE"):
            self.records.clear()
            self.counters.clear()
            if path == "/_reset":
                self.services["qdrant"].reset()
            await conn.simple(req, 200, {"cleared": True})
        else:
            q = urllib.parse.parse_qs(query)
            await conn.simple(req, 200, testserver.last_n(testserver.matching(self.records, q, "service"), q))
        return True

    async def dispatch(self, conn, req):
        """Answer one request; returns False when the connection must be closed."""
        path, _, query = req.target.partition("?")
        if path in ("/_health", "/_reset", "/_requests"):
            return await self.control(conn, req, path, query)
        start = time.monotonic()
        rec = self.record(conn, req, http_version=req.version, service=None, scenario=None, headers=req.headers,
                          body=None, valid=None, errors=[], status=None, outcome="pending")
        parsed, is_json, jerr = None, False, "EOF while parsing a value at line 1 column 0"
        if req.body:
            parsed, is_json, jerr = testserver.parse_json(req.body)
            rec["body"] = parsed if is_json else req.body.decode("utf-8", "replace")

        scenario, found = "", route(path)
        if found is None and path.count("/") >= 2:
            scenario, _, rest = path[1:].partition("/")
            found = route("/" + rest)
        if found is None:
            rec["status"], rec["outcome"] = 404, "error"
            self.note("#%d %s %s -> 404" % (rec["seq"], req.method, req.target))
            await conn.simple(req, 404, body=("kb_server.py: no endpoint %s %s\n" % (req.method, path)).encode(),
                              ctype="text/plain; charset=utf-8")
            return True
        skey, sub, params = found
        svc = self.services[skey]
        rec["scenario"] = scenario
        ctx = Ctx(req, rec, {}, query, start)
        if skey == "qdrant":
            op = QDRANT_OPS.get((req.method, sub))
            rec["service"] = "qdrant-" + (op or ("removed" if sub == "removed" else "unknown"))
        else:
            op = "post" if req.method == "POST" else None
            rec["service"] = skey
        if self.args.record_dir and req.body and op and (svc.schema(op) or skey == "rerank-cohere"):
            with open(os.path.join(self.args.record_dir, "%06d-%s.json" % (rec["seq"], rec["service"])), "wb") as f:
                f.write(req.body)
        try:
            if op is None:
                raise svc.wrong_method(ctx)
            try:
                ctx.sc = parse_scenario(scenario)
            except (ScenarioError, ValueError) as e:
                msg = str(e) if str(e).startswith("bad_scenario") else "bad_scenario: " + str(e)
                raise svc.error(ctx, 400, msg, code="bad_scenario")
            svc.auth(ctx, self.args.require_key)
            body = None
            if skey != "qdrant" or op in QDRANT_BODY:
                ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
                if svc.content_type and ctype != "application/json":
                    rec["valid"], rec["errors"] = False, ["Content-Type is not application/json"]
                    raise svc.bad_content_type(ctx)
                if not is_json:
                    rec["valid"], rec["errors"] = False, ["body is not JSON"]
                    raise svc.bad_json(ctx, jerr)
                body = parsed
                svc.precheck(ctx, op, body)
                if skey == "rerank-cohere" or self.validate_ok:
                    details = await asyncio.get_running_loop().run_in_executor(
                        self.pool, svc.validate, ctx, op, body)
                    if details is not None:
                        rec["valid"], rec["errors"] = not details, [m for m, _ in details]
                        if details:
                            raise svc.invalid(ctx, details)
            sc = ctx.sc
            if sc.get("first_ms"):
                await asyncio.sleep(sc["first_ms"] / 1000.0)
            if "hang" in sc:
                return await conn.hang(sc["hang"])
            failspec = sc.get("html_error") or sc.get("fail")
            if failspec:
                status, n = failspec
                count = self.count((scenario, svc.family))
                if n is None or count % (n + 1) < n:
                    extra = [("retry-after", sc["ra"])] if "ra" in sc else []
                    if "html_error" in sc:
                        raise Reply(status, testserver.html_error(status, "nginx"), ctype="text/html", extra=extra)
                    r = svc.scripted(ctx, status)
                    r.extra += extra
                    raise r
            try:
                status, obj = svc.handle(ctx, op, params, body)
            except Reply:
                raise
            except Exception as e:  # a bug here, or a body let through by --no-validate
                self.note("#%d %s %s: %s: %s" % (rec["seq"], req.method, req.target, type(e).__name__, e))
                raise svc.error(ctx, 500, "kb_server.py internal error: %s: %s" % (type(e).__name__, e))
        except Reply as r:
            rec["status"], rec["outcome"] = r.status, "error"
            self.note("#%d %s %s -> %d %s" % (rec["seq"], req.method, req.target, r.status, r.body[:200]))
            await conn.head(r.status, r.ctype, len(r.body), req.keep_alive, r.extra)
            if r.body:
                await conn.send(r.body)
            return True
        data = dumps(obj)
        rec["status"] = status
        self.note("#%d %s %s -> %d" % (rec["seq"], req.method, req.target, status))
        if ctx.sc.get("cut"):
            await conn.head(status, "application/json", len(data), False)
            await conn.send(data[:len(data) // 2])
            rec["outcome"] = "cut"
            return False
        if ctx.sc.get("badjson"):
            data = data[:max(1, len(data) // 2)]
            rec["outcome"] = "badjson"
        else:
            rec["outcome"] = "complete"
        await conn.head(status, "application/json", len(data), req.keep_alive)
        await conn.send(data)
        return True


def main(argv=None):
    return testserver.main(argv, "Embeddings, rerank and Qdrant test server (see the docstring).", KBServer,
                           testserver.BaseConn, "kb_server")


if __name__ == "__main__":
    sys.exit(main())
