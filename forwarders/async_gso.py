"""`async-gso`: trio, IFF_VNET_HDR + TSO/USO offload."""

from __future__ import annotations

import sys

from forwarders.asyncbase import AsyncVariant

VARIANT = AsyncVariant("async-gso", __doc__ or "", gso=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
