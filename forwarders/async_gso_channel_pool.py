"""`async-gso-channel-pool`: as async-gso-channel, preallocated buffers (readv)."""

from __future__ import annotations

import sys

from forwarders.asyncbase import AsyncVariant

VARIANT = AsyncVariant("async-gso-channel-pool", __doc__ or "", gso=True, pool=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
