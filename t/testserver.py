"""What the test servers (llm_server.py, kb_server.py) share: the command line, the asyncio
listener with its port file, a clean stop on SIGTERM/SIGINT or when the parent goes away, and
reading HTTP/1.1 requests (BaseConn).

    testserver.main(argv, description, make_server, make_conn)

make_server(args) returns the server object (with a .pool executor, shut down at exit);
make_conn(srv, reader, writer) returns an object whose run() coroutine serves a connection.
"""
import argparse
import asyncio
import os
import signal
import socket
import sys


def log(name, msg):
    sys.stderr.write("%s: %s\n" % (name, msg))
    sys.stderr.flush()


class PeerGone(Exception):
    pass


class Request:
    pass


MAX_BODY = 32 << 20


class BaseConn:
    """One client connection: reading HTTP/1.1 requests (Content-Length or chunked bodies,
    100-continue, keep-alive) and the request loop; the servers add their replies."""

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


def main(argv, description, make_server, make_conn, name):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--record-dir")
    p.add_argument("--require-key")
    p.add_argument("--no-validate", action="store_true", help="skip schema validation")
    p.add_argument("--parent-pid", type=int, help="exit when this process is no longer our parent")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    asyncio.run(serve(args, make_server(args), make_conn, name))
    return 0
