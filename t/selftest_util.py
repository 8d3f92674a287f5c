"""What the self-tests of the test servers (t/*_server_selftest.py) share: starting a server by its
CLI, as the suites do, and talking HTTP/1.1 to it over raw sockets.

    proc, port = start(SERVER, TMP, "--record-dir", REC)      (or spawn() ... started())
    r = exchange(port, "POST", "/path", {"Host": ...}, payload)   r.status, r.headers, r.body, ...
    r = json_request(port, "/path", {...})                      a JSON body
    out = await async_exchange(port, b"POST ... Connection: close ...")      many side by side
    t, obj = await timed_get(port, "/_requests?min=1&wait=5")
"""
import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import time

_port_files = itertools.count()


def spawn(server, tmp, *extra):
    """Start the server (a path) on a free port with --quiet and a port file in tmp, without
    waiting for it: (proc, port_file) for started()."""
    port_file = os.path.join(tmp, "port%d" % next(_port_files))
    proc = subprocess.Popen(["/usr/bin/python3", server, "--port", "0", "--port-file", port_file, "--quiet"]
                            + list(extra), stdout=subprocess.PIPE, text=True)
    return proc, port_file


def started(proc, port_file):
    """Wait until a spawned server listens; its port (checked against the port file)."""
    line = proc.stdout.readline()
    assert line.startswith("listening on 127.0.0.1:"), line
    port = int(line.rsplit(":", 1)[1])
    with open(port_file) as f:
        assert int(f.read()) == port
    return port


def start(server, tmp, *extra):
    """spawn() and started(): (proc, port)."""
    proc, port_file = spawn(server, tmp, *extra)
    return proc, started(proc, port_file)


def stop(proc):
    """SIGTERM; the server must exit 0."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == 0


class Resp:
    status = None
    informational = None  # the status of a 1xx answer before this one
    reset = False         # connection reset by peer
    complete = False      # the body ended as the framing says (terminating chunk / full length)
    headers = {}

    def json(self):
        return json.loads(self.body)


def read_response(f):
    """Parse one response from a socket file (1xx answers skipped, noted in .informational; a
    body by Content-Length, chunked (.raw_chunks: the chunks as sent) or up to EOF); tolerates
    RST and EOF."""
    r = Resp()
    r.raw_chunks = []
    data = bytearray()
    try:
        line = f.readline()
        if not line:
            r.body = b""
            return r
        while True:
            r.status = int(line.split()[1])
            r.headers = {}
            while True:
                h = f.readline().rstrip(b"\r\n")
                if not h:
                    break
                k, _, v = h.decode("latin-1").partition(":")
                r.headers[k.strip().lower()] = v.strip()
            if r.status >= 200:
                break
            r.informational = r.status
            line = f.readline()
        if r.headers.get("transfer-encoding") == "chunked":
            while True:
                size_line = f.readline()
                if not size_line:
                    break
                size = int(size_line.strip(), 16)
                if size == 0:
                    f.readline()
                    r.complete = True
                    break
                piece = f.read(size)
                r.raw_chunks.append(piece)
                data += piece
                if len(piece) < size:
                    break
                f.readline()
        elif "content-length" in r.headers:
            n = int(r.headers["content-length"])
            data += f.read(n)
            r.complete = len(data) == n
        else:
            while True:
                piece = f.read1(65536)
                if not piece:
                    break
                data += piece
            r.complete = True
    except ConnectionResetError:
        r.reset = True
    r.body = bytes(data)
    return r


def exchange(port, method, path, headers, payload=b"", version="HTTP/1.1", sock=None, keep=False, timeout=10,
             chunk=0):
    """Send one request on sock (or a new connection to port), the headers in their order (one
    given as None is left out), the payload as is or, with chunk=N, in chunks of N bytes; read the
    response (r.sock: the socket, closed unless keep)."""
    s = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = "%s %s %s\r\n" % (method, path, version) + "".join("%s: %s\r\n" % kv for kv in headers.items()
                                                              if kv[1] is not None)
    if chunk:
        pieces = [payload[i:i + chunk] for i in range(0, len(payload), chunk)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    s.sendall(head.encode() + b"\r\n" + payload)
    r = read_response(s.makefile("rb"))
    r.sock = s
    if not keep:
        s.close()
    return r


def json_request(port, path, obj=None, raw=None, headers=None, method="POST", version="HTTP/1.1",
                 sock=None, keep=False, timeout=10):
    """A request with Content-Type application/json and Content-Length, whatever the method; the
    body obj as JSON, or raw bytes; headers added (None: leave one out)."""
    payload = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
    h = {"Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(len(payload))}
    if not keep:
        h["Connection"] = "close"
    h.update(headers or {})
    return exchange(port, method, path, h, payload, version, sock, keep, timeout)


async def async_exchange(port, data):
    """Send data (a whole request, with "Connection: close") on a connection of its own (asyncio:
    many side by side); the whole answer, as bytes."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(data)
    out = await r.read()
    w.close()
    return out


async def timed_get(port, path):
    """GET path with async_exchange(): the time.monotonic() when the answer was complete, and its
    JSON body."""
    out = await async_exchange(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    return time.monotonic(), json.loads(out.split(b"\r\n\r\n", 1)[1])
