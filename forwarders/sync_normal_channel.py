"""`sync-normal-channel`: blocking reader -> bounded queue -> writer."""

from __future__ import annotations

import sys

from forwarders.syncbase import SyncVariant

VARIANT = SyncVariant(
    "sync-normal-channel", "blocking reader -> bounded queue -> writer", gso=False, channel=True
)
build_parser = VARIANT.build_parser
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
