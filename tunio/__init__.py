"""tunio: the TUN device and offload layer that forwarders are built on.

Opening /dev/net/tun with its ioctls (:mod:`tunio.tun`), the virtio_net_hdr codec and
checksum arithmetic, splitting GSO super-packets into plain IP packets and coalescing
them back (pure code, no I/O), and the argparse value types a forwarder's command line
uses. A forwarder is a standalone program: it imports this package and never the
``tunbench`` harness; the harness imports it too (ping checksums, option types).
"""
