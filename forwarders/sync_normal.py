"""`sync-normal`: blocking read/write, one thread per direction."""

from __future__ import annotations

import sys

from forwarders.syncbase import SyncVariant

VARIANT = SyncVariant("sync-normal", __doc__ or "", gso=False)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
