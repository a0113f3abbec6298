"""Composition of rewards. For now: a weighted sum of terms (`Rubric`), used by `payoff score`
with several ``--reward NAME:WEIGHT``; gates and transforms follow (issue 5)."""

from payoff.compose.rubric import Rubric, Term

__all__ = ["Rubric", "Term"]
