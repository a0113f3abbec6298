"""Composition and shaping of rewards: `Rubric` (weighted, gated, combined, normalised terms),
TOML configs, and the transforms as pure functions (`payoff.compose.transforms`)."""

from payoff.compose.config import RubricConfigError, load_rubric, rubric_from_dict
from payoff.compose.rubric import Gate, Rubric, Term
from payoff.compose.shapers import CalibrationShaper, HapoShaper, LaserDShaper
from payoff.compose.wrappers import fallback, noisy_corrected, par_reward, step_shaped

__all__ = [
    "CalibrationShaper", "Gate", "HapoShaper", "LaserDShaper", "Rubric", "RubricConfigError", "Term",
    "fallback", "load_rubric", "noisy_corrected", "par_reward", "rubric_from_dict", "step_shaped",
]
