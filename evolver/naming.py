"""Intent names, literal-free text and short excerpts for skills, from the requests they serve.

A skill is named for what its requests ask (cancel-reservation, convert-gallons-liters,
fix-modeling), not for the tools its runs called (bash, grep, get-user-details): the verb is the
request verb most of a family's tasks use, the object the content word(s) that set the family
apart from the others. `intent_key` folds synonyms and word order, so liter-to-gallon and
gallon-to-liter requests are one intent and can be merged into one skill.

`generalise` replaces literal values by their kind (<number>, <id>, '<symbol>', <name>, ...), so
examples and pitfalls describe a kind of request, not one customer's. `excerpt` writes kinds as
⟨number⟩ (mathematical angle brackets): readable, and neither HTML nor Markdown, so an excerpt is
safe in a Markdown list item or table cell. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from evolver.cluster import STOPWORDS
from evolver.redact import redact
from evolver.skilldoc import MAX_NAME, NAME_RE, slugify

__all__ = [
    "KINDS",
    "VERBS",
    "excerpt",
    "generalise",
    "kinds_marked",
    "intent",
    "intent_key",
    "intent_name",
    "is_filler",
    "name_key",
    "same_intent",
    "verb_lemma",
]

IntentKey = tuple[str, frozenset[str]]


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _pairs(text: str) -> dict[str, str]:
    return {a: b for a, _, b in (pair.partition("=") for pair in text.split())}


FALLBACK_VERB = "handle"
HEAD_SHARE = 0.1  # the verb's usual object must be so in this share of the tasks to lead
SECOND_WORD = 0.6  # a second object word must score at least this share of the first's
REPORT_SECOND_WORD = 0.8  # ... and in issue reports, where any title word may score
FOCUS_WEIGHT = 2.0  # how much being the verb's direct object (or in an issue's title) counts
FIRST_VERB, LATER_VERB = 10, 3  # vote of a task's first request verb and of its later ones
SHORT = 6  # a request sentence this short leans on the one before it
MAX_PASSES = 6  # generalise's passes; real texts settle after one or two

# ~190 verbs people ask an agent to do; nouns that double as verbs (order, return) included.
_VERBS_TEXT = """
    accept activate add adjust allocate analyse analyze append apply approve archive arrange
    assign authenticate authorize backup block book build buy calculate cancel change charge
    check choose claim clean clear clone close combine commit compare compile compress compute
    configure confirm connect convert copy correct count create cut deactivate debug decompress
    decrease decrypt delete deploy describe determine disable display download downgrade drop
    duplicate edit email enable encrypt enroll erase estimate exchange execute expand explain
    export extend extract fetch figure fill filter find fix fly format forward generate get give
    grant group hide identify implement import improve increase insert install invite join kill
    know link list load locate lock look lower mark measure merge migrate modify monitor mount
    move obtain open optimise optimize order organize pack parse paste pause pay pick place plot
    postpone predict prepare print process provide purchase pull push query read rebook record
    recover redeem reduce refactor refund register reinstall reject reload remove rename renew
    reorder repair replace report request reschedule reserve reset resize resolve restart restore
    resume retrieve return reverse review revoke run save schedule search select sell send set
    setup share show sign simplify sort split start stop submit subscribe substitute sum summarise
    summarize suspend swap switch sync tag tell terminate test track transfer transform translate
    truncate uncompress undo uninstall unlock unpack unsubscribe unzip update upgrade upload
    validate verify view withdraw write zip
"""
VERBS = _set(_VERBS_TEXT)

_IRREGULAR = _pairs(
    """
    bought=buy built=build chose=choose chosen=choose found=find gave=give given=give got=get
    gotten=get knew=know known=know paid=pay ran=run read=read sent=send set=set shown=show
    sold=sell split=split told=tell undid=undo undone=undo withdrew=withdraw wrote=write
    written=write flew=fly flown=fly put=put cut=cut
"""
)
# Plainer words for a name: "show" for give/tell/display, "book" for fly ("I want to fly to X").
_PLAIN = _pairs(
    """
    analyse=analyze display=show fetch=get figure=find fly=book give=show know=check locate=find
    look=find obtain=get optimise=optimize retrieve=get setup=set summarise=summarize tell=show
    view=show
"""
)
# Verbs one intent goes by: the key folds them (delete files = remove files).
_SAME = _pairs(
    """
    alter=change calculate=compute delete=remove determine=compute edit=change erase=remove
    estimate=compute get=find list=find modify=change print=find purchase=buy rebook=book
    reserve=book search=find show=find update=change
"""
)

# Never an object: chat filler, persona and hedging words, time words, quantities, code and
# shell vocabulary (a tool's name must not name a skill unless the request says it).
_GENERIC_TEXT = """
    able actual actually additional agent already always another answer anything anyway
    appropriate assistant available awk bad bash behavior behaviour best better bit bug case
    certain checklist code command commands console context core correct correctly current
    currently customer day days describe description detail different du echo else entire
    environment error everyone everything exact exactly example expected false feature fine
    following full good grep happy hello help hey hour hours information init instead issue
    last later least less lib lot ls main many minimal minute minutes month months morning much
    new next none nothing null number numbers okay old option options outcome output overall
    particular past people person please polite possible prefer preferred problem properly python
    question reactive reason recent recently reproduce reproduction request result results right
    rmdir sed self shell should show_versions similar single someone sorry specific src stdout
    stderr steps stuff sudo summary task terminal thank thanks thing things time times today
    tomorrow total true upcoming user users util utils value values version way week weeks
    willing wrong year years yesterday
    angry anxious brief calm confident emotional funny impatient insist insistent mood nervous
    persistent rude sad upset
    breaks causes crashes fails gives happens occurs raises returns seems shows throws works
"""
# Words after which "of" introduces the real object: the number of files, the names of players.
_PARTITIVE = _set(
    """all amount average contents count detail details each id ids info information kind list
    lot lots majority max maximum mean min minimum most name names number numbers part
    percentage rest set some status sum total type types value values"""
)
# A noun phrase ends at these.
_CHUNK_END = _set(
    """about above across after against also and are as at be because been before below
    between but by can could did do does during else except for from if in including instead
    into is like may might must nor of on onto or over per should since so than that
    then through till to under unless until via was were what when where whether which
    while who whom whose will with within without would"""
)
_GENERIC = _set(_GENERIC_TEXT) | STOPWORDS | _CHUNK_END
_NOT_PLURAL = _set(
    """alias always analysis atlas basis bias bus canvas chaos crisis gas lens news perhaps
    series species status this thus towards whereas yes"""
)
_EST_NOUNS = _set(
    """arrest bequest chest conquest contest crest digest forest guest harvest inquest interest
    manifest nest pest protest pytest quest request rest suggest test unittest vest west"""
)
_LY_NOUNS = _set("ally anomaly apply assembly family italy july monopoly reply supply")
_ING_NOUNS = _set(
    """billing booking building ceiling clothing encoding evening heading listing logging
    mapping meeting morning padding parking pricing rating setting settings shipping spring
    string strings thing things training warning warnings wedding"""
)
_ED_NOUNS = _set("bed breed embed feed hundred need seed shed sped speed steed weed")
_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_COMMON_CAPS = (
    _GENERIC
    | VERBS
    | {m.lower() for m in (_MONTHS + "|" + _DAYS).split("|")}
    | _set(
        """basic business class dear economy first gold hi how i mr mrs ms dr my new our
        patient platinum regular silver the this what which who why you your"""
    )
)


def verb_lemma(word: str) -> str | None:
    """The lexicon verb a word is a form of (cancelled, canceling, cancels → cancel), else None."""
    w = word.lower().strip("'’")
    if w in _IRREGULAR:
        return _IRREGULAR[w] if _IRREGULAR[w] in VERBS else None
    if w in VERBS:
        return w
    options: list[str] = []
    if w.endswith("ies") or w.endswith("ied"):
        options.append(w[:-3] + "y")
    if w.endswith("es"):
        options += [w[:-2], w[:-1]]
    elif w.endswith("s"):
        options.append(w[:-1])
    if w.endswith("ed"):
        options += [w[:-2], w[:-1]]
        if len(w) > 4 and w[-3] == w[-4]:
            options.append(w[:-3])  # cancelled → cancel, stopped → stop
    if w.endswith("ing"):
        options += [w[:-3], w[:-3] + "e"]
        if len(w) > 5 and w[-4] == w[-5]:
            options.append(w[:-4])  # running → run
    return next((o for o in options if o in VERBS), None)


def _singular(word: str) -> str:
    """A light plural folding (files → file, addresses → address), as cluster.py does."""
    if word in _NOT_PLURAL or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _plain(verb: str) -> str:
    return _PLAIN.get(verb, verb)


# --- literal values -------------------------------------------------------------------------

_EXTENSIONS = (
    "bak|bash|bin|bz2|c|cfg|conf|cpp|css|csv|dat|db|dll|doc|docx|env|exe|gif|go|gz|h|htm|html"
    "|ini|ipynb|jar|java|jpeg|jpg|js|json|lock|log|md|mp3|mp4|o|out|pdf|php|pl|png|py|rb|rs|rst"
    "|sh|so|sql|sqlite|svg|tar|tgz|tmp|toml|ts|tsv|txt|wav|xls|xlsx|xml|xz|yaml|yml|zip"
)
_REDACTED = re.compile(r"\[REDACTED:([a-z-]+)\]")
KINDS = _set(
    "amount card date email file id ip name number path pattern phone secret symbol time url"
    " value version"
)
_KIND = "<(?:" + "|".join(sorted(KINDS)) + ")>"
_PLACEHOLDER = re.compile(_KIND)
_KEEP_KINDS = {"email", "phone", "card"}
_QUOTED = re.compile(
    r"\"([^\"\n]{1,300})\"|“([^”\n]{1,300})”|‘([^’\n]{1,300})’"
    r"|(?<![\w'’>])'(?=[^\s,.;:)\]])([^'\n]{1,300})(?<=\S)'(?![\w'<])"
)
_URL = re.compile(
    r"(?i)(?<![a-z])(?:https?|ftp|file)://[^\s<>\"'`]+|(?<![a-z])www\.[^\s<>\"'`]+"
    r"|(?<![\w:/])//[\w-]+(?:\.[\w-]+)+[^\s<>\"'`]*"  # //host/path
    r"|(?<![\w.@/-])(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|edu|gov)\b(?:/[^\s<>\"'`]*)?"
)
_EMAIL = re.compile(r"\b[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_ISO_DATE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)
_SLASH_DATE = re.compile(r"(?<![\w/])\d{1,4}/\d{1,2}/\d{2,4}(?![\w/])")
_NAMED_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\.?(?:,?\s+\d{{4}})?"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?(?!\d)"
    rf"|(?:{_MONTHS})\.?\s+\d{{4}})\b"
)
_TIME = re.compile(
    r"(?i)(?<![\w:])\d{1,2}(?::\d{2}){0,2}\s?[ap]\.?m\b\.?|(?<![\w:])\d{1,2}:\d{2}(?::\d{2})?\b"
)
_MONEY = re.compile(
    r"(?i)[$€£¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:k|m|bn|million|billion|thousand)\b)?"
    r"|(?<![\w>])\d[\d,]*(?:\.\d+)?\s?(?:usd|eur|gbp|dollars?|euros?|pounds?|cents?|bucks)"
    r"(?![\w<])"
)
_IP = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?![\w.])")
_VERSION = re.compile(r"(?<![\w.])(?:v\d+(?:\.\d+)+|\d+\.\d+\.\d+)(?:[.-]?[A-Za-z0-9]+)*\b")
_NAMED_VERSION = re.compile(r"(?<![\w.@-])([A-Za-z]+)\d+(?:\.\d+)+\b")  # python3.9
_PATH = re.compile(
    r"(?<![\w<>:/.)\]-])(?:[A-Za-z]:\\[^\s'\"`<>|]+"
    r"|(?:~|\.{1,2})?(?:/(?=[\w.*?-]*[A-Za-z*])[\w.*?-]+)+/?"
    r"|[\w.-]+(?:/[\w.*?-]+){2,}/?"
    rf"|[\w.-]+/[\w.*-]+\.(?:{_EXTENSIONS})\b)"
)
_FILE = re.compile(rf"(?<![\w<>/.-])[\w-]+(?:\.(?:{_EXTENSIONS}))+(?![\w./-])")
_GLOB = re.compile(r"(?<![\w<>/*)\]])\*[\w*]*\.[\w*]+(?![\w/])")  # *.txt, not *args
_TOKEN_ID = re.compile(r"(?<![\w<>/-])#?[A-Za-z0-9][\w-]*(?<=[A-Za-z0-9])(?![\w-])")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?!\w)")
_ID_WORDS = re.compile(
    r"(?i)(?<!<)\b(?:reservations?|bookings?|confirmations?|orders?|tickets?|pnr|references?|ids?"
    r"|codes?)\b"
)
_CAPS_CODE = re.compile(r"[A-Z]{5,8}")
_NEXT_TOKEN = re.compile(_KIND + r"|[\w-]+")
_NAME_RUN = re.compile(r"(?<![\w'’<])[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?(?:\s+[A-Z][a-z]+)+\b")
_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof)\.?\s+[A-Z][a-z]+\b")
_INTRODUCED = re.compile(r"\b((?:[Mm]y name is|[Cc]all me|I'm|I am|[Tt]his is)\s+)([A-Z][a-z]+)\b")


def _id_token(match: re.Match[str]) -> str:
    tok = match.group(0)
    if not any(c.isdigit() for c in tok):
        return tok
    if tok.isdigit():
        return tok  # a plain number: the number rule's
    if tok.startswith("#"):
        return "<id>"
    if re.fullmatch(r"\d+(?:st|nd|rd|th)", tok):
        return "<number>"
    unit = re.fullmatch(r"\d+([A-Za-z]{1,3})", tok)
    if unit:
        return "<number>" + unit.group(1)  # 100mg, 20GB
    if not any(c.isalpha() for c in tok):
        return "<id>" if "-" in tok or "_" in tok else tok
    digits = sum(c.isdigit() for c in tok)
    if re.fullmatch(r"[a-z]{2,}\d{1,2}|[a-z]+\d[a-z]+", tok) or (
        digits <= 2 and "-" not in tok and "_" not in tok and re.search(r"[A-Za-z][a-z]{3,}", tok)
    ):
        return tok  # python3, md5sum, Linear1D: a word with a digit, not a value
    if digits >= 2 or len(tok) >= 6 or "-" in tok or "_" in tok:
        return "<id>"
    return tok  # A1C, H2O, mp3


def _caps_ids(text: str) -> str:
    """Letter-only codes (MDCLVA) right after a reservation/order/id word."""
    out, last = [], 0
    for word in _ID_WORDS.finditer(text):
        for i, token in enumerate(_NEXT_TOKEN.finditer(text, word.end())):
            if i == 5:
                break
            if token.start() >= last and _CAPS_CODE.fullmatch(token.group(0)):
                out.append(text[last : token.start()] + "<id>")
                last = token.end()
    return "".join(out) + text[last:]


def _names(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        words = match.group(0).split()
        lead = 0
        while lead < len(words) and words[lead].lower() in _COMMON_CAPS:
            lead += 1
        rest = words[lead:]
        if not 2 <= len(rest) <= 3 or any(w.lower() in _COMMON_CAPS for w in rest):
            return match.group(0)
        return " ".join([*words[:lead], "<name>"])

    def introduced(match: re.Match[str]) -> str:
        if match.group(2).lower() in _COMMON_CAPS:
            return match.group(0)
        return match.group(1) + "<name>"

    text = _TITLE.sub("<name>", _NAME_RUN.sub(replace, text))
    return _INTRODUCED.sub(introduced, text)


def _url(match: re.Match[str]) -> str:
    url = match.group(0)
    core = url.rstrip(".,;:!?)]}")
    return "<url>" + url[len(core) :]


def _values(text: str) -> str:
    """Every literal-value rule but quotes, in order: specific shapes before generic ones."""
    text = _URL.sub(_url, text)
    text = _EMAIL.sub("<email>", text)
    text = _ISO_DATE.sub("<date>", text)
    text = _SLASH_DATE.sub("<date>", text)
    text = _NAMED_DATE.sub("<date>", text)
    text = _TIME.sub("<time>", text)
    text = _MONEY.sub("<amount>", text)
    text = _IP.sub("<ip>", text)
    text = _VERSION.sub("<version>", text)
    text = _NAMED_VERSION.sub(r"\1<version>", text)
    text = _PATH.sub("<path>", text)
    text = _FILE.sub("<file>", text)
    text = _GLOB.sub("<pattern>", text)
    text = _TOKEN_ID.sub(_id_token, text)
    text = _caps_ids(text)
    text = _NUMBER.sub("<number>", text)
    return _names(text)


def _quoted(match: re.Match[str]) -> str:
    content = next(g for g in match.groups() if g is not None)
    opening, closing = match.group(0)[0], match.group(0)[-1]
    inner = content.strip()
    if _PLACEHOLDER.fullmatch(inner):
        kind = inner
    elif re.fullmatch(r"[A-Z]{1,5}", inner):
        kind = "<symbol>"  # 'AAP': a ticker, airport or code
    else:
        value = _values(inner)
        kind = value if _PLACEHOLDER.fullmatch(value) else "<value>"
    return f"{opening}{kind}{closing}"


def generalise(text: str) -> str:
    """Redacted text with each literal value replaced by its kind, to describe a kind of request."""
    if not text:
        return ""
    return _generalised(text) if len(text) <= 8192 else _generalise(text)


@lru_cache(maxsize=1 << 14)
def _generalised(text: str) -> str:
    return _generalise(text)


def _generalise(text: str) -> str:
    # A replacement can expose another value ("$5https://x": the url once "$5" is <amount>):
    # passes repeat until nothing changes, so generalise(generalise(x)) == generalise(x).
    for _ in range(MAX_PASSES):
        done = _pass(text)
        if done == text:
            break
        text = done
    return text


def _pass(text: str) -> str:
    text = _REDACTED.sub(
        lambda m: f"<{m.group(1) if m.group(1) in _KEEP_KINDS else 'secret'}>", redact(text)
    )
    return _values(_QUOTED.sub(_quoted, text))


# --- reading requests -----------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_CODE_LINE = re.compile(
    r"^\s*(?:>>>|\.\.\.|\$ |File \"|Traceback|from \w[\w.]* import|import \w|def \w|class \w"
    r"|@\w|#!|In \[\d+\]|Out\[\d+\])"
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z<])|\n+")
_ADVERBS = (
    r"(?:(?:also|just|first|then|now|please|quickly|really|simply|actually|kindly|immediately"
    r"|recursively|only|next|finally|still|again|further|additionally)\s+)*"
)
_REQUEST = re.compile(
    r"(?i)(?<![\w'’])(?:"
    r"(?:want|wants|wanted|need|needs|needed|like|love|wish|wishes|hope|hoping|trying|try|tries"
    r"|plan|planning|intend|intends|ask|asks|asked|possible|way|looking"
    r"|help(?:\s+(?:me|us))?)(?:\s+(?:the\s+)?(?:agent|them|him|her|you|someone))?\s+to"
    r"|please|pls|kindly|let'?s|help\s+(?:me|us)"
    r"|(?:can|could|would|will)\s+(?:you|u|someone|somebody)(?:\s+please)?"
    r"|how\s+(?:do|can|could|should|would)\s+(?:i|we|you|one)"
    r")\s+" + _ADVERBS + r"(?P<verb>[a-z]+)\b"
)
_GERUND = re.compile(
    r"(?i)\b(?:help(?:\s+(?:me|us))?\s+with|interested\s+in|about|regarding)\s+(?P<verb>[a-z]+ing)\b"
)
_DONE_TO = re.compile(
    r"(?i)\b(?:get|have|want|need|like)\s+(?:my|our|the|this|that|it|them)\s+(?:[a-z]+\s+){0,2}?"
    r"(?P<verb>[a-z]+(?:ed|en))\b"
)
_NEGATED = re.compile(r"(?i)(?:\bnot|n't|\bnever|\bno longer)\s+$")
_LEAD = re.compile(r"^[\s\"'(\[*>#-]*(?:\d+[.)]\s+)?" + _ADVERBS, re.I)
_NOUN_NEXT = _set(
    """'s ’s and are can cannot could did does doesn't has have is isn't may might must of or
    seems should was were will would :"""
)
_QUESTION = re.compile(
    r"(?i)^[\s\"'(]*(?:(?P<count>how\s+many|how\s+often)|(?P<compute>how\s+(?:much|long|old|far))"
    r"|(?P<find>what(?:['’]?s)?|which|who|whom|whose|where|when|list|give\s+me|tell\s+me))\b"
)
_COMPUTE_WORDS = re.compile(  # "mean" as the statistic ("the mean of"), not "what do they mean"
    r"(?i)\b(?:average|median|sum|total|maximum|minimum|max|min|percentage|ratio)\b"
    r"|\b(?:the|a|its|their)\s+mean\b|\bmean\s+(?:of|value)\b"
)
_CONVERSIONS = _set("convert transform translate")
_AUX = _set("is are was were do does did 's has have had will can could would the")
_STRUCTURE = re.compile(
    r"```|Traceback \(most recent|^#{1,4} \S|^\s*Description\s*$|(?i:steps to reproduce)"
    r"|^>>> |(?i:expected (?:behaviou?r|result|output))|(?i:actual (?:behaviou?r|result|output))"
    r"|^\s*\*\*[A-Z][^*\n]{3,80}\*\*",
    re.M,
)
_BUG = re.compile(
    r"(?i)\b(?:errors?|exceptions?|traceback|bug|crash(?:es|ed)?|fail(?:s|ed|ing|ure)?|raises?"
    r"|broken|wrong|incorrect(?:ly)?|unexpected(?:ly)?|regression|doesn't|does not|not work(?:ing)?"
    r"|cannot|can't|instead of|warnings?|typeerror|valueerror|keyerror|attributeerror)\b"
)
_GREETING = re.compile(
    r"(?i)\b(?:hi|hello|hey|greetings|dear|good\s+(?:morning|afternoon|evening)|i'?m|i\s+am"
    r"|my\s+name|this\s+is|you\s+are)\b"
)
_WORD = re.compile(_KIND + r"(?:['’]s)?|[A-Za-z][\w’']*|\d[\w.,:/-]*|[^\s\w]")


@dataclass(frozen=True)
class _Ask:
    """A request verb in a task and the text after it (where its object is)."""

    verb: str
    tail: str
    at: int
    first_only: bool = False  # "how many X": the object is the first word, not the last


def _prose(text: str) -> str:
    """The text without HTML comments, fenced code and lines that read as code."""
    text = _FENCE.sub("\n", _COMMENT.sub(" ", text.replace("\r\n", "\n")))
    return "\n".join(line for line in text.split("\n") if not _CODE_LINE.match(line))


def _is_report(text: str) -> bool:
    """An issue report (title, then a body with code, a traceback or headings)."""
    return "\n" in text.strip() and bool(_STRUCTURE.search(text))


def _title(text: str) -> str:
    return next((line.strip() for line in _prose(text).split("\n") if line.strip()), "")


def _sentences(text: str) -> list[tuple[int, str]]:
    out, at = [], 0
    for part in _SENTENCE.split(text):
        if part and part.strip():
            start = text.find(part, at)
            out.append((start, part))
            at = start + len(part)
    return out


def _imperative(sentence: str, base: int) -> _Ask | None:
    """A sentence that opens with a request verb: "Remove all empty folders", "Count the ..."."""
    lead = _LEAD.match(sentence)
    start = lead.end() if lead else 0
    words = _WORD.findall(sentence[start:])
    if not words:
        return None
    first = words[0]
    verb = verb_lemma(first)
    low = first.lower()
    if verb is None or low.endswith(("ed", "ing")) or (low in _IRREGULAR and low != verb):
        return None
    after = [w.lower() for w in words[1:4]]
    if after and after[0] in _NOUN_NEXT:
        return None  # "Sum of the elements ...", "Order is late": a noun
    if len(after) > 1 and after[0].isalpha() and after[0] not in _AUX and after[1] in _AUX:
        return None  # "Return flight is delayed"
    if low == "make" or (after and after[0] == "sure"):
        return None
    tail_at = sentence.find(first, start) + len(first)
    return _Ask(_plain(verb), sentence[tail_at:], base + tail_at - len(first))


def _question(sentence: str, base: int) -> _Ask | None:
    match = _QUESTION.match(sentence)
    if not match:
        return None
    tail = sentence[match.end() :]
    if match.group("count"):
        return _Ask("count", tail, base, first_only=True)
    if match.group("compute") or _COMPUTE_WORDS.search(sentence):
        return _Ask("compute", tail, base)
    return _Ask("find", tail, base)


def _asks_in(text: str) -> list[_Ask]:
    """Request verbs of a (generalised, code-free) request text, in the order they appear."""
    asks: list[_Ask] = []
    for base, sentence in _sentences(text):
        found: list[_Ask] = []
        for pattern in (_REQUEST, _GERUND, _DONE_TO):
            for m in pattern.finditer(sentence):
                if _NEGATED.search(sentence[max(0, m.start() - 12) : m.start()]):
                    continue
                verb = verb_lemma(m.group("verb"))
                if verb is not None:
                    found.append(_Ask(_plain(verb), sentence[m.end() :], base + m.start("verb")))
        opening = _imperative(sentence, base) or _question(sentence, base)
        if opening is not None and not any(a.at == opening.at for a in found):
            found.append(opening)
        asks.extend(sorted(found, key=lambda a: a.at))
    return asks


@lru_cache(maxsize=1 << 14)
def _read(task: str) -> tuple[tuple[_Ask, ...], bool, str]:
    """(request verbs, is an issue report, the text objects are read from)."""
    if _is_report(task):
        title = generalise(_title(task))
        opening = _imperative(title, 0)
        asks = (opening,) if opening is not None else (_Ask("fix", "", 0),)
        return asks, True, generalise(_prose(task))
    text = generalise(_prose(task))
    asks = tuple(_asks_in(text))
    if not asks and _BUG.search(text):
        return (_Ask("fix", "", 0),), True, text
    if asks and asks[0].verb == "fix" and not _heads(asks[0]):
        return asks, True, text  # "... for the past few hours. You want to fix it": a report
    return asks, False, text


@dataclass(frozen=True)
class _Word:
    lemma: str
    surface: str
    position: int
    namelike: bool


def _content(word: str, code: bool = False) -> str | None:
    """The lowercase content word a token stands for, or None for filler, values and forms;
    a `code` word (part of a dotted name) is a name whatever its ending (logging, typing)."""
    if _PLACEHOLDER.fullmatch(word) or any(c.isdigit() for c in word):
        return None
    low = re.sub(r"['’]s$", "", word.lower()).strip("_")
    if not re.fullmatch(r"[a-z][a-z_]*[a-z]", low) or len(low) < 3 or "'" in low or "’" in low:
        return None
    if low in _GENERIC or _singular(low) in _GENERIC:
        return None
    if code:
        return low
    if low.endswith("ly") and len(low) > 4 and low not in _LY_NOUNS:
        return None  # an adverb
    if low.endswith("est") and len(low) > 5 and low not in _EST_NOUNS:
        return None  # a superlative: cheapest, latest
    if low.endswith("ed") and len(low) > 4 and low not in _ED_NOUNS:
        return None  # checked, delayed, completed: a verb form or an adjective, not the thing
    if low.endswith("ing") and len(low) > 5 and low not in _ING_NOUNS:
        return None  # cancelling, differing, containing: an act or a quality, not the thing
    return low


def is_filler(term: str) -> bool:
    """Whether a clustering keyword (a lightly stemmed word: "alway", "showing") is filler no
    name would take: a generic, time or persona word, an adverb, a verb form or a literal value.
    Such a word may still group runs; it does not tell a reader when to use a skill."""
    if term.count("_") >= 3:
        return True  # a value ("abg_gbb_onq_bs_n_ceboyrz", a ciphertext), not a word or a name
    forms = {term, term + "s", term[:-1] + "ies" if term.endswith("y") else term}
    return any(_content(form) is None for form in forms)


@lru_cache(maxsize=1 << 15)
def _words(text: str) -> tuple[_Word, ...]:
    """Content words of a text with their lemma and whether they read as a proper name."""
    out = []
    for i, match in enumerate(re.finditer(_KIND + r"|[A-Za-z][\w'’]*|\d\w*", text)):
        dotted = text[match.start() - 1 : match.start()] == "." or bool(
            re.match(r"\.[A-Za-z_]", text[match.end() : match.end() + 2])
        )
        low = _content(match.group(0), code=dotted)
        if low is None:
            continue
        word = match.group(0)
        before = text[max(0, match.start() - 3) : match.start()].rstrip(" \t\"'(")
        namelike = word[:1].isupper() and word[1:].islower() and bool(before)
        namelike = namelike and before[-1] not in ".!?:;\n"
        out.append(_Word(_singular(low), low, i, namelike))
    return tuple(out)


@lru_cache(maxsize=1 << 15)
def _lemmas(text: str) -> frozenset[str]:
    return frozenset(w.lemma for w in _words(generalise(_prose(text))))


def _phrase(words: Sequence[str], first_only: bool = False) -> tuple[dict[str, int], int]:
    """The noun phrase at the start of `words`: its head (weight 2) and the words before it (1),
    and where it ends. "my upcoming hotel reservation" → reservation 2, hotel 1."""
    chunk: list[str] = []
    aside: list[str] = []  # "the last HbA1C (hemoglobin A1C) value": words in brackets
    skipping, depth, end = True, 0, len(words)
    for index, word in enumerate(words):
        low = word.lower()
        if skipping and low in _AUX:
            continue
        skipping = False
        if low in "()":
            depth = max(0, depth + (1 if low == "(" else -1))
            continue
        if depth:
            aside.append(word)
            continue
        if low in _CHUNK_END or not (word[:1].isalnum() or word.startswith("<")):
            last = chunk[-1].lower() if chunk else ""
            if low == "of" and (last in _PARTITIVE or _singular(last) in _PARTITIVE):
                chunk = []  # "the number of files": the object is what follows
                continue
            end = index
            break
        chunk.append(word)
        if first_only and _content(word):
            end = index + 1
            break
    lemmas = [_singular(c) for c in (_content(w) for w in chunk[-6:]) if c is not None]
    lemmas = [c for c in lemmas[:-1] if c not in _PARTITIVE] + lemmas[-1:]  # not "average"
    extra = [_singular(c) for c in (_content(w) for w in aside[:6]) if c is not None]
    weights = dict.fromkeys(lemmas + extra, 1)
    if lemmas or extra:
        weights[(lemmas or extra)[-1]] = 2
    return weights, end


def _heads(ask: _Ask) -> dict[str, int]:
    """The object phrase of a request verb; for a conversion, the target too (gallons → liters)."""
    words = _WORD.findall(ask.tail)[:24]
    weights, end = _phrase(words, ask.first_only)
    if ask.verb in _CONVERSIONS and end < len(words) and words[end].lower() in ("to", "into"):
        target, _ = _phrase(words[end + 1 :])
        for lemma, weight in target.items():
            weights.setdefault(lemma, weight)
    return weights


_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")


def _phrases(asks: Sequence[_Ask], verb: str) -> list[dict[str, int]]:
    """The object phrases of the family's verb in one task (head 2, other words 1)."""
    return [h for h in (_heads(a) for a in asks if _fold(a.verb) == _fold(verb)) if h]


def _report_focus(task: str, text: str) -> dict[str, int]:
    """An issue's title words count 1, module names (parts of dotted names) 2."""
    out = {w.lemma: 1 for w in _words(generalise(_title(task)))}
    for name in _DOTTED.findall(text):
        out.update({w.lemma: 2 for w in _words(name)})
    return out


@dataclass(frozen=True)
class _Intent:
    verb: str
    words: tuple[str, ...]  # the object, as written most often
    ranked: tuple[str, ...]  # every candidate object word, best first


def _support(n: int) -> int:
    return max(1, math.ceil(n / 2)) if n < 4 else 2


def _fold(verb: str) -> str:
    return _SAME.get(verb, verb)


def _vote(asks_per_task: Iterable[Sequence[_Ask]]) -> str:
    """The request verb most tasks open with (later verbs count less; synonyms count together),
    written as most of them write it; ties alphabetical."""
    votes: Counter[str] = Counter()
    said: Counter[str] = Counter()
    for asks in asks_per_task:
        seen: set[str] = set()
        for ask in asks:
            said[ask.verb] += 1
            if _fold(ask.verb) not in seen:
                votes[_fold(ask.verb)] += LATER_VERB if seen else FIRST_VERB
                seen.add(_fold(ask.verb))
    if not votes:
        return FALLBACK_VERB
    key = min(votes, key=lambda v: (-votes[v], v))
    return min((v for v in said if _fold(v) == key), key=lambda v: (-said[v], v))


@dataclass
class _Tally:
    """Counts over a family's distinct tasks, each word counted once per task."""

    df: Counter[str]
    focus: Counter[str]  # summed per-task weight: 2 the verb's object, 1 a word of its phrase
    heads: Counter[str]  # tasks where the word is the object itself
    paired: Counter[tuple[str, str]]  # tasks where two words share one object phrase
    adjacent: Counter[tuple[str, str]]  # tasks where two words stand side by side
    lowercase: Counter[str]  # uses not capitalised mid-sentence (not a name)
    surfaces: Counter[tuple[str, str]]
    first_at: list[dict[str, int]]
    reports: int


def _tally(read: Sequence[tuple[tuple[_Ask, ...], bool, str, str]], verb: str) -> _Tally:
    t = _Tally(Counter(), Counter(), Counter(), Counter(), Counter(), Counter(), Counter(), [], 0)
    for asks, report, text, task in read:
        words = [w for w in _words(text) if verb_lemma(w.surface) != verb]
        lemmas = {w.lemma for w in words}
        t.df.update(lemmas)
        first: dict[str, int] = {}
        for w in words:
            t.surfaces[(w.lemma, w.surface)] += 1
            t.lowercase[w.lemma] += 0 if w.namelike else 1
            first.setdefault(w.lemma, w.position)
        t.first_at.append(first)
        t.adjacent.update(
            {
                (min(a.lemma, b.lemma), max(a.lemma, b.lemma))
                for a, b in zip(words, words[1:], strict=False)
                if b.position == a.position + 1
            }
        )
        t.reports += report
        if report:
            focus = _report_focus(task, text)
            phrases: list[dict[str, int]] = []
        else:
            phrases = _phrases(asks, verb)
            focus = {}
            for phrase in phrases:
                for lemma, weight in phrase.items():
                    focus[lemma] = max(focus.get(lemma, 0), weight)
        t.focus.update({lemma: w for lemma, w in focus.items() if lemma in lemmas})
        t.heads.update({lemma for lemma, w in focus.items() if w == 2 and not report})
        t.paired.update({(a, b) for ph in phrases for a in ph for b in ph if a < b})
    return t


def _choose(ranked: Sequence[str], scores: dict[str, float], t: _Tally, n: int) -> list[str]:
    """One or two object words. Requests: the word they most often act on, then a word of its
    phrase (water bottle) or its mirror (gallons, liters). Issues: the top word, then a title
    or module word nearly as telling."""
    reports = t.reports * 2 >= n
    most = max((t.heads[w] for w in ranked), default=0)
    if most < HEAD_SHARE * n:
        most = 0  # one task's object ("the water bottle") does not name forty exchanges
    first = ranked[0] if reports or not most else next(w for w in ranked if t.heads[w] * 2 >= most)
    floor = (REPORT_SECOND_WORD if reports else SECOND_WORD) * scores[first]
    for w in ranked:
        if w == first or scores[w] < floor or w[:4] == first[:4]:
            continue  # not "modeling model"
        pair = (min(first, w), max(first, w))
        if reports:
            fits = bool(t.focus[w])
        elif not most:
            fits = t.adjacent[pair] * 2 >= n  # blood pressure
        else:
            together = t.paired[pair] * 3 >= n
            mirrored = t.heads[first] * 3 >= n and t.heads[w] * 3 >= n
            fits = bool(t.focus[w]) and (together or mirrored)
        if fits:
            return [first, w]
    return [first]


def _analyse(tasks: Sequence[str], background: Sequence[str]) -> _Intent:
    # a cycle asks for one family's intent several times (merging, matching, naming)
    return _analysed(tuple(sorted(set(tasks))), tuple(sorted(set(background))))


@lru_cache(maxsize=256)
def _analysed(tasks: tuple[str, ...], background: tuple[str, ...]) -> _Intent:
    distinct = sorted({t for t in tasks if t and t.strip()})
    if not distinct:
        return _Intent(FALLBACK_VERB, ("request",), ())
    read = [(*_read(t), t) for t in distinct]
    verb = _vote(r[0] for r in read)
    t = _tally(read, verb)
    n = len(distinct)
    bg_texts = {b for b in background if b and b.strip()} - set(distinct)
    bg_df: Counter[str] = Counter()
    for text in sorted(bg_texts):
        bg_df.update(_lemmas(text))
    asked = {_fold(a.verb) for r in read for a in r[0]}
    scores: dict[str, float] = {}
    for lemma, count in t.df.items():
        need = _support(n) if t.lowercase[lemma] else max(_support(n), math.ceil(n / 2))
        if count < need or _fold(verb_lemma(lemma) or "") == _fold(verb):
            continue
        if _fold(lemma) in asked and not t.focus[lemma]:
            continue  # "cancel" in a check-order family: asked for, not acted on
        idf = math.log((len(bg_texts) + 1) / (bg_df[lemma] + 1)) if bg_texts else 0.0
        focus = t.focus[lemma] / (2 * n)
        scores[lemma] = count / n * (1 + idf) * (1 + FOCUS_WEIGHT * focus)
    ranked = sorted(scores, key=lambda w: (-scores[w], w))
    if not ranked:
        return _Intent(verb, ("bug",) if verb == "fix" else ("request",), ())
    chosen = _choose(ranked, scores, t, n)
    if len(chosen) == 2 and t.reports * 2 < n:  # a phrase: in the order most tasks write it
        a, b = chosen
        both = [p for p in t.first_at if a in p and b in p]
        a_first = sum(p[a] < p[b] for p in both)
        if a_first * 2 < len(both) or (a_first * 2 == len(both) and b < a):
            chosen = [b, a]

    def surface(lemma: str) -> str:
        forms = [(c, s) for (lem, s), c in t.surfaces.items() if lem == lemma]
        return min(forms, key=lambda f: (-f[0], f[1] != lemma, f[1]))[1]

    return _Intent(verb, tuple(surface(w) for w in chosen), tuple(surface(w) for w in ranked))


def intent(tasks: Sequence[str], background: Sequence[str] = ()) -> tuple[str, str]:
    """The (verb, object) a family of tasks asks for, its object contrasted with `background`."""
    found = _analyse(tasks, background)
    return found.verb, " ".join(found.words)


def intent_key(pair: tuple[str, str]) -> IntentKey:
    """One key per intent: verb synonyms folded, object words as a set, so mirrored intents meet."""
    verb, obj = pair
    low = verb.strip().lower()
    lemma = _plain(verb_lemma(low) or low)
    words = [w for w in re.findall(r"[a-z0-9]+", obj.lower()) if w not in _CHUNK_END | STOPWORDS]
    return _SAME.get(lemma, lemma), frozenset(_singular(w) for w in words)


def same_intent(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Whether two (verb, object) intents are one (same key), so their clusters make one skill."""
    return intent_key(a) == intent_key(b)


def name_key(name: str) -> IntentKey:
    """The intent key of a skill name (verb-object[-N]), to match a new intent to an old skill."""
    parts = name.lower().split("-")
    if len(parts) > 2 and parts[-1].isdigit():
        parts = parts[:-1]
    return intent_key((parts[0], " ".join(parts[1:])))


def _slug(words: Iterable[str]) -> str:
    return slugify("-".join(words), MAX_NAME)


def intent_name(
    tasks: Sequence[str], background: Sequence[str] = (), taken: Collection[str] = ()
) -> str:
    """A verb-object skill name for a family of tasks, not in `taken`, the same in any order."""
    found = _analyse(tasks, background)
    base = _slug([found.verb, *found.words])
    names = [base]
    for extra in found.ranked:
        if len(names) > 4:
            break
        if extra not in found.words:
            names.append(_slug([found.verb, *found.words, extra]))
    for name in dict.fromkeys(names):
        if name not in taken and NAME_RE.match(name):
            return name
    stem, n = base[: MAX_NAME - 6].strip("-"), 2
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


# --- excerpts -------------------------------------------------------------------------------

_SPECIALS = str.maketrans("[]|\\<>", "()//\u2039\u203a", "`*#~$_")  # < > as ‹ ›
_TAGS = re.compile(r"^(?:\s*(?:\[[^\]\n]{1,24}\]|\b(?:BUG|ENH|DOC|MAINT|FEAT|API|TST)\b):?)+\s*")


def kinds_marked(text: str) -> str:
    """`generalise`'s kinds written ⟨kind⟩: neither HTML nor Markdown, so they survive the
    markup escapes that would drop `<kind>`'s brackets."""
    return _PLACEHOLDER.sub(lambda m: f"\u27e8{m.group(0)[1:-1]}\u27e9", text)


def _markdown_safe(text: str) -> str:
    text = kinds_marked(text)
    text = re.sub(r"(?<=[A-Za-z0-9])_+(?=[A-Za-z0-9])", "-", text)  # min_degrees → min-degrees
    text = text.translate(_SPECIALS)
    text = re.sub(r"\s*&\s*", " and ", text)
    text = re.sub(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]", " ", text)
    text = " ".join(text.split())
    return re.sub(r"^[-+=:;,.)\s]+", "", text)


def _request_sentence(text: str) -> str:
    """The sentence that carries the first request, from the clause that asks it; a short one
    ("Help me record it.") with the sentence before it, which says what "it" is."""
    sentences = [sentence.strip() for _, sentence in _sentences(text)]
    for i, sentence in enumerate(sentences):
        asks = _asks_in(sentence)
        if not asks:
            continue
        prefix = sentence[: asks[0].at]
        if _GREETING.search(prefix) or _PLACEHOLDER.search(prefix):
            cut = max(prefix.rfind(","), prefix.rfind(";"), prefix.rfind(" and "))
            if cut >= 0:  # "You are <name> (<id>), you want to ..." → "you want to ..."
                sentence = sentence[cut + 1 :].lstrip(" ,;").removeprefix("and ")
        if len(sentence.split()) < SHORT and i and not _GREETING.match(sentences[i - 1]):
            sentence = f"{sentences[i - 1]} {sentence}"
        return sentence
    plain = [s for s in sentences if len(s.split()) >= 3 and not _GREETING.match(s)]
    return plain[0] if plain else text


def excerpt(task: str, max_words: int = 16) -> str:
    """A short, one-line, Markdown-safe excerpt of a task's request, its values as ⟨kind⟩."""
    if not task or not task.strip():
        return ""
    if _is_report(task):
        text = generalise(_TAGS.sub("", _title(task)))  # "[Bug]: X fails" → "X fails"
    else:
        text = _request_sentence(generalise(_prose(task)))
    words = _markdown_safe(text).split()
    if not words:
        return ""
    if len(words) > max_words:
        words = words[:max_words]
        words[-1] = words[-1].rstrip(",;:.") + "…"
    line = " ".join(words)
    return line[:1].upper() + line[1:]
