"""Forwarder variants: each module opens two TUN devices and shuttles packets both ways.

A variant is one module that declares ``VARIANT`` (a :class:`forwarders.variant.Variant`:
its name, summary, features and options) and runs as ``python -m forwarders.<module>``;
the harness's registry, :mod:`tunbench.cell.variants`, finds every such module here.
"""
