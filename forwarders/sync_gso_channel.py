"""`sync-gso-channel`: vnet/offload reader -> bounded queue -> writer."""

from __future__ import annotations

import sys

from forwarders.syncbase import SyncVariant

VARIANT = SyncVariant("sync-gso-channel", __doc__ or "", gso=True, channel=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
