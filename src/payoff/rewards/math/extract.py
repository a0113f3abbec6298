"""Find the final answer in a completion (or a reference solution).

Rules, tried in order; the first that finds something decides (its name goes in ``info``):
``boxed`` (last ``\\boxed{}``/``\\fbox{}``, nested braces), ``answer_tag`` (``<answer>…</answer>``),
``gsm8k`` (``#### 42``), ``final_answer`` ("Final Answer: …", "the final answer is …"),
``answer_is`` ("the answer is …"), ``latex_math`` (the last ``$…$``, ``$$…$$``, ``\\[…\\]``,
``\\(…\\)``), ``last_number`` (optional fallback).

Several boxes: when the last boxes sit together (joined only by commas, "and", spaces), they form
one multi-part answer (``\\boxed{1}, \\boxed{2}`` means "1, 2"). Boxes separated by prose are
independent candidates: `candidates` returns all of them so the verifier can apply its policy on
answer spam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from payoff.rewards.math.closing import claim_sentence
from payoff.rewards.math.prose import COMPUTES, main_clause, main_verb, read_claim, sentences

MAX_ANSWER_CHARS = 1000

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_GSM8K = re.compile(r"####\s*([^\n]+)")
_FINAL = re.compile(r"final\s+answer\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
_ANSWER_IS = re.compile(r"(?:the|my)\s+answer\s+(?:is|:)\s*:?\s*", re.IGNORECASE)
# A final "Answer: ..." line, plain or bold (the DAPO and Minerva prompt formats).
_ANSWER_LINE = re.compile(r"^[ \t>#*_]*(?:final\s+)?answer[ \t*_]*:[ \t*_]*", re.IGNORECASE | re.MULTILINE)
_MATH_SPANS = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$(.+?)(?<!\\)\$", re.DOTALL)
_NUMBER = re.compile(r"(?<![A-Za-z\d.])-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:/\d+)?(?:\s?%)?")
_CONCLUSION = re.compile(r"(?:^|[.!?$]\s*|\n)(?:therefore|thus|hence|so)\b[,:]?([^.!?\n]*(?:\.\d[^.!?\n]*)*)", re.IGNORECASE)
# A completion that ends by listing candidates ("39, 40, 41 or 42.") is hedging, not answering.
_TRAILING_LIST = re.compile(r"((?:-?\d+(?:\.\d+)?\s*(?:,\s*or|,|or)\s*){2,}-?\d+(?:\.\d+)?)[\s.!]*$", re.IGNORECASE)
_JOIN_WORDS = re.compile(r"\b(?:and|or)\b", re.IGNORECASE)
_ALNUM = re.compile(r"[A-Za-z0-9]")
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_SHORT_WORDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2}(?![A-Za-z])")  # "It is 2.": two short words are prose too
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n\n|<\|")
# Tokens of a trailing math expression: a LaTeX command, a number, a word (prose), a single
# letter (a variable), an operator or bracket, spaces; anything else ends the expression.
_EXPR_TOKEN = re.compile(r"(\\[a-zA-Z]+|(?<![A-Za-z])(?:sqrt|floor|ceil)(?=\()|(?<![A-Za-z])pi(?![A-Za-z]))|((?<![A-Za-z])\d[\d,]*(?:\.\d+)?|\.\d+)"
                         r"|([A-Za-z\d]*[A-Za-z][A-Za-z\d]+|\d+[A-Za-z]{2,}[A-Za-z\d]*)|([A-Za-z])|([-+*/^_=(){}\[\]!|<>%])|(\s+)|(.)")
_TEXT_COMMANDS = {"\\text", "\\textbf", "\\mathrm", "\\mbox", "\\quad", "\\qquad", "\\textit"}
_LEADING_LETTERS = re.compile(r"^(?:[A-Za-z]\s+)+(?=[-\d\\.])")
_TRAILING_ARTICLE = re.compile(r"(?<=[\d}.])\s+[aAI]$")
_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: <<48+24=72>>


@dataclass(frozen=True)
class Extraction:
    text: str
    rule: str
    boxes: tuple[str, ...] = ()  # every box found, for the answer-spam policy
    group_size: int = 0  # how many of the last boxes were merged into the answer


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """Every ``\\boxed{...}`` / ``\\fbox{...}`` as (start, end, content), braces balanced.
    ``\\boxed 5`` (no braces) takes the next token."""
    found = []
    for match in _BOX.finditer(text):
        start = match.end()
        if start < len(text) and text[start] == "{":
            depth, i = 0, start
            while i < len(text):
                char = text[i]
                if char == "\\":
                    i += 2
                    continue
                if char == "{":
                    depth += 1
                elif char == "}":
                    depth -= 1
                    if depth == 0:
                        found.append((match.start(), i + 1, text[start + 1 : i]))
                        break
                i += 1
        else:
            token = re.match(r"[^\s$]+", text[start:])
            if token:
                found.append((match.start(), start + token.end(), token.group(0)))
    return found


# Words that make a later box a correction of an earlier one rather than a second part.
_CORRECTION = re.compile(r"\b(?:wrote|write|fix|fixing|fixed|correct(?:ing|ed|ion)?|actually|wait|mistake|instead|oops|sorry|"
                         r"wrong|rather|recheck|redo|revis\w*|error|no longer|not)\b", re.IGNORECASE)


def _joins(between: str) -> bool:
    """Boxes separated only by punctuation, or by a short phrase with "and"/"or"
    (``$x = \\boxed{2}$ and $x = \\boxed{3}$``), are one answer, unless the phrase corrects
    ("I first wrote ..., and then fixing the sign ..."): then the later box replaces the earlier."""
    cleaned = re.sub(r"\\[a-zA-Z]+|\$|\\[()\[\]]", " ", between)
    if not _ALNUM.search(cleaned):
        return True
    return len(cleaned.strip()) <= 40 and bool(_JOIN_WORDS.search(cleaned)) and not _CORRECTION.search(cleaned)


def _last_box_group(text: str, boxes: list[tuple[int, int, str]]) -> tuple[str, int]:
    """The last box, merged with the boxes right before it when only joiners separate them."""
    group = [boxes[-1]]
    for previous in reversed(boxes[:-1]):
        if not _joins(text[previous[1] : group[0][0]]):
            break
        group.insert(0, previous)
    return ", ".join(content for _, _, content in group), len(group)


def last_expression(text: str) -> str | None:
    """The last math expression written in `text`: a run of numbers, LaTeX commands with their
    brace groups, single-letter variables and operators that holds a digit or a command. In the
    last sentence that has one, the value after its last ``=`` wins ("9 + 6 = 15 liters of the
    24 liters" -> 15), else its last expression. ``we get \\frac{1}{2}`` -> ``\\frac{1}{2}``,
    never the 2 inside it; ``the result is 2\\pi`` -> ``2\\pi``; ``is x^2+1`` -> ``x^2+1``."""
    text = _CALCULATOR.sub("", text)
    for sentence in reversed(_SENTENCES.split(text)):
        runs = [run for run in _runs(sentence) if depth_balanced(run)]
        found = [run for run in runs if _qualifies(run)]
        if not found:
            continue
        with_equals = [i for i, run in enumerate(runs) if "=" in run]
        if with_equals:
            first = with_equals[-1]
            tail = [_after_last_equals(runs[first])] + runs[first + 1 :]
            value = next((run for run in tail if _qualifies(run)), None)
            if value is not None:
                return _tidy(value)
        return _tidy(found[-1])
    return None


_SENTENCES = re.compile(r"(?<!\d)\.(?=\s|$)|\n")


def _runs(sentence: str) -> list[str]:
    runs: list[str] = []
    current: list[str] = []
    depth = 0
    for match in _EXPR_TOKEN.finditer(sentence):
        command, _number, word, _letter, op, _space, other = match.groups()
        if depth == 0 and (word or (other and other != "\\") or command in _TEXT_COMMANDS):
            if current:
                runs.append("".join(current))
            current = []
            continue
        if op == "{":
            depth += 1
        elif op == "}":
            depth = max(depth - 1, 0)
        current.append(match.group(0))
    if current:
        runs.append("".join(current))
    return runs


def _qualifies(run: str) -> bool:
    part = _after_last_equals(run)
    return bool(re.search(r"\d", part) or re.search(r"\\[a-zA-Z]", part) or (re.search(r"[A-Za-z]", part) and re.search(r"[-+*/^]", part)))


def _tidy(run: str) -> str:
    answer = _after_last_equals(run).strip().strip("*").strip().rstrip("/-+*=^_(").strip()  # bold around it; "18,000/year"
    while answer.startswith("(") and answer.count("(") > answer.count(")"):
        answer = answer[1:].lstrip()  # "(so 12": an opening parenthesis of the prose, not of "(n(n+1)/2)^2"
    answer = _LEADING_LETTERS.sub("", answer)  # "it's 5": the s is prose, not a variable
    return _TRAILING_ARTICLE.sub("", answer)  # "10000 a day": an article, not a variable


def depth_balanced(run: str) -> bool:
    return run.count("{") == run.count("}")


def _after_last_equals(run: str) -> str:
    depth, cut = 0, -1
    for index, char in enumerate(run):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "=" and depth == 0:
            cut = index
    return run[cut + 1 :] if cut >= 0 else run


def _clip(answer: str) -> str:
    answer = answer.strip()
    return answer[:MAX_ANSWER_CHARS]


_BECAUSE = re.compile(r"\s+(?:because|since|as shown|as we|which is because)\s+", re.IGNORECASE)


def _stated_answer(text: str) -> str:
    """The answer after "the answer is": its sentence, narrowed to what follows a last " is ",
    to its last math span, or, in prose, to its last number."""
    line = text.strip().split("\n", 1)[0]
    end = _SENTENCE_END.search(line)
    answer = (line[: end.start()] if end else line).strip().rstrip(".").strip()
    # "4 because two plus two is four": the reason given after the answer is not the answer
    answer = _BECAUSE.split(answer, 1)[0].strip().rstrip(",").strip() or answer
    if " is " in answer:
        answer = answer.rsplit(" is ", 1)[1].strip()
    if re.search(r"\b(?:p?mod|\\pmod|\\bmod)\b", answer) and "=" in answer:
        answer = answer.rsplit("=", 1)[1].strip()  # "p mod 1979 = 0"
        answer = re.sub(r"\s*(?:\\\)|\\\]|\$+)\s*$", "", answer)  # "\(3^{105} + 4^{105} \mod 11 = 2\)": its closing delimiter
    spans = _MATH_SPANS.findall(answer)
    if spans:  # several spans in one stated answer ("$12$ and $13$") are its parts
        return ", ".join(next(part for part in span if part).strip() for span in spans)
    if len(_PROSE.findall(answer)) >= 3:
        expression = last_expression(answer)
        if expression:
            return expression
    return answer


def _conclusion(text: str, after: int) -> str | None:
    """The last number of a closing "Therefore/Thus/So ..." sentence written after the last math
    span: "Therefore, there are 12 sequences." -> 12."""
    matches = [m for m in _CONCLUSION.finditer(text) if m.start(1) >= after]
    if not matches or last_expression(text[matches[-1].end() :]) is not None:
        return None  # no closing sentence, or more math written after it
    return last_expression(matches[-1].group(1))


_ENVIRONMENT_NAMES = re.compile(r"\\(?:begin|end)\{[^{}]*\}(?:\{[^{}]*\})?")


def _math_spans(text: str) -> list[re.Match[str]]:
    """The ``$...$``-style spans that hold math. A single-dollar span whose content reads as
    prose, or ends mid-expression, sits between two currency signs ("$12 + $24 = $36"), not
    between math delimiters."""
    spans = []
    for match in _MATH_SPANS.finditer(text):
        content = match.group(4)
        words = _PROSE.findall(_ENVIRONMENT_NAMES.sub(" ", content)) if content is not None else []
        currency = content is not None and content[:1].isdigit() and bool(re.search(r"[\s,;:\-+*/=–−×]$", content))
        if content is not None and (len(words) >= 2 or currency or re.search(r"[-+*/=]\s*$", content) or "\n" in content):
            continue
        spans.append(match)
    return spans


_READ_ON = object()  # the closing claim is a computation: the expression rules decide


def _from_claim(claim: str, text: str, prompt: object, polarity: bool) -> Extraction | None | object:
    """The answer a closing sentence states (`prose.read_claim`). One it cannot read gives no
    answer, never a number from elsewhere in the completion (the last one written, one in an
    explanation after it), except: its main clause's last expression ("Thus, John paid $40 for
    the shoes.", a sentence whose verb is not "is") unless that only names something of the question ("... times as an
    expression of n"); and a computation written out ("Then 50-25-10=$15 are left.") is left to
    the expression rules (`_READ_ON`). A yes/no question is answered by a claim or not at all."""
    claimed = read_claim(claim, prompt, polarity)
    if claimed:
        return Extraction(_clip(claimed), "claim")
    if polarity:
        # "Hence, we have a contradiction. It is not possible for ...": the verdict follows
        ending = sentences(text[-1500:])
        last = ending[-1] if ending else ""
        claimed = read_claim(last, prompt, polarity) if last and last not in claim and claim not in last else None
        return Extraction(_clip(claimed), "claim") if claimed else None
    if COMPUTES.search(claim):
        return _READ_ON
    main = main_clause(claim)
    if main_verb(main) is not None:
        return None  # "... is at most the number of roots of the equation g(x) = 0": its verb claims no value
    value = last_expression(main)
    if value is None or (isinstance(prompt, str) and re.search(rf"(?<![\w^_]){re.escape(value)}(?![\w^_])", prompt)):
        return None
    return Extraction(_clip(value), "conclusion")


def extract_answer(text: str, last_number: bool = True, prompt: object = "", polarity: bool = False) -> Extraction | None:
    """The final answer of `text`, or None when no rule finds one. `prompt` and `polarity` (the
    question is a yes/no one and the reference says yes or no) steer the reading of an answer
    stated in prose (`prose.read_claim`)."""
    text = _CALCULATOR.sub("", text) if "<<" in text else text
    boxes = find_boxes(text)
    stated = None
    for rule, pattern in (("final_answer", _FINAL), ("answer_is", _ANSWER_IS), ("answer_line", _ANSWER_LINE)):
        matches = list(pattern.finditer(text))
        if matches and (stated is None or matches[-1].end() > stated[1]):
            stated = (rule, matches[-1].end())
    # The latest explicit statement wins: a box, or "the final answer is" written after it, as
    # long as that statement holds some math ("The final answer is positive, because ..." does not).
    if boxes and stated and stated[1] > boxes[-1][1] and not re.search(r"[\d$\\]", _stated_answer(text[stated[1]:])):
        stated = None
    if boxes and not (stated and stated[1] > boxes[-1][1]):
        answer, size = _last_box_group(text, boxes)
        return Extraction(_clip(answer), "boxed", tuple(b[2] for b in boxes), size)
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        return Extraction(_clip(tagged[-1]), "answer_tag")
    gsm = _GSM8K.findall(text)
    if gsm:
        return Extraction(_clip(gsm[-1]), "gsm8k")
    if stated:
        answer = _stated_answer(text[stated[1] :])
        line = text[stated[1] :].strip().split("\n", 1)[0]
        end = _SENTENCE_END.search(line)
        line = line[: end.start()] if end else line
        if answer and _wordy(line):
            # "the answer is: No, there are no integer solutions to ...": read the claim
            claimed = read_claim(line, prompt, polarity)
            if claimed:
                return Extraction(_clip(claimed), stated[0] + "_claim")
        if answer:
            return Extraction(_clip(answer), stated[0])
    claim = claim_sentence(text, polarity=polarity)
    if claim is not None:
        found = _from_claim(claim, text, prompt, polarity)
        if found is not _READ_ON:
            return found  # type: ignore[return-value]
    spans = _math_spans(text)
    conclusion = _conclusion(text, spans[-1].end() if spans else 0)
    if conclusion:
        return Extraction(conclusion, "conclusion")
    if spans:
        content = next(part for part in spans[-1].groups() if part)
        return Extraction(_clip(content), "latex_math")
    stripped = text.strip()
    if stripped and len(stripped) <= 80 and not _PROSE.findall(stripped) and len(_SHORT_WORDS.findall(stripped)) < 2 and "\n" not in stripped:
        return Extraction(stripped, "whole_completion")  # a bare answer such as "\frac{10}{9}"
    if last_number:
        hedge = _TRAILING_LIST.search(text)
        if hedge:
            return Extraction(re.sub(r"\s*(?:,\s*or|or)\s*", ", ", hedge.group(1)), "last_number_list")
        expression = last_expression(text)
        if expression:
            return Extraction(_clip(expression), "last_number" if _NUMBER.fullmatch(expression) else "last_expression")
    return None


def _wordy(answer: str) -> bool:
    """An answer that is a sentence of prose rather than a value."""
    return len(_PROSE.findall(re.sub(r"\\[a-zA-Z]+|\b(?:sqrt|and|or|pi|floor|ceil|mod)\b", " ", answer))) >= 2


def extract_reference(text: str) -> Extraction:
    """A reference is usually the bare answer; if it is a worked solution, take its final answer."""
    stripped = text.strip()
    if "\\boxed" in stripped or "\\fbox" in stripped or "####" in stripped or "<answer>" in stripped.lower():
        found = extract_answer(stripped, last_number=False)
        if found is not None:
            return found
    if len(stripped) > 80 and len(_PROSE.findall(stripped)) > 5:  # a worked solution in prose
        found = extract_answer(stripped, last_number=True)
        if found is not None:
            return found
    if stripped.startswith("$") and stripped.endswith("$"):
        return Extraction(_clip(stripped.strip("$")), "reference")
    return Extraction(_clip(stripped), "reference")
