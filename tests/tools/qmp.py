#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""qmp.py SOCKET COMMAND [JSON-ARGUMENTS]: run one QMP command on a QEMU's
QMP socket and print its "return" as JSON (exit 1 with QEMU's error on
stderr if it refused). For the tests; dt-migrate has its own client."""
import json
import socket
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(sys.argv[1])
    f = s.makefile('rw')

    def reply():
        while True:
            line = f.readline()
            if not line:
                sys.exit('qmp.py: QEMU closed the connection')
            m = json.loads(line)
            if 'event' not in m:
                return m

    reply()  # the greeting
    for cmd, args in (('qmp_capabilities', {}),
                      (sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) == 4 else {})):
        f.write(json.dumps({'execute': cmd, 'arguments': args}) + '\n')
        f.flush()
        m = reply()
        if 'error' in m:
            sys.exit('qmp.py: %s: %s' % (cmd, m['error'].get('desc')))
    print(json.dumps(m['return']))


main()
