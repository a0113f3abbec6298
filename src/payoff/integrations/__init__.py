"""Adapters that hand a payoff reward to other trainers: `trl`, `verl`, `openrlhf`, `verifiers`;
and a payoff environment to their multi-turn loops: `trl_env` (TRL's ``environment_factory``),
`verl_tools` (verl's agent-loop tools), `verifiers_env` (a verifiers toolset), built on `tools`.
(NeMo-Gym speaks to `payoff serve`, see `payoff.serve.nemo_gym`; OpenAI grader configs are the
reward `openai_grader`, see `payoff.graders`.)"""
