"""A deliberately faulty forwarder for the reliability and verify tests (run as an
external command): ``python fault_forwarder.py MODE --iface1 .. --ip1 .. --iface2 .. --ip2 ..``

Modes:
  corrupt     swap two 16-bit words in UDP payloads (checksums stay valid, data does not)
  drop        drop every 4th UDP datagram (ping and TCP pass whole: the loss must be found
              where nothing retransmits it, and TCP through a lossy path only costs time)
  crash       forward for ~2 s, then print an error and exit 3
  blackhole   read everything, forward nothing (iperf3 never connects)
  nodevices   never create the TUN devices
  pace        forward everything, one packet per --delay-us per direction on average: a
              forwarder with a known, load-independent ceiling (the A/B and history tests
              slow it). A token bucket 50 ms deep: a stall of the forwarder (the hypervisor
              or another process taking its CPU) is caught up from the TUN queue, not lost;
              at 2 ms a run under two busy loops lost 14 % and 200 -> 228 us came out -9 %
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time

from tunio.tun import MAX_FRAME, open_tun


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["corrupt", "drop", "crash", "blackhole", "nodevices", "pace"])
    p.add_argument("--delay-us", type=float, default=0.0)
    p.add_argument("--iface1", default="tun11")
    p.add_argument("--ip1")
    p.add_argument("--iface2", default="tun22")
    p.add_argument("--ip2")
    a = p.parse_args()
    if a.mode == "nodevices":
        time.sleep(60)
        return 0
    d1 = open_tun(a.iface1)
    d2 = open_tun(a.iface2)

    delay = a.delay_us / 1e6
    credit = 0.05  # the bucket's depth, s: how far a late packet may catch up

    def pump(src: int, dst: int) -> None:
        n = 0
        due = time.monotonic()
        while True:
            try:
                pkt = bytearray(os.read(src, MAX_FRAME))
            except OSError:
                return
            udp = len(pkt) > 9 and pkt[0] >> 4 == 4 and pkt[9] == 17
            n += udp
            if a.mode == "blackhole" or (a.mode == "drop" and udp and n % 4 == 0):
                continue
            if a.mode == "corrupt" and udp and len(pkt) > 40:
                off = (pkt[0] & 0x0F) * 4 + 8 + 8  # past the UDP header and the seq number
                pkt[off : off + 2], pkt[off + 2 : off + 4] = (
                    pkt[off + 2 : off + 4],
                    pkt[off : off + 2],
                )
            with contextlib.suppress(OSError):
                os.write(dst, pkt)
            if delay:  # the next packet is due `delay` after this one's slot
                now = time.monotonic()
                due = max(due + delay, now - credit)
                if due > now:
                    time.sleep(due - now)

    for s, d in ((d1.fd, d2.fd), (d2.fd, d1.fd)):
        threading.Thread(target=pump, args=(s, d), daemon=True).start()
    if a.mode == "crash":
        time.sleep(2.0)
        print(f"fault_forwarder: simulated crash at {time.time():.3f}", file=sys.stderr, flush=True)
        return 3
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
