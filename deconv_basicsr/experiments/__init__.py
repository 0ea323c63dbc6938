"""Research code: the study of the paper's claims (``study``), its design, runner, curves and report, and
step timing shared with the benchmarks. Scripts in ``scripts/`` parse arguments and call these."""
