"""tunbench: benchmark TUN forwarders in real network namespaces with real iperf3."""

__version__ = "0.1.0"
