"""Composition and shaping of rewards: `Rubric` (weighted, gated, combined, normalised terms),
TOML configs, and the transforms as pure functions (`payoff.compose.transforms`)."""

from payoff.compose.config import RubricConfigError, load_rubric, rubric_from_dict
from payoff.compose.rubric import Gate, Rubric, Term

__all__ = ["Gate", "Rubric", "RubricConfigError", "Term", "load_rubric", "rubric_from_dict"]
