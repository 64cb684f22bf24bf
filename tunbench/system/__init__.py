"""What the harness needs from the operating system, for every floor above it: child
processes and their one stop ladder (:mod:`.procs`), the signal policy (:mod:`.signals`),
the run lock and run-state files (:mod:`.runstate`), psutil sampling of CPU and memory
(:mod:`.sampler`) and entering a network namespace before exec (:mod:`.nsexec`)."""
