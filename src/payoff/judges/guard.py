"""The master-key guard: reject content-free answers before a judge is asked.

"One Token to Fool LLM-as-a-Judge" (Zhao et al. 2025) found that answers such as ":", "." or
"Thought process:" make reference-based judges say "correct" most of the time. A judge cannot be
trusted to notice, so a cheap check runs first: an answer is content-free when, after removing
reasoning openers and boilerplate (in several languages), markdown, punctuation and whitespace,
nothing is left, or only filler words are ("let us solve this step by step"). Such an answer gets
``content_free`` as its reason and the judge is not called.
"""

from __future__ import annotations

import re
import unicodedata

_OPENERS = [
    r"thought process", r"let'?s (?:solve|think|work through|break) (?:this|it)(?: problem)?(?: down)?(?: step by step)?",
    r"let me (?:think|solve|work)(?: about)?(?: this| it)?(?: step by step)?", r"step[- ]by[- ]step", r"solution", r"answer",
    r"final answer", r"reasoning", r"explanation", r"analysis", r"(?:step|part) ?\d*", r"first(?:ly)?", r"okay", r"ok", r"so",
    r"well", r"hmm+", r"sure", r"here(?:'s| is) (?:the|my) (?:solution|answer|reasoning)", r"to solve this(?: problem)?",
    r"we need to (?:solve|find|compute)(?: this| it)?", r"the answer is",
    "解", "解答", "答案", "思考过程", "思路", "分析", "かいせつ", "解説", "答え", "考え方", "풀이", "정답", "solución", "respuesta", "lösung",
]
_OPENER = re.compile(r"(?:" + "|".join(_OPENERS) + r")", re.IGNORECASE)
_FILLER = {"the", "a", "an", "is", "are", "this", "that", "it", "let", "us", "we", "i", "me", "my", "to", "of", "and", "by", "step",
           "problem", "question", "solve", "think", "about", "will", "can", "now", "then", "here", "following", "be", "as"}


def content_free(answer: str) -> str | None:
    """Why ``answer`` holds no content a judge could credit (None when it has some)."""
    text = unicodedata.normalize("NFKC", answer or "")
    if not text.strip():
        return "empty answer"
    stripped = _OPENER.sub(" ", text)
    stripped = re.sub(r"[*_#>`~|\\-]+", " ", stripped)  # markdown
    words = re.findall(r"\w+", stripped)
    if not words:
        return "punctuation or boilerplate only"
    if all(w.lower() in _FILLER for w in words):
        return "only a reasoning opener and filler words"
    return None
