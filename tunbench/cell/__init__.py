"""One cell's life: what it runs (:mod:`.variants`, :mod:`.options`), its namespaces and
links (:mod:`.topology`), bringing it up, measuring and tearing it down (:mod:`.session`),
its result document (:mod:`.record`, with host facts from :mod:`.metadata`), profiling
(:mod:`.profile` for py-spy, :mod:`.perf`) and cleaning up after a killed run
(:mod:`.cleanup`)."""
