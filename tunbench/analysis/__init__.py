"""Pure functions over result documents: the schema and reading files back (:mod:`.results`),
each workload's primary figure (:mod:`.primary`), statistics and verdicts (:mod:`.stats`),
what limited a run (:mod:`.boundby`) and the forwarder's batching metrics
(:mod:`.fwdmetrics`). Nothing here starts a process or needs root."""
