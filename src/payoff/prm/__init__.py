"""Process reward models: one step splitter (`steps`), step-label data (`data`), a per-step head
(`model`), training (`train`), automatic Math-Shepherd / PAV labels (`label`), the `prm` reward
(`reward`), process-supervised advantages (`advantages`) and a procedural step benchmark
(`bench`). ProcessBench scoring is `payoff.evaluate.processbench`."""
