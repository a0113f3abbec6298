"""Answers stated in prose: the value a closing sentence asserts (references: `references`).

Models often close with a sentence rather than a box ("Therefore, there are 144 subsets of ...
that contain no two successive numbers."), and datasets write references the same way ("0 is
the only possible value", "The limit exists and is equal to 3", "No integer solutions"). This
module reads such a sentence into an answer string the parser understands:

- the value after the claim's verb ("is", "are", "equals", "is congruent to", a final ``=``),
  read in the claim's main clause: a clause that only explains ("which occurs when a = b = c",
  "because ...") is cut first, so neither the last number of the sentence nor the expression of
  the question the subject restates ("the limit of a_(n+1) = sqrt(6 + a_n) is 3") is taken;
- "there are N ...", "at least N ...", "exactly one ..." (number words read) for a count;
- "there are no ...", "... does not exist", "... is not possible": the answer ``no`` (or 0 when
  the question asks how many);
- Yes/No: a leading "Yes"/"No", else, only for a yes/no question, the polarity of the claim
  ("4^545 + 545^4 is not a prime number" -> no); a sentence that only plans or hedges ("To
  determine whether ..., we need to check ...") answers nothing.

Values are returned as text in payoff's answer syntax; the parser reads plain-text math
(``sqrt(2)``, ``C(10, 5)``, ``floor(n/2)``, ``pi``). Which sentence is the closing one is
`closing`'s to decide.
"""

from __future__ import annotations

import re

YES, NO = "yes", "no"

NUMBER_WORDS = {
    "zero": 0, "no": 0, "one": 1, "a single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
}
_NUMBER_WORD = "|".join(sorted((w for w in NUMBER_WORDS if w != "no"), key=len, reverse=True))

# Words that open a closing claim ("Therefore, ...", "**Conclusion:** ..."; `closing.MARKER`).
CONCLUDING = (r"therefore|thus|hence|so|in conclusion|in summary|to summarize|to sum up|consequently|as a result|conclusion|"
              r"final answer|answer|overall|finally|in short")
# What opens a claim before its subject: the concluding words, "the answer is", "we can conclude that".
_LEAD = re.compile(rf"^\W*(?:(?:{CONCLUDING}|the final answer is|the answer is|in other words|"
                   r"we (?:can |may |must )?(?:now |thus |therefore |then )?(?:conclude|deduce|infer|see)(?: that)?|"
                   r"it follows(?: that)?)\b[\s,:*]*)+", re.IGNORECASE)
# The math delimiters of a sentence; their content stays.
_DELIMITERS = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$?|\*\*")
# Clauses that explain or qualify a claim rather than state it.
_SUBORDINATE = re.compile(r",?\s+(?:which|who|when|whenever|where|because|since|as shown|as we|as it|as they|as this|so that|so the|"
                          r"and thus|and therefore|and hence|and so|thus|giving|showing|meaning|implying|i\.e\.|e\.g\.|namely|"
                          r"for (?:all|any|every|each)|with (?:the|corresponding)|in which|but|however|although|though|while|"
                          r"provided|assuming|given that|if and only if)\b|\s+\((?=[A-Za-z]{3,}\s)|;|\s+—\s+|:\s", re.IGNORECASE)
# Opens a clause inside a claim whose verb is not the claim's ("for which ... is divisible by ...").
_CLAUSE = re.compile(r"\b(?:which|who|whom|whose|that|when|whenever|where|because|since|if|unless|while|whereas|although|though|"
                     r"given that|such that|so that|provided)\b", re.IGNORECASE)
_WHICH_IS = re.compile(r",?\s+which (?:is|equals|gives)\s+((?:[^,]|,(?=\d))*)$", re.IGNORECASE)
# The verb of a claim; the value follows it.
COPULA = re.compile(r"\b(?:is|are|was|were|equals|equal|(?<!\bto )be)\b(?:\s+(?:equal|congruent|"
                    r"identical)\s+to\b)?(?:\s+given\s+by\b)?|(?<![<>!=\\])=(?!=)|≡|\\equiv\b|\\cong\b", re.IGNORECASE)
_SHORT_PROSE = {"a", "an", "at", "of", "to", "by", "in", "on", "is", "as", "or", "it", "we", "if", "so", "be", "no", "up"}
_FILLER = re.compile(r"^(?:(?:a total of|at least|at most|"
                     r"exactly|precisely|simply|just|equal to|congruent to|given by|as follows|the following|the number|the value|"
                     r"the integer|the numbers|the values|the integers|the expression|the pairs?|the polynomial|the sets?|the zero polynomial|"
                     r"the remainder|the solutions?|the only solutions?|the constant solutions?|the constant functions?|the functions?|"
                     r"the only values?|the only one|the interval|the range|the formula|"
                     r"the closed form|the closed-form expression|the binomial coefficient|the fraction|the only|the|only|always|"
                     r"both|all|namely|indeed|still|then|also|of the form|in the form)\b[\s,:]*)+", re.IGNORECASE)
# Words a value may contain: function names of plain-text math and list joiners.
MATH_WORDS = {"sqrt", "pi", "floor", "ceil", "log", "ln", "sin", "cos", "tan", "exp", "and", "or", "mod", "infty", "infinity",
              "max", "min", "gcd", "lcm", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
              # names of LaTeX environments, written in braces after \begin and \end
              "begin", "end", "pmatrix", "bmatrix", "vmatrix", "matrix", "array", "cases", "align", "aligned"}
WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
NEGATIVE_EXISTENCE = re.compile(
    r"\bthere (?:is|are|exist|exists|will be|can be|would be) no\b|\bthere (?:is|are|exist|exists) not\b|"
    r"\bthere (?:do|does|can|could) not exist\b|\bthere (?:cannot|can't) (?:exist|be)\b|\bthere (?:does|do|can|could)n't exist\b|"
    r"\bno (?:such )?(?:[\w-]+ ){0,4}(?:solutions?|"
    r"values?|numbers?|integers?|pairs?|roots?|zeros?|sequences?|polynomials?|primes?|limits?|tuples?|triples?)\s+(?:exist|satisfy|"
    r"work|make|are|is|can|for|such|to|of|that|in)\b|\b(?:has|have|admits?) no\b|\bdoes not exist\b|\bdo not exist\b|\bdoesn't exist\b|"
    r"\bis not possible\b|\bis impossible\b|\bare not possible\b|\bnot possible\b|\bno such\b|\bno (?:[\w-]+ ){0,3}solutions?\b|"
    r"\bnone\b|\bdiverges\b|\bis unbounded\b", re.IGNORECASE)
NEGATION = re.compile(r"\b(?:not|no|cannot|never|none|neither|nor|impossible|false|fails?|isn't|aren't|doesn't|don't|didn't|can't|"
                      r"couldn't|won't|wouldn't|mustn't|shouldn't|hasn't|haven't|nowhere)\b|n't\b", re.IGNORECASE)
# A sentence that plans, hedges or asks, instead of answering.
_NO_CLAIM = re.compile(r"^\W*(?:to|in order to) (?:determine|find|check|solve|see)\b|"
                       r"\b(?:whether|need to|needs to|we must|we have to|let us|let's|we can(?! always| indeed)|we will|we would|"
                       r"would need|could be|might|may be|maybe|possibly|perhaps|unclear|unknown|not sure|cannot (?:be )?determined?|"
                       r"cannot (?:say|conclude|provide|find|give|proceed)|impossible to (?:determine|say|find)|not enough|insufficient|"
                       r"depends|approximately|about|likely|unlikely|seems|appears|suggests|guess|assume|suppose|without (?:further|more|"
                       r"additional|computational|knowing)|framework|approach)\b|\?", re.IGNORECASE)
_CONDITIONAL = re.compile(r"\b(?:if and only if|only if|only when|unless|provided|depends|in some cases|sometimes|if both|if either|"
                          r"when both|when either)\b", re.IGNORECASE)
# A condition on a leading "Yes"/"No" (narrower than `_CONDITIONAL`: "the rules provided" is none).
_LEADING_CONDITION = re.compile(r"\b(?:if and only if|only if|only when|unless|provided that|depend(?:s|ing) on)\b", re.IGNORECASE)
# A condition set off by commas inside a claim's subject ("…, when like terms are collected, …").
_CONDITION_ASIDE = re.compile(r",\s+(?:when|whenever|where|once|after|if)\s+[^,]{1,80},", re.IGNORECASE)
_YES_NO_QUESTION = re.compile(r"(?:^|,\s+)(?:is|are|can|could|do|does|did|must|will|would|should|has|have|was|were|may)\b(?:[^.?!]|\.(?=\S))*[?.]",
                              re.IGNORECASE)
_HOW_MANY = re.compile(r"\bhow (?:many|often)\b|\bnumber of\b|\bhow much\b", re.IGNORECASE)
COUNT = re.compile(rf"\b(?:there (?:are|is|exist|exists)|all(?: of)?(?: the)?(?: first)?|"
                   rf"exactly|at least|at most|a total of|a minimum of|a maximum of|only|has|have|"
                   rf"totals?|in total|(?:holds?|is true|are true|works?) for)\s+"
                   rf"(?:(?:exactly|only|precisely|just|a total of|at least|at most|all)\s+)?"
                   rf"(?P<count>-?\d[\d,]*|{_NUMBER_WORD}|infinitely many)\b", re.IGNORECASE)
LEADING_COUNT = re.compile(rf"^(?:(?:exactly|at least|at most|only|precisely)\s+)?(?P<count>-?\d[\d,]*|{_NUMBER_WORD}|infinitely many)\b"
                            rf"(?:\s+(?:of|out of)\b|\s+[a-z][\w-]*)", re.IGNORECASE)
# Arithmetic on numbers written out to a result ("12 people * 4 schools = 48", "100 – 90 = 10").
COMPUTES = re.compile(r"(?:\(*\d[\d.,]*\)*%?\s*(?:[A-Za-z/$]+\s*){0,5}(?:[-+*/×÷–−x]|\\times|\\cdot|\bchoose\b)\s*\$?\s*\(*)+"
                      r"\d[\d.,]*\)*%?\s*(?:[A-Za-z/$]+\s*){0,5}=\s*\$?\s*-?\d")
_MOD = re.compile(r"\s*\(?\s*(?:\\pmod\s*\{[^{}]*\}|\\pmod\s*\w+|\\?(?:b?mod)\b\s*\{?[\w^+\-*]+\}?)\s*\)?\s*$", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<!\.)(?<!\b[a-zA-Z])(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)|(?<![\w)}])!(?=\s|$)|\?(?=\s|$)|\n")


def _question(prompt: object) -> str:
    """The question a prompt ends with: its last sentence, or the one before "If so, ..."."""
    if not isinstance(prompt, str):
        return ""
    parts = [p for p in re.split(r"(?<=[.?!])\s+(?=[A-Z])", prompt.strip()) if p.strip()]
    while len(parts) > 1 and re.match(r"\W*(?:and )?if so\b", parts[-1], re.IGNORECASE):
        parts.pop()
    return parts[-1] if parts else ""


def is_yes_no_question(prompt: object) -> bool:
    """The question the prompt ends with (its last sentence, or the one before "If so, ...") is
    a yes/no one: "Is ...?", "For integers a, b, ..., does it also divide ...?"."""
    question = _question(prompt)
    return bool(question) and bool(_YES_NO_QUESTION.search(question))


def asks_how_many(prompt: object) -> bool:
    return isinstance(prompt, str) and bool(_HOW_MANY.search(prompt))


def sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text) if part and part.strip()]


def plain_text(sentence: str) -> str:
    """The sentence with math delimiters dropped, so words and math read as one line ("n
    factorial" written as n!)."""
    return re.sub(r"(?<=[\w)])\s+factorial\b", "!", " ".join(_DELIMITERS.sub(" ", sentence).split()))


def main_verb(claim: str) -> re.Match[str] | None:
    """The verb ("is", "are", ...) of the claim itself, not of a clause inside its subject: in
    "the value of k for which x^3+kxyz is divisible by x+y+z is k = -3" the first "is" belongs to
    the "for which" clause (a clause's first verb is its own; a comma or its second verb ends
    it); in "is 7, which occurs when m and n are equal to 1" the clause follows the claim."""
    clauses = [m for m in _CLAUSE.finditer(claim) if not re.match(r"\s+\w+(?:ed|en|ing)\b", claim[m.end() :])]  # "when divided by"
    events = sorted([(m.start(), "clause", m) for m in clauses]
                    + [(m.start(), "verb", m) for m in COPULA.finditer(claim) if m.group(0)[:1].isalpha()]
                    + [(m.start(), "comma", m) for m in re.finditer(r",", claim)], key=lambda e: e[0])
    in_clause, adverbial, clause_verb, main, explaining = False, False, False, None, False
    for _, kind, match in events:
        if kind == "clause":
            if main is not None:
                break  # a clause after the claim's verb explains it
            in_clause, clause_verb = True, False
            adverbial = explaining or not re.fullmatch(r"which|who|whom|whose|that|such that", match.group(0), re.IGNORECASE)
        elif kind == "comma":
            in_clause, explaining = False, False
        elif explaining and in_clause:
            continue  # "because there are ways to choose a number that is ...": all one explanation
        elif in_clause and not clause_verb and (adverbial or any(e[1] == "verb" and e[0] > match.start() for e in events)):
            # the clause's own verb: always for "when ... is divided by 7", and for a relative
            # clause ("that satisfy ... are a = 3" has one verb, the claim's) when another follows
            in_clause, clause_verb = False, True
            explaining = explaining or adverbial
        else:
            in_clause, main = False, match
    return main


def main_clause(sentence: str) -> str:
    """The main clause of a closing sentence, its opening word and math delimiters dropped."""
    return _main_clause(_LEAD.sub("", plain_text(sentence)).strip())[0]


def _main_clause(claim: str) -> tuple[str, str | None]:
    """The claim without the clauses that only explain it; and the value of a trailing
    "..., which is N" (the value a roundabout subject reduces to)."""
    which = _WHICH_IS.search(claim)
    verb = main_verb(claim)
    start = verb.end() if verb else 0
    cut = _SUBORDINATE.search(claim, start)
    return (claim[: cut.start()] if cut else claim).strip(" ,"), (which.group(1) if which else None)


def math_prefix(text: str) -> str | None:
    """The math at the start of `text`, up to the first word of prose ("45 such pairs" -> 45)."""
    text = _FILLER.sub("", text.strip()).strip()
    if not text:
        return None
    end = len(text)
    for word in WORD.finditer(text):
        if word.group(0).lower() not in MATH_WORDS:
            end = word.start()
            break
    # a short word of prose ends the value too: "$800 on ties", "10000 a day", "20 in total"
    short = re.search(r"(?<=[\w)}\]%])\s+(?:on|in|by|of|to|at|as|is|it|for|per|an?(?=\s+[A-Za-z]{2,}))\b|(?<=[\w)}\]%]),\s+as\b", text[:end])
    if short:
        end = short.start()
    glued = next((m for m in re.finditer(r"(?<=\d)[A-Za-z]{2,}\b", text[:end]) if m.group(0).lower() not in MATH_WORDS), None)
    if glued:  # "72Mb per hour": a unit written against its number
        end = glued.start()
    value = text[:end].strip().rstrip(",;:").strip()
    value = re.sub(r"(?:,?\s*\b(?:and|or)\b\s*|,\s*)$", "", value).strip()
    value = re.sub(r"≡|\\equiv\b", "=", value)
    value = _MOD.sub("", value).strip()
    if re.fullmatch(r"(?:[A-Za-z]{1,2}\s*)+", value) and value.split()[0].lower() in _SHORT_PROSE:
        return None
    value = value.strip("*\"'").strip()
    sides = re.split(r"(?<![<>!=\\])=(?!=)", value)
    if len(sides) > 1 and not _in_coordinates(sides[0], sides[-1]) and \
            not re.fullmatch(r"\s*(?:[A-Za-z](?:_\{?\w+\}?)?|[A-Za-z]\([\w\s,]*\)|\([A-Za-z\s,_]+\)|\\?[a-zA-Z]+)\s*", sides[0]):
        # "L_u - L_v = 0", "n(n-1)(n+1) mod 120 = 0": the result, not an assignment; an equation in two
        # or more of x, y, z ("the plane is 5x - 7y + 11z + 4 = 0") is the answer whole
        value = sides[-1].strip()
    if not value or not re.search(r"[\dA-Za-z\\]", value):
        return None
    if value.count("(") != value.count(")") or value.count("{") != value.count("}") or value.count("[") != value.count("]"):
        return None
    if end < len(text) and re.match(r"[A-Za-z]\b", value) and not re.search(r"[\d=\\(!]", value):
        return None  # "is a multiple of 3": an article, not a value
    return value


def _in_coordinates(left: str, right: str) -> bool:
    """An equation of a curve or surface: two or more of x, y, z on the left, nothing but them and
    numbers on the right ("5x - 7y + 11z + 4 = 0"; not "x^2 + y^2 = (1/3)a^2 + (2/3)b/a", the value
    of x^2 + y^2 in a and b)."""
    letters = r"(?<![A-Za-z\\_])[A-Za-z](?![A-Za-z_(])"
    return len(set(re.findall(letters, left)) & set("xyz")) >= 2 and set(re.findall(letters, right)) <= set("xyz")


def count_value(word: str) -> str:
    word = word.lower().replace(",", "")
    if word == "infinitely many":
        return "\\infty"
    return str(NUMBER_WORDS.get(word, word))


def read_claim(sentence: str, prompt: object = "", polarity: bool = False) -> str | None:
    """The answer one sentence asserts, as answer text; None when it asserts none.
    `polarity`: the question is a yes/no question, so a claim without a value answers yes or no."""
    claim = _LEAD.sub("", plain_text(sentence)).strip()
    if not claim:
        return None
    leading = re.match(r"^(yes|no)\b(?!\s+(?:such|[\w-]+\s+(?:solutions?|values?|integers?|numbers?)))", claim, re.IGNORECASE)
    if leading:
        if re.search(r"\b(?:yes|no)\b", claim[leading.end() :][:40], re.IGNORECASE) and re.search(r"\bor\b", claim[:60], re.I):
            return None  # "yes or no, depending on n": both answers is no answer
        if _LEADING_CONDITION.search(claim):
            return None  # "Yes, we can always find h ... if and only if a_0 = 0": a condition, neither yes nor no
        return leading.group(1).lower()
    main, which = _main_clause(claim)
    if _NO_CLAIM.search(main) or re.search(r"\botherwise\b", claim, re.IGNORECASE):
        return None  # a plan or a hedge; "all of 0..k-1 if x = y, and only 0 otherwise": cases, not one answer
    subject = re.match(r"^(?P<value>.+?)\s+(?:is|are)\s+(?:the|our|my)\s+(?:only\s+)?(?:final\s+)?(?:solutions?|answers?|results?)\b"
                       r"(?:\s+(?:to|of|for)\b.*)?$", main, re.I)
    if subject:  # "Therefore x >= 5 is the solution."; "The polynomial f(x) = 0 is the solution to ..."
        value = re.sub(r"^(?:[A-Za-z]{3,}\s+)+(?=[^A-Za-z\s]|[A-Za-z](?:\W|$))", "", subject.group("value").strip())
        found = math_prefix(value)
        if found and not prose_words(value):
            return found
    colon = re.search(r":\s+(?P<value>.+)$", claim)
    if colon and not prose_words(colon.group("value")):
        return math_prefix(colon.group("value"))  # "Here is a zero matrix: M"
    negative, count = NEGATIVE_EXISTENCE.search(main), COUNT.search(main)
    if not polarity and negative and not (count and count.start() < negative.start()) and \
            not re.search(r"\b(?:other than|except|besides|apart from|only)\b", main, re.IGNORECASE):
        return "0" if asks_how_many(prompt) else NO
    if polarity:
        if not _on_topic(claim, prompt):
            return None  # "we have shown that a^4+4b^4 = ...": not an answer to the question asked
        asked = _question(prompt)
        same = {"always": r"always|for (?:all|every|any|each)|in (?:all|every) cases?|in general|regardless|whatever", "never": r"never|for no\b"}
        for word in ("always", "never", "finitely", "infinitely", "sometimes"):
            if re.search(rf"\b{word}\b", asked, re.IGNORECASE) and not re.search(rf"\b(?:{same.get(word, word)})\b", claim, re.IGNORECASE):
                # "Can there be finitely many ...?" - "it contains infinitely many ...": the claim
                # answers another question; its polarity says nothing about this one
                return None
        if _CONDITIONAL.search(claim):
            return None  # "2n is a sum of two squares if and only if x or y is 0": a condition, neither yes nor no
        if re.search(r"\bnot (?:always|necessarily)\b", main, re.IGNORECASE) and not re.search(r"\balways\b", asked, re.IGNORECASE):
            return None  # "it is not always possible" to "is it possible?": sometimes, so neither
        return NO if NEGATION.search(main) or NEGATIVE_EXISTENCE.search(main) else YES
    # "..., which is 74": the value the claim's subject reduces to, when it is one
    value = math_prefix(_main_clause(which)[0]) if which is not None else None
    if value is None:
        value = _copula_value(main)
    if value is None and main_verb(main) is None and not prose_words(main):
        value = math_prefix(main)  # "the final answer is L = sqrt(a), where a > 0"
    if value is None and re.search(r",\s+and\s+", claim):
        first, *_, last = re.split(r",\s+and\s+", claim)
        # "X is divisible by 7, and the remainder is 0"; "the smallest value is 1/2, and this value is achieved when a = b"
        value = read_claim(last, prompt) or read_claim(first, prompt)
    if value is None and COMPUTES.search(claim):
        return None  # "8 pens cost $1.50 x 8 = $12": a computation, left to the expression reader
    if value is None and main_verb(main) is None and "=" in main and len(prose_words(main)) <= 1:
        value = math_prefix(re.split(r"(?<![<>!=\\])=(?!=)", main)[-1])  # "So, abcde mod 5 = 0."
    if value is None:
        # "holds for all 100 values of n": the count sits in the "for all" the main clause leaves out
        count = COUNT.search(main) or LEADING_COUNT.match(main) or re.search(r"\b(?:holds?|is true|are true|works?) for all "
                                                                             r"(?P<count>\d[\d,]*)\b", claim, re.IGNORECASE)
        if count:
            value = count_value(count.group("count"))
    if value is None:
        bound = re.search(r"\b(?:at least|at most|exactly|a total of)\s+", main, re.IGNORECASE)
        if bound:
            value = math_prefix(main[bound.end() :])
    means = re.search(r",?\s+which (?:means|implies|shows)(?: that)?\s+(?P<rest>.+)$", claim, re.IGNORECASE) if value is None else None
    if means:  # "7y^2 + 9 can never be a multiple of 15, which means there are no integer solutions": what it implies
        value = read_claim(means.group("rest"), prompt, polarity)
    aside = _CONDITION_ASIDE.search(claim) if value is None else None
    if aside:  # "The expansion, when like terms are collected, will have 2,001,000 terms": read without the aside
        value = read_claim(claim[: aside.start()] + " " + claim[aside.end() :], prompt, polarity)
    return value


_STOP = {"that", "this", "there", "these", "those", "with", "from", "have", "been", "will", "would", "could", "should", "must",
         "does", "exist", "exists", "such", "which", "what", "their", "they", "then", "than", "some", "many", "also", "into",
         "only", "always", "possible", "number", "numbers", "integer", "integers", "value", "values", "given", "find", "every"}


def _on_topic(claim: str, prompt: object) -> bool:
    """The claim speaks of what the question asks: it shares a content word or a formula with the
    question ("there cannot exist p ≠ q such that x_p=x_q" to "Could x_p=x_q for any p≠q?"), or
    points back at it ("there are no such x and y")."""
    if not isinstance(prompt, str) or re.search(r"\bno such\b", claim, re.IGNORECASE):
        return True
    if NEGATIVE_EXISTENCE.search(claim) and re.search(r"\b(?:are|is) there\b|\b(?:does|do) there exist\b", _question(prompt), re.IGNORECASE):
        return True  # "there are no possible values of a, b, c such that E < F" to "are there possible values ...?"
    formulas = [f for f in re.findall(r"\S*[=<>^_]\S*", plain_text(claim)) if len(f.strip(",.;")) >= 5]
    if any(_squash_math(f.strip(",.;")) in _squash_math(prompt) for f in formulas):
        return True
    question = _question(prompt) or prompt
    asked = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", question)} - _STOP
    if not asked:
        return True  # "Is it possible for x_n+y_n+z_n=0 for some n?": nothing to check against
    words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", claim)} - _STOP
    return bool(words & ({w.lower() for w in re.findall(r"[A-Za-z]{4,}", prompt)} - _STOP))


def _squash_math(text: str) -> str:
    return re.sub(r"\s+|\$", "", text)


def _copula_value(main: str) -> str | None:
    """The value after the claim's verb: "are x = 0 and y = 0" keeps its names; "is 4/20 x 100% =
    20%" is the result of its computation; "24 - 14 = 10 liters of water were left" (a verb with
    no value after it) is the result computed before it. A claim without a verb in words gives
    None: its ``=`` chains are left to the expression reader (`extract.last_expression`)."""
    verb = main_verb(main)
    if verb is None:
        return None
    after = main[verb.end() :]
    if re.match(r"\s*(?:not|no|never|neither)\b", after, re.IGNORECASE):
        return None
    equals = [m for m in re.finditer(r"(?<![<>!=\\])=(?!=)", after)]
    if equals:
        left, result = _FILLER.sub("", after[: equals[0].start()].strip()), after[equals[-1].end() :]
        if (re.search(r"\d", left) and (not prose_words(left) or COMPUTES.search(after)) or not left) and not _in_coordinates(left, result):
            return math_prefix(result)  # a computation: its result
    spelled = re.match(rf"\s*(?P<count>{_NUMBER_WORD})\b(?!\s*[-+*/^])", after, re.IGNORECASE)
    value = count_value(spelled.group("count")) if spelled else math_prefix(after)
    if value is None:
        before = [m for m in re.finditer(r"(?<![<>!=\\])=(?!=)", main[: verb.start()])]
        if before:
            result = main[before[-1].end() : verb.start()].strip()
            if re.match(r"[-$\d.]", result) and COMPUTES.search(main[: verb.start()]):
                value = math_prefix(result)
    return value


def strip_commands(text: str) -> str:
    return re.sub(r"\\[a-zA-Z]+(?:\{[a-zA-Z*]*\})?", " ", text)


def prose_words(text: str) -> list[str]:
    """The words of `text` that are not math (LaTeX commands and their environment names,
    function names, list joiners are math)."""
    return [w for w in WORD.findall(strip_commands(plain_text(text))) if w.lower() not in MATH_WORDS]
