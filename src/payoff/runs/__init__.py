"""The run harness below every trainer (`rl`, `rm`, `prm`, `dpo`): what a training run needs
besides its own loop.

- `config`: TOML config with ``--set`` overrides, the tables trainers share (`RunConfig`,
  `OptimConfig`, `LogConfig`, `DataConfig`, `LoraConfig`);
- `data`: the training and held-out split, the seeded order of every step's examples;
- `run`: `Run`, the run folder, resume, metrics, progress bar, summary and peak memory;
- `checkpoint`: atomic checkpoints and the newest one to resume from;
- `metrics`: metrics.jsonl, TensorBoard scalars, curves.png;
- `optim`: the fused AdamW, the learning-rate schedule, dropout off;
- `processes`: one process or several under ``accelerate launch``.

No trainer imports another trainer: what two of them share lives here or in a lower part
(`payoff.models`, `payoff.tasks`).
"""
