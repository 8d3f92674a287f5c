"""What the test servers (llm_server.py, kb_server.py) share: the command line, the asyncio
listener with its port file, and a clean stop on SIGTERM/SIGINT or when the parent goes away.

    testserver.main(argv, description, make_server, make_conn)

make_server(args) returns the server object (with a .pool executor, shut down at exit);
make_conn(srv, reader, writer) returns an object whose run() coroutine serves a connection.
"""
import argparse
import asyncio
import os
import signal
import sys


def log(name, msg):
    sys.stderr.write("%s: %s\n" % (name, msg))
    sys.stderr.flush()


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
