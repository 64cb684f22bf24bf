"""`sync-normal-channel`: blocking reader -> bounded queue -> writer."""

from __future__ import annotations

import sys

from forwarders.syncbase import SyncVariant

VARIANT = SyncVariant("sync-normal-channel", __doc__ or "", gso=False, channel=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
