"""`async-gso-framed`: framed stream whose codec owns the vnet header."""

from __future__ import annotations

import sys

from forwarders.asyncbase import AsyncVariant

VARIANT = AsyncVariant("async-gso-framed", __doc__ or "", gso=True, framed=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
