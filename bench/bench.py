#!/usr/bin/python3
"""The benchmark behind `make bench` (bench/run.sh NGINX MODULE_SO): ngx_http_support_agent_module
against plain nginx proxy_pass of the same LLM stream, measured in the same run.

Scenarios (each side gets a fresh nginx and a fresh mock LLM, t/llm_server.py; the sides run
one after the other, never concurrently):
  (a) fast LLM, 64 tokens per reply, 32 concurrent clients, 3000 turns (after a warm-up):
      nginx worker CPU seconds (utime+stime, /proc/PID/stat) per 1000 turns,
      peak worker RSS (VmHWM, /proc/PID/status, summed over workers), RSS along the run.
  (b) 1000 concurrent slow streams (first token after 500 ms, then 50 ms per token, 64 tokens):
      time to first token p50/p99, peak worker RSS.
Targets: (a) module <= 0.5 CPU-s per 1000 turns; (b) module TTFT p99 <= 1.1x proxy_pass,
module peak RSS <= 2x proxy_pass. A benchmark, not a test: the exit status is 0 whatever the
figures are (1 only for a broken setup).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
CLK = os.sysconf("SC_CLK_TCK")
LOG_LEVEL = ["notice"]  # --log-level
PIN = {}  # "nginx" / "py": CPU set for those processes (--pin), else unpinned
DIRECTIVES = []  # --directive: more lines in the module's /chat location
# --tool-path: the mock LLM first calls lookup_order (an order of the demo shop's fixture,
# of the customer nginx vouches for), then answers; the module asks the shop in between
TOOL_SCENARIO = (",tool=lookup_order,args=" +
                 "%7B%22order_id%22%3A%22%23W4435622%22%7D")
TOOL_CUSTOMER = "james.li4495@example.com"


def pinned(who):
    cpus = PIN.get(who)
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


# ---------------------------------------------------------------- /proc

def proc_cpu(pid):
    """utime+stime of the whole process (all its threads, live and exited), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])  # kB
    return out


def children(ppid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        if int(s[s.rindex(")") + 2:].split()[1]) == ppid:
            pids.append(int(d))
    return pids


def workers(master):
    out = []
    for pid in children(master):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"worker process" in f.read():
                    out.append(pid)
        except OSError:
            pass
    return sorted(out)


def snapshot(pids):
    cpu, st = 0.0, {}
    for pid in pids:
        try:
            cpu += proc_cpu(pid)
            for k, v in proc_status(pid).items():
                st[k] = st.get(k, 0) + v
        except OSError:
            pass
    st["cpu"] = cpu
    return st


def upstream_conns(pids, port):
    """Established TCP connections from these processes to 127.0.0.1:port."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    l = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if l.startswith("socket:["):
                    inodes.add(l[8:-1])
        except OSError:
            pass
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            x = line.split()
            if x[3] == "01" and int(x[2].split(":")[1], 16) == port and x[9] in inodes:
                n += 1
    return n


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ---------------------------------------------------------------- processes

class Mock:
    def __init__(self, rundir, name, script="llm_server.py"):
        self.portfile = os.path.join(rundir, name + ".llm.port")
        if os.path.exists(self.portfile):
            os.unlink(self.portfile)
        self.log = open(os.path.join(rundir, name + ".llm.log"), "w")
        self.p = subprocess.Popen(
            [PY, os.path.join(REPO, "t", script), "--port", "0", "--port-file", self.portfile,
             "--no-validate", "--quiet", "--parent-pid", str(os.getpid())],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=pinned("py"))
        end = time.monotonic() + 15
        while not os.path.exists(self.portfile):
            if self.p.poll() is not None or time.monotonic() > end:
                raise RuntimeError("mock LLM did not start (see %s)" % self.log.name)
            time.sleep(0.05)
        with open(self.portfile) as f:
            self.port = int(f.read().strip())
        if not wait_port(self.port):
            raise RuntimeError("mock LLM not accepting on %d" % self.port)

    def cpu(self):
        return proc_cpu(self.p.pid)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def start_nginx(*a):
    """Nginx(*a), tried again with another port if the free port was taken meanwhile
    (other test suites on the machine pick ports too)."""
    for attempt in range(3):
        try:
            return Nginx(*a)
        except RuntimeError:
            if attempt == 2:
                raise


class Nginx:
    def __init__(self, binary, rundir, name, side, module_so, llm_port, scenario, nworkers):
        self.name = name
        d = os.path.join(rundir, name)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        os.chmod(d, 0o755)
        self.port = free_port()
        self.errlog = os.path.join(d, "error.log")
        open(self.errlog, "w").close()  # a fresh log for each attempt
        base = "http://127.0.0.1:%d/%s/v1" % (llm_port, scenario)
        temps = "".join("    %s_temp_path %s/tmp/%s;\n" % (t, d, t)
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        if side == "module":
            head = "load_module %s;\n" % module_so
            http = ("    support_agent_store %s/store;\n"
                    "    support_agent_store_sync off;\n"
                    "    server {\n"
                    "        listen 127.0.0.1:%d backlog=4096;\n"
                    "        location = /chat {\n"
                    "            support_agent;\n"
                    "            support_agent_llm_url %s;\n"
                    "            support_agent_llm_model bench;\n"
                    "            support_agent_llm_timeout 60s;\n"
                    "%s"
                    "        }\n"
                    "    }\n" % (d, self.port, base,
                                "".join("            %s;\n" % x
                                        for x in DIRECTIVES)))
        else:
            head = ""
            http = ("    upstream llm {\n"
                    "        server 127.0.0.1:%d;\n"
                    "        keepalive 64;\n"
                    "    }\n"
                    "    server {\n"
                    "        listen 127.0.0.1:%d backlog=4096;\n"
                    "        location /v1/ {\n"
                    "            proxy_pass http://llm/%s/v1/;\n"
                    "            proxy_buffering off;\n"
                    "            proxy_http_version 1.1;\n"
                    "            proxy_set_header Connection \"\";\n"
                    "            proxy_read_timeout 60s;\n"
                    "        }\n"
                    "    }\n" % (llm_port, self.port, scenario))
        conf = (head +
                "master_process on;\n"
                "daemon off;\n"
                "worker_processes %d;\n"
                "worker_rlimit_nofile 20000;\n"
                "pid %s/nginx.pid;\n"
                "error_log %s %s;\n"
                "events {\n    worker_connections 8192;\n}\n"
                "http {\n"
                "    access_log off;\n"
                "%s%s"
                "}\n") % (nworkers, d, self.errlog, LOG_LEVEL[0], temps, http)
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.out = open(os.path.join(d, "stderr.log"), "w")
        self.p = subprocess.Popen([binary, "-p", d + "/", "-e", self.errlog, "-c", self.conf],
                                  stdout=self.out, stderr=subprocess.STDOUT,
                                  preexec_fn=pinned("nginx"))
        if not wait_port(self.port) or self.p.poll() is not None:
            self.stop()
            raise RuntimeError("nginx (%s) did not start; see %s and %s"
                               % (name, self.errlog, self.out.name))
        end = time.monotonic() + 5
        while True:
            self.workers = workers(self.p.pid)
            if len(self.workers) == nworkers or time.monotonic() > end:
                break
            time.sleep(0.05)

    def stop(self):
        rc = None
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGQUIT)
            try:
                rc = self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.send_signal(signal.SIGTERM)
                try:
                    rc = self.p.wait(5)
                except subprocess.TimeoutExpired:
                    self.p.kill()
                    rc = self.p.wait()
        else:
            rc = self.p.returncode
        self.out.close()
        return rc

    def log_lines(self):
        """warn-or-worse lines, and signals nginx got from anyone but this script."""
        me = str(os.getpid())
        out = []
        try:
            with open(self.errlog, errors="replace") as f:
                for l in f:
                    if re.search(r"\[(warn|error|crit|alert|emerg)\]", l):
                        out.append(l.rstrip("\n"))
                    else:
                        m = re.search(r"signal (\d+) \(\w+\) received from (\d+)", l)
                        if m and m.group(1) != "17" and m.group(2) != me:
                            out.append(l.rstrip("\n"))
        except OSError:
            pass
        return out


def run_load(port, mode, turns, conc, ramp, timeout):
    cmd = [PY, os.path.join(HERE, "load.py"), "--port", str(port), "--mode", mode,
           "--turns", str(turns), "--concurrency", str(conc), "--ramp", str(ramp),
           "--timeout", str(timeout)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout + 120, preexec_fn=pinned("py"))
    if r.returncode != 0:
        raise RuntimeError("load.py failed: %s" % r.stderr.strip()[-2000:])
    return json.loads(r.stdout)


# ---------------------------------------------------------------- scenarios

def machine_busy():
    """CPU seconds the whole machine has been busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK, (v[7] if len(v) > 7 else 0) / CLK


def merge_failures(loads):
    fails = {}
    for l in loads:
        for k, v in l["failures"]:
            fails[k] = fails.get(k, 0) + v
    return sorted(fails.items(), key=lambda kv: -kv[1])


def finish(res, ngx, mock):
    res["master_alive"] = ngx.p.poll() is None
    res["workers_end"] = workers(ngx.p.pid) if res["master_alive"] else []
    res["upstream_conns"] = upstream_conns(res["workers_end"], mock.port)


def scenario_a(args, side, rundir):
    """Fast LLM: CPU per turn, memory along the run."""
    mock = Mock(rundir, "a-" + side)
    ngx = None
    res = {}
    try:
        scenario = "tokens=64"
        if side == "module" and args.tool_path:
            scenario += TOOL_SCENARIO
        ngx = start_nginx(args.nginx, rundir, "a-" + side, side, args.module, mock.port, scenario,
                    args.workers)
        res["workers"] = list(ngx.workers)
        w = run_load(ngx.port, side, args.warmup, args.concurrency, 0, 30)
        res["warmup_failed"], res["warmup_failures"] = w["failed"], w["failures"]
        time.sleep(0.3)
        snaps = [snapshot(ngx.workers)]
        m0, (b0, st0), tm0 = mock.cpu(), machine_busy(), time.monotonic()
        loads, rounds = [], []
        per = [args.turns // args.rounds] * args.rounds
        per[-1] += args.turns - sum(per)
        for n in per:
            loads.append(run_load(ngx.port, side, n, args.concurrency, 0, 60))
            time.sleep(0.3)
            snaps.append(snapshot(ngx.workers))
            rounds.append((snaps[-1]["cpu"] - snaps[-2]["cpu"]) / n * 1000)
        b1, st1 = machine_busy()
        res["span"] = time.monotonic() - tm0
        res["mock_cpu"] = mock.cpu() - m0
        res["cpu"] = snaps[-1]["cpu"] - snaps[0]["cpu"]
        res["turns"] = sum(l["turns"] for l in loads)
        res["ok"] = sum(l["ok"] for l in loads)
        res["failed"] = sum(l["failed"] for l in loads)
        res["failures"] = merge_failures(loads)
        res["wall"] = sum(l["wall_s"] for l in loads)
        res["client_cpu"] = sum(l["client_cpu_s"] for l in loads)
        res["machine_cpu"], res["steal"] = b1 - b0, st1 - st0
        res["tps"] = res["ok"] / res["wall"] if res["wall"] else 0
        res["cpu_per_1000"] = res["cpu"] / res["turns"] * 1000 if res["turns"] else None
        res["rounds_cpu_per_1000"] = rounds
        res["hwm"] = snaps[-1].get("VmHWM", 0)
        res["rss_steps"] = [x.get("VmRSS", 0) for x in snaps]
        res["anon_steps"] = [x.get("RssAnon", 0) for x in snaps]
        res["file_steps"] = [x.get("RssFile", 0) for x in snaps]
        res["dur_p50"] = sorted(l["dur_p50"] for l in loads)[len(loads) // 2]
        finish(res, ngx, mock)
    finally:
        rc = ngx.stop() if ngx else None
        mock.stop()
    res["nginx_rc"] = rc
    res["log"] = ngx.log_lines()
    return res


def scenario_b(args, side, rundir):
    """Concurrent slow streams: time to first token and memory; then a second round on the
    same nginx to tell retained memory (allocator, caches) from memory that grows per stream."""
    mock = Mock(rundir, "b-" + side)
    ngx = None
    res = {}
    try:
        ngx = start_nginx(args.nginx, rundir, "b-" + side, side, args.module, mock.port,
                    "tokens=64,first_ms=500,token_ms=50", args.workers)
        res["workers"] = list(ngx.workers)
        s0 = snapshot(ngx.workers)
        m0, (b0, st0), tm0 = mock.cpu(), machine_busy(), time.monotonic()
        l = run_load(ngx.port, side, args.streams, args.streams, args.ramp, 60)
        time.sleep(0.3)
        s1 = snapshot(ngx.workers)
        b1, st1 = machine_busy()
        res["span"] = time.monotonic() - tm0
        res.update({k: l[k] for k in ("turns", "ok", "failed", "failures", "ttft_p50", "ttft_p90",
                                      "ttft_p99", "ttft_max", "dur_p50", "dur_p99", "max_inflight")})
        res["wall"] = l["wall_s"]
        res["client_cpu"] = l["client_cpu_s"]
        res["mock_cpu"] = mock.cpu() - m0
        res["machine_cpu"], res["steal"] = b1 - b0, st1 - st0
        res["cpu"] = s1["cpu"] - s0["cpu"]
        res["hwm"] = s1.get("VmHWM", 0)
        res["rss_start"] = s0.get("VmRSS", 0)
        res["rss_end"] = s1.get("VmRSS", 0)
        res["anon_end"], res["file_end"] = s1.get("RssAnon", 0), s1.get("RssFile", 0)
        if args.second_round:
            l2 = run_load(ngx.port, side, args.streams, args.streams, args.ramp, 60)
            time.sleep(0.3)
            s2 = snapshot(ngx.workers)
            res["r2"] = {"ok": l2["ok"], "failed": l2["failed"], "failures": l2["failures"],
                         "ttft_p99": l2["ttft_p99"], "hwm": s2.get("VmHWM", 0),
                         "rss_end": s2.get("VmRSS", 0), "anon_end": s2.get("RssAnon", 0),
                         "file_end": s2.get("RssFile", 0)}
        finish(res, ngx, mock)
    finally:
        rc = ngx.stop() if ngx else None
        mock.stop()
    res["nginx_rc"] = rc
    res["log"] = ngx.log_lines()
    return res


# ---------------------------------------------------------------- report

def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def mb(kb):
    return kb / 1024.0


def srow(label, m, p):
    print("  %-36s %12s %12s" % (label, m, p))


def row(label, m, p, spec, unit="", target=None):
    r = ratio(m, p)
    line = "  %-36s %12s %12s %8s" % (label, fmt(m, spec) + unit, fmt(p, spec) + unit,
                                      fmt(r, ".2f") + "x" if r is not None else "-")
    if target:
        line += "   " + target
    print(line)


def verdict(ok):
    return "MET" if ok else "NOT MET"


def machine_line(m, p):
    n = os.cpu_count()
    print("  machine (module / proxy_pass): wall %.1fs / %.1fs; CPU-s nginx worker %.2f / %.2f, "
          "mock LLM %.2f / %.2f," % (m["wall"], p["wall"], m["cpu"], p["cpu"], m["mock_cpu"], p["mock_cpu"]))
    others = [max(0.0, r["machine_cpu"] - r["cpu"] - r["mock_cpu"] - r["client_cpu"]) for r in (m, p)]
    print("    load client %.2f / %.2f, other processes %.2f / %.2f; all %d CPUs %.0f%% / %.0f%% busy%s"
          % (m["client_cpu"], p["client_cpu"], others[0], others[1], n,
             100 * m["machine_cpu"] / (m["span"] * n), 100 * p["machine_cpu"] / (p["span"] * n),
             "" if not (m["steal"] or p["steal"]) else
             ", steal %.2f / %.2f" % (m["steal"], p["steal"])))
    busy = [o / (r["span"] * n) for o, r in zip(others, (m, p))]
    if max(busy) > 0.10:
        print("    NOTE: other processes on the machine took %.0f%% / %.0f%% of the CPUs during the "
              "measurement;" % (100 * busy[0], 100 * busy[1]))
        print("    the figures are noisier than on an idle machine (run again when it is idle)")


def report(args, A, B, total_wall):
    nginx_v = subprocess.run([args.nginx, "-v"], stderr=subprocess.PIPE, text=True).stderr.strip()
    print()
    print("ngx_http_support_agent_module vs plain proxy_pass (%s, %d nginx worker each side)"
          % (nginx_v.replace("nginx version: ", ""), args.workers))
    print("HTTP/1.1 with a new connection per turn (Connection: close) on both sides; access_log off.")
    print("Each side: its own nginx and its own fresh mock LLM (t/llm_server.py), one side after the other.")
    print("%d CPUs shared by nginx, the mock LLM and the load client (%s)."
          % (os.cpu_count(), "nginx pinned to CPU %s, the Python processes to %s"
             % (sorted(PIN["nginx"]), sorted(PIN["py"])) if PIN else "not pinned"))
    print("nginx CPU = utime+stime of the worker processes (/proc/PID/stat); RSS summed over workers.")
    print()
    hdr = "  %-36s %12s %12s %8s   %s" % ("", "module", "proxy_pass", "ratio", "target")
    if A:
        m, p = A["module"], A["proxy"]
        print("(a) fast LLM, 64 tokens/reply, %d concurrent clients, %d turns in %d rounds "
              "(after %d warm-up turns)" % (args.concurrency, args.turns, args.rounds, args.warmup))
        print(hdr)
        t = m["cpu_per_1000"] is not None and m["cpu_per_1000"] <= 0.5
        row("nginx CPU-s per 1000 turns", m["cpu_per_1000"], p["cpu_per_1000"], ".3f", "",
            "module <= 0.500: " + verdict(t))
        srow("  rounds (min .. max)",
             "%.3f..%.3f" % (min(m["rounds_cpu_per_1000"]), max(m["rounds_cpu_per_1000"])),
             "%.3f..%.3f" % (min(p["rounds_cpu_per_1000"]), max(p["rounds_cpu_per_1000"])))
        row("worker peak RSS (VmHWM), MB", mb(m["hwm"]), mb(p["hwm"]), ".1f")
        per = args.turns // args.rounds
        for i in range(len(m["rss_steps"])):
            lab = "warm-up" if i == 0 else "%d turns" % (per * i if i < args.rounds else args.turns)
            row("worker RSS after %s, MB" % lab, mb(m["rss_steps"][i]), mb(p["rss_steps"][i]), ".1f")
            srow("  anon / file, MB",
                 "%.1f / %.1f" % (mb(m["anon_steps"][i]), mb(m["file_steps"][i])),
                 "%.1f / %.1f" % (mb(p["anon_steps"][i]), mb(p["file_steps"][i])))
        row("idle upstream connections at end", m["upstream_conns"], p["upstream_conns"], "d")
        row("turns/s (client view)", m["tps"], p["tps"], ".0f")
        row("turn duration p50 (median round), ms", m["dur_p50"] * 1000, p["dur_p50"] * 1000, ".1f")
        srow("turns ok / failed", "%d / %d" % (m["ok"], m["failed"]), "%d / %d" % (p["ok"], p["failed"]))
        machine_line(m, p)
        print()
    if B:
        m, p = B["module"], B["proxy"]
        print("(b) %d concurrent slow streams (first token after 500 ms, then 50 ms/token, 64 tokens;"
              % args.streams)
        print("    connections opened evenly over %gs; first token = first event: delta / first non-empty"
              % args.ramp)
        print("    \"content\", timed from connect())")
        print(hdr)
        r99 = ratio(m["ttft_p99"], p["ttft_p99"])
        rr = ratio(m["hwm"], p["hwm"])
        ms = lambda v: None if v is None else v * 1000
        row("time to first token p50, ms", ms(m["ttft_p50"]), ms(p["ttft_p50"]), ".1f")
        row("time to first token p90, ms", ms(m["ttft_p90"]), ms(p["ttft_p90"]), ".1f")
        row("time to first token p99, ms", ms(m["ttft_p99"]), ms(p["ttft_p99"]), ".1f", "",
            "<= 1.10x: " + verdict(r99 is not None and r99 <= 1.1))
        row("time to first token max, ms", ms(m["ttft_max"]), ms(p["ttft_max"]), ".1f")
        row("worker peak RSS (VmHWM), MB", mb(m["hwm"]), mb(p["hwm"]), ".1f", "",
            "<= 2.00x: " + verdict(rr is not None and rr <= 2.0))
        row("worker RSS before, MB", mb(m["rss_start"]), mb(p["rss_start"]), ".1f")
        row("worker RSS after the streams, MB", mb(m["rss_end"]), mb(p["rss_end"]), ".1f")
        srow("  anon / file, MB", "%.1f / %.1f" % (mb(m["anon_end"]), mb(m["file_end"])),
             "%.1f / %.1f" % (mb(p["anon_end"]), mb(p["file_end"])))
        row("stream duration p50, ms", ms(m["dur_p50"]), ms(p["dur_p50"]), ".0f")
        row("stream duration p99, ms", ms(m["dur_p99"]), ms(p["dur_p99"]), ".0f")
        row("nginx CPU-s (all streams)", m["cpu"], p["cpu"], ".2f")
        row("peak concurrent streams (client)", m["max_inflight"], p["max_inflight"], "d")
        row("idle upstream connections at end", m["upstream_conns"], p["upstream_conns"], "d")
        srow("streams ok / failed", "%d / %d" % (m["ok"], m["failed"]), "%d / %d" % (p["ok"], p["failed"]))
        machine_line(m, p)
        if "r2" in m and "r2" in p:
            m2, p2 = m["r2"], p["r2"]
            print("  second round of %d streams on the same nginx (memory growth check):" % args.streams)
            row("  worker RSS after round 2, MB", mb(m2["rss_end"]), mb(p2["rss_end"]), ".1f")
            srow("    anon / file, MB", "%.1f / %.1f" % (mb(m2["anon_end"]), mb(m2["file_end"])),
                 "%.1f / %.1f" % (mb(p2["anon_end"]), mb(p2["file_end"])))
            srow("  growth round 1 -> 2, MB", "%+.1f" % mb(m2["rss_end"] - m["rss_end"]),
                 "%+.1f" % mb(p2["rss_end"] - p["rss_end"]))
            row("  worker peak RSS after round 2, MB", mb(m2["hwm"]), mb(p2["hwm"]), ".1f")
            row("  time to first token p99, ms", ms(m2["ttft_p99"]), ms(p2["ttft_p99"]), ".1f")
            srow("  streams ok / failed", "%d / %d" % (m2["ok"], m2["failed"]),
                 "%d / %d" % (p2["ok"], p2["failed"]))
        print()

    problems = []
    for tag, S in (("a", A), ("b", B)):
        if not S:
            continue
        for side in ("module", "proxy"):
            r = S[side]
            name = "(%s) %s" % (tag, "proxy_pass" if side == "proxy" else "module")
            if r.get("warmup_failed"):
                problems.append("%s: %d warm-up turns failed: %s" % (name, r["warmup_failed"], r["warmup_failures"]))
            for lab, x in (("", r), (" (round 2)", r.get("r2"))):
                if x and x["failed"]:
                    problems.append("%s%s: %d turns failed:" % (name, lab, x["failed"]))
                    for k, v in x["failures"][:10]:
                        problems.append("      %5d x %s" % (v, k))
            if r["workers_end"] != r["workers"]:
                problems.append("%s: worker pids changed during the run %s -> %s (a worker died?)"
                                % (name, r["workers"], r["workers_end"]))
            if not r.get("master_alive", True):
                problems.append("%s: the nginx master had exited before the end of the run" % name)
            if r["nginx_rc"] not in (0, None):
                problems.append("%s: nginx master exited with status %s" % (name, r["nginx_rc"]))
            if r["log"]:
                problems.append("%s: %d warn-or-worse lines in the error log, e.g.:" % (name, len(r["log"])))
                seen = set()
                for l in r["log"]:
                    key = re.sub(r"^\S+ \S+ |\d+", "", l)
                    if key in seen:
                        continue
                    seen.add(key)
                    problems.append("      " + l)
                    if len(seen) >= 8:
                        break
    print("Problems seen: %s" % ("none (every turn complete with the expected text; no warn/error/"
                                  "alert lines in the error logs; no worker restarts)" if not problems else ""))
    for x in problems:
        print("  " + x)
    print()
    print("bench: done in %.0fs; logs, configurations and results.json in %s" % (total_wall, args.rundir))


def main():
    p = argparse.ArgumentParser(description="module vs proxy_pass benchmark")
    p.add_argument("nginx")
    p.add_argument("module")
    p.add_argument("--turns", type=int, default=int(os.environ.get("BENCH_TURNS", 3000)))
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--warmup", type=int, default=64)
    p.add_argument("--streams", type=int, default=int(os.environ.get("BENCH_STREAMS", 1000)))
    p.add_argument("--ramp", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="(a) is measured in this many rounds")
    p.add_argument("--no-second-round", dest="second_round", action="store_false",
                   help="(b): skip the second round of streams on the same nginx")
    p.add_argument("--only", choices=("a", "b"))
    p.add_argument("--keep", action="store_true", help="keep the stores and nginx temp dirs too")
    p.add_argument("--pin", action="store_true",
                   help="nginx on the last CPU, mock LLM and load client on the others")
    p.add_argument("--log-level", default="notice", help="nginx error_log level (default notice)")
    p.add_argument("--tool-path", action="store_true",
                   help="(a) with a tool call: the LLM asks for lookup_order, the module GETs the "
                        "order from t/shop_server.py, then the LLM answers")
    p.add_argument("--directive", action="append", default=[],
                   help="one more directive in the module's /chat location (without ';'), "
                        "e.g. --directive 'support_agent_handoff_url http://127.0.0.1:9/t'")
    args = p.parse_args()
    DIRECTIVES[:] = args.directive
    shop = None
    LOG_LEVEL[0] = args.log_level
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            PIN["nginx"], PIN["py"] = {cpus[-1]}, set(cpus[:-1])
    args.nginx = os.path.abspath(args.nginx)
    args.module = os.path.abspath(args.module)
    for f in (args.nginx, args.module):
        if not os.path.exists(f):
            print("bench: %s not found" % f)
            return 1
    args.rundir = tempfile.mkdtemp(prefix="sa-bench.")
    os.chmod(args.rundir, 0o755)
    t0 = time.monotonic()
    A = B = None
    try:
        if args.tool_path:
            # the demo shop's API stands in for the company's; one for the whole run
            shop = Mock(args.rundir, "shop", script="shop_server.py")
            DIRECTIVES.append("support_agent_orders_url http://127.0.0.1:%d/api" % shop.port)
            DIRECTIVES.append("support_agent_identity " + TOOL_CUSTOMER)
        if args.only in (None, "a"):
            A = {}
            for side in ("module", "proxy"):
                print("bench: (a) %s ..." % side, flush=True)
                A[side] = scenario_a(args, side, args.rundir)
        if args.only in (None, "b"):
            B = {}
            for side in ("module", "proxy"):
                print("bench: (b) %s ..." % side, flush=True)
                B[side] = scenario_b(args, side, args.rundir)
        report(args, A, B, time.monotonic() - t0)
        with open(os.path.join(args.rundir, "results.json"), "w") as f:
            json.dump({"a": A, "b": B}, f, indent=1)
    finally:
        if shop is not None:
            shop.stop()
        if not args.keep:
            # the stores (LMDB files) and nginx temp dirs are not worth keeping; logs are
            for name in os.listdir(args.rundir):
                for sub in ("store", "tmp"):
                    shutil.rmtree(os.path.join(args.rundir, name, sub), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
