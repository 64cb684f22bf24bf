"""`uring-gso`: io_uring rings, IFF_VNET_HDR + TSO/USO offload."""

from __future__ import annotations

import sys

from forwarders.uringbase import UringVariant

VARIANT = UringVariant("uring-gso", __doc__ or "", gso=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
