"""Reference rows: the VPN daemons Debian ships, each run as two instances joined over
127.0.0.1 by a small launcher (``python -m tunbench.peers.<daemon>``).

:mod:`tunbench.peers.base` is what every launcher shares; :mod:`tunbench.peers.registry`
lists them for :mod:`tunbench.cell.variants`. This package module imports nothing, so that
running a launcher with ``-m`` does not import it twice.
"""
