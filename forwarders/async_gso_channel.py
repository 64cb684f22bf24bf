"""`async-gso-channel`: trio vnet reader -> memory channel -> writer."""

from __future__ import annotations

import sys

from forwarders.asyncbase import AsyncVariant

VARIANT = AsyncVariant("async-gso-channel", __doc__ or "", gso=True, channel=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
