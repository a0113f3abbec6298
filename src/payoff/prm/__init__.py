"""Process reward models: one step splitter (`steps`), step-label data (`data`), a per-step head
(`model`), training (`train`), automatic Math-Shepherd / PAV labels (`label`), the `prm` reward
(`reward`), CHAMP's human labels (`champ`) and a procedural step benchmark (`bench`).
Process-supervised advantages are `payoff.rl.token_advantages`; ProcessBench scoring is
`payoff.evaluate.processbench`."""
