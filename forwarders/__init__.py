"""Forwarder variants: each module opens two TUN devices and shuttles packets both ways.

Every module exposes ``build_parser()`` (its arguments, for validation by the harness) and
``main(argv)``; :mod:`tunbench.variants` is the registry that names them.
"""
