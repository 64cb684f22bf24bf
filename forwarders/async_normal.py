"""`async-normal`: trio, non-blocking fds, one task per direction."""

from __future__ import annotations

import sys

from forwarders.asyncbase import AsyncVariant

VARIANT = AsyncVariant("async-normal", __doc__ or "", gso=False)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
