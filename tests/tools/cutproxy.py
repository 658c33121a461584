#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""cutproxy: a TCP proxy that cuts connections at chosen bytes, to test
dt-migrate's reconnection.

Usage: cutproxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT [CUT ...] [rate:BYTES]

Forwards every connection accepted on 127.0.0.1:LISTEN_PORT to the target.
Connections are numbered from 0 in the order they are accepted (dt-migrate
opens its control connection, then its data connection; a reconnection
opens two more). A CUT is N:BYTES: once connection N has carried BYTES
bytes from the client to the target, the proxy resets both of its sides
(SO_LINGER 0), without forwarding byte BYTES + 1; N:dn:BYTES counts the
bytes from the target to the client instead. A cut of "refuse" as N
stops accepting after the first cut (the reconnection timeout test).
"rate:BYTES" paces each connection's bytes from the client to BYTES a
second, with no burst: a slow link that does not depend on how fast the
machine is (the settling test).

Prints one line per event to stdout: "conn N open", "conn N cut at B",
"conn N closed after B" (bytes from the client, at a clean end).
"""
import selectors, socket, struct, sys, threading, time

port = int(sys.argv[1])
thost, tport = sys.argv[2].rsplit(":", 1)
cuts, refuse, rate = {}, False, None
for c in sys.argv[3:]:
    if c == "refuse":
        refuse = True
        continue
    if c.startswith("rate:"):
        rate = int(c[5:])
        continue
    f = c.split(":")
    cuts[int(f[0])] = (f[1] == "dn", int(f[-1]))
cut_seen = threading.Event()


def say(msg):
    print(msg, flush=True)


def reset(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass


def pipe(n, client, target):
    sel = selectors.DefaultSelector()
    sel.register(client, selectors.EVENT_READ, target)
    sel.register(target, selectors.EVENT_READ, client)
    up, down = 0, 0
    dn, limit = cuts.get(n, (False, None))
    due = 0.0  # rate: when the bytes forwarded so far are due to have gone
    try:
        while True:
            for key, _ in sel.select():
                src, dst = key.fileobj, key.data
                want = 16384 if rate else 65536
                if limit is not None and (src is target) == dn:
                    done = down if dn else up
                    want = min(want, limit - done)
                    if want == 0:
                        say(f"conn {n} cut at {done}{' down' if dn else ''}")
                        cut_seen.set()
                        reset(client)
                        reset(target)
                        return
                data = src.recv(want)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    sel.unregister(src)
                    if not sel.get_map():
                        say(f"conn {n} closed after {up}")
                        return
                    continue
                if src is client:
                    up += len(data)
                    if rate:
                        due = max(due, time.monotonic()) + len(data) / rate
                        time.sleep(max(0.0, due - time.monotonic()))
                else:
                    down += len(data)
                dst.sendall(data)
    except OSError:
        reset(client)
        reset(target)


lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", port))
lsock.listen(8)
say("listening")
n = 0
while True:
    if refuse and cut_seen.is_set():
        lsock.close()
        say("refusing")
        cut_seen.wait()
        threading.Event().wait()
    lsock.settimeout(0.2)
    try:
        client, _ = lsock.accept()
    except socket.timeout:
        continue
    client.settimeout(None)
    target = socket.create_connection((thost, int(tport)))
    say(f"conn {n} open")
    threading.Thread(target=pipe, args=(n, client, target), daemon=True).start()
    n += 1
