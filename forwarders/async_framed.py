"""`async-framed`: trio, the device as a framed packet stream."""

from __future__ import annotations

import sys

from forwarders.asyncbase import AsyncVariant

VARIANT = AsyncVariant("async-framed", __doc__ or "", gso=False, framed=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
