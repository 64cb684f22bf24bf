"""Everything that renders results for people: the summary table (:mod:`.tables`, with its
display strings in :mod:`.text` and warnings in :mod:`.notes`), the offline HTML pages
(:mod:`.htmlpage` scaffolding, :mod:`.reportpage`, :mod:`.comparepage`, :mod:`.sweeppage`
with :mod:`.sweeptable`), their charts (:mod:`.figures`, :mod:`.rowcharts`, the static
:mod:`.chart`) and perf's flamegraph SVG (:mod:`.flamesvg`). The page's script and style are
in ``assets/``."""
