"""`uring-normal`: io_uring, a ring per direction, batched reads and writes."""

from __future__ import annotations

import sys

from forwarders.uringbase import UringVariant

VARIANT = UringVariant("uring-normal", __doc__ or "", gso=False)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
