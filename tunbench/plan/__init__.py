"""What runs many cells or judges them together: the interleaved rounds of a matrix
(:mod:`.matrix`), a sweep of one option over values (:mod:`.sweep`), the byte-for-byte
correctness check (:mod:`.verify`) and the verdicts between two result sets
(:mod:`.compare`)."""
