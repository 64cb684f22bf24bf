"""`async-normal-channel`: trio reader -> memory channel -> writer."""

from __future__ import annotations

import sys

from forwarders.asyncbase import AsyncVariant

VARIANT = AsyncVariant("async-normal-channel", __doc__ or "", gso=False, channel=True)
main = VARIANT.main

if __name__ == "__main__":
    sys.exit(main())
