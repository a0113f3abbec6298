"""Adapters that hand a payoff reward to other trainers: `trl`, `verl`, `openrlhf`, `verifiers`.
(NeMo-Gym speaks to `payoff serve`, see `payoff.serve.nemo_gym`; OpenAI grader configs are the
reward `openai_grader`, see `payoff.graders`.)"""
