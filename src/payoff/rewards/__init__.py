"""The built-in reward library. Importing this package registers every built-in reward by name."""

from payoff.rewards.choice import confidence_brier, multiple_choice, repetition_penalty
from payoff.rewards.code import code
from payoff.rewards.code_text import patch_similarity, tool_call
from payoff.rewards.episode import episode_cost, gated_turns, tool_call_validity, try_again
from payoff.rewards.format import json_schema, regex_match, tag_count, tag_format
from payoff.rewards.group import empo, majority_vote
from payoff.rewards.length import budget_length, cosine_length, grpo_lambda, laser, overlong_penalty
from payoff.rewards.math import math_reward
from payoff.rewards.similarity import bleu, chrf, embedding_cosine, rouge
from payoff.rewards.sql import sql
from payoff.rewards.text import exact_match, think_format

__all__ = [
    "bleu", "budget_length", "episode_cost", "gated_turns", "tool_call_validity", "try_again",
    "chrf", "code", "sql", "embedding_cosine", "rouge", "confidence_brier", "cosine_length", "empo",
    "exact_match", "grpo_lambda", "json_schema",
    "laser", "majority_vote", "math_reward", "multiple_choice", "overlong_penalty", "patch_similarity",
    "regex_match", "repetition_penalty", "tag_count", "tag_format", "think_format", "tool_call",
]
