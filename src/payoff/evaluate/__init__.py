"""Evaluate any reward the way the field does: RewardBench v1/v2, RM-Bench, RewardMATH-style
one-vs-many, ProcessBench F1, plain pairs (`suites`, `processbench`, run by `runner`), bias views
(`bias`), a procedural benchmark with known truth (`bench`), offline rescoring (`rescore`) and
best-of-n over-optimisation curves (`overoptimization`)."""
