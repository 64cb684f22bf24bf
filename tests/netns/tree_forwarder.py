"""An external forwarder that is a process tree, as VPN pairs are: a launcher opens both TUN
devices and starts two daemons, one per direction, then waits.

    python tree_forwarder.py --iface1 .. --ip1 .. --iface2 .. --ip2 ..

The daemons behave the way real ones make a harness's life hard: the 1to2 one ignores
SIGINT (as a non-interactive shell's background jobs do), the 2to1 one has its own session
and process group (as a daemon that calls setsid does), so a signal to the launcher's group
never reaches it. The launcher dies of the first SIGINT without stopping either. Each daemon
puts ``tree-daemon`` in its command line, so a test can look for survivors.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from tunio.tun import MAX_FRAME, open_tun


def pump(src: int, dst: int) -> None:
    while True:
        try:
            pkt = os.read(src, MAX_FRAME)
        except OSError:
            return
        try:
            os.write(dst, pkt)
        except OSError:
            continue


def main() -> int:
    if sys.argv[1] == "tree-daemon":
        direction, src, dst = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        if direction == "1to2":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        pump(src, dst)
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("--iface1", default="tun11")
    p.add_argument("--ip1")
    p.add_argument("--iface2", default="tun22")
    p.add_argument("--ip2")
    a = p.parse_args()
    d1, d2 = open_tun(a.iface1), open_tun(a.iface2)
    for direction, src, dst in (("1to2", d1.fd, d2.fd), ("2to1", d2.fd, d1.fd)):
        subprocess.Popen(
            [sys.executable, __file__, "tree-daemon", direction, str(src), str(dst)],
            pass_fds=(src, dst),
            start_new_session=direction == "2to1",
        )
    while True:  # SIGINT: KeyboardInterrupt, and the daemons are left to themselves
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
