"""Deterministic synthetic data sets: the pipeline's offline "embedded default".

Three generators share one small, lowercase, English-like domain so that a masked-LM pretrained on
the corpus is useful for the two downstream tasks:

* :func:`generate_classification`: SST-2-like movie-review sentences whose label is the sign of the
  summed polarity of 1 or 3 sentiment phrases (each phrase may be negated with "not").
* :func:`generate_qa`: SQuAD-v1.1-like rows whose context lists 3 to 5 facts
  ("the capital of velmora is tarsk .") and whose question asks about one of them (optionally
  SQuAD-v2.0-like: a share of questions asks about a fact the context does not state).
* :func:`generate_corpus`: plain text lines mixing both kinds, for masked-LM pretraining.

Every generator draws from its own ``random.Random`` instance, so its output depends only on its
arguments (never on the global random state or on what ran before). All text is whitespace-tokenized:
punctuation is written as separate tokens, and :func:`words` lists every token any generator emits,
which is what the embedded tokenizer's vocabulary is built from (:mod:`pipeline.data.vocab`).
"""

from __future__ import annotations

import random

# ---------------------------------------------------------------------------------------------------
# Word lists. Tuples, not lists: module-level data must not be mutable.
# ---------------------------------------------------------------------------------------------------

# Classification: a phrase is "<subject> [adverb] [not] <adjective>".
_DETERMINERS = ("the", "its", "this")
_MODIFIERS = ("new", "long", "final", "original", "second", "animated", "french", "latest")
_NOUNS = (
    "movie", "film", "acting", "plot", "story", "script", "ending", "cast", "music", "soundtrack",
    "dialogue", "pacing", "humor", "direction", "cinematography", "premise", "finale", "performance",
)
_VERBS = ("was", "is", "felt", "seemed")
_POSITIVE = (
    "good", "great", "wonderful", "brilliant", "charming", "delightful", "moving", "funny", "clever",
    "beautiful", "superb", "excellent", "gripping", "fresh", "touching", "engaging", "stunning", "smart",
    "enjoyable", "memorable", "thrilling", "heartfelt", "witty", "solid",
)
_NEGATIVE = (
    "bad", "awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious", "bland", "messy",
    "lifeless", "forgettable", "shallow", "predictable", "silly", "painful", "flat", "poor", "dreadful",
    "stale", "pointless", "tiresome", "sloppy", "hollow",
)
# Adverbs that read naturally both before "not" and before an adjective ("really not good").
_ADVERBS_ANY = ("really", "truly", "simply", "just", "definitely", "certainly", "honestly")
# Adverbs that only read naturally right before an adjective ("very good", never "very not good").
_ADVERBS_PLAIN = ("very", "so", "quite", "extremely", "pretty", "rather", "incredibly")
_CONNECTORS = ("and", "but", ",", "yet", "while")
# Neutral filler: carries no sentiment, so a model must learn to ignore it. Never contains "not" or a
# sentiment adjective, which keeps the label an exact function of the phrases.
_OPENERS = (
    "overall ,", "i think", "i felt that", "to be fair ,", "in my view ,", "for me ,", "in short ,",
    "frankly ,", "as a whole ,", "at first glance",
)
_CLOSERS = (
    "at times", "in the end", "for the most part", "from start to finish", "on the whole",
    "if you ask me", "most of the time", "all things considered",
)

# QA: entities of three kinds, and relations from one kind of entity to one kind of value.
_PLACES = (
    "velmora", "arkadia", "brenmoor", "calvoria", "dunhollow", "eskeland", "farrowby", "glenmark",
    "halvania", "istoria", "jorvale", "kestavia", "lunmere", "morvania", "nordhal", "orvesta", "pellaris",
    "quenmark", "rosmere", "sylvania", "tavoria", "ulmstead", "varnholm", "westerly", "yarrowin",
    "zeltania", "ambria", "bellmoor", "corvessa", "drevania",
)
_THINGS = (
    "the kite", "the boat", "the lamp", "the bicycle", "the house", "the car", "the door", "the scarf",
    "the tent", "the chair", "the clock", "the wagon", "the umbrella", "the vase", "the ribbon", "the hat",
    "the kettle", "the balloon", "the bench", "the flag",
)
_PEOPLE = (
    "anna", "boris", "clara", "dmitri", "elena", "felix", "greta", "hugo", "ingrid", "jonas", "karla",
    "leon", "mira", "nils", "olga", "pavel", "rosa", "stefan", "tara", "viktor",
)
_CITIES = (
    "tarsk", "olm", "brill", "kavo", "senna", "durn", "lisk", "morrow", "pell", "quill", "ravik", "sorn",
    "tamber", "ulrik", "vask", "wendel", "yorin", "zamek", "holt", "fennick",
)
_LANGUAGES = ("dravish", "omric", "selvan", "tarkic", "ulvish", "morish", "kelvic", "brennic")
_CURRENCIES = ("crown", "florin", "ducat", "guilder", "dinar", "shilling", "penny", "thaler", "mark", "pound")
_COLORS = (
    "amber", "crimson", "teal", "violet", "green", "blue", "yellow", "scarlet", "silver", "golden",
    "ivory", "indigo", "maroon", "olive", "orange", "purple", "white", "black",
)
_FOODS = (
    "bread", "rice", "soup", "cheese", "apples", "noodles", "pancakes", "dumplings", "olives", "porridge",
    "salmon", "honey", "figs", "curry", "waffles",
)
_ANIMALS = ("otter", "fox", "owl", "badger", "heron", "lynx", "rabbit", "tortoise", "falcon", "beaver", "hedgehog", "wolf")

# (relation, entities it applies to, values it takes, question word). Person-valued relations are asked
# with "who", the rest with "what".
_RELATIONS = (
    ("capital", _PLACES, _CITIES, "what"),
    ("leader", _PLACES, _PEOPLE, "who"),
    ("language", _PLACES, _LANGUAGES, "what"),
    ("currency", _PLACES, _CURRENCIES, "what"),
    ("color", _THINGS, _COLORS, "what"),
    ("owner", _THINGS, _PEOPLE, "who"),
    ("favourite food", _PEOPLE, _FOODS, "what"),
    ("hometown", _PEOPLE, _CITIES, "what"),
    ("favourite animal", _PEOPLE, _ANIMALS, "what"),
)

# Share of QA rows whose context also states the asked relation for another entity: the model must
# then match the entity as well as the relation.
_DISTRACTOR_RATE = 0.5
# Share of corpus lines that are review sentences (the rest are QA contexts).
_CORPUS_REVIEW_RATE = 0.5


# ---------------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------------


def _subject(rng: random.Random) -> list[str]:
    """A review subject such as ``the new movie was`` (3 or 4 tokens)."""
    words = [rng.choice(_DETERMINERS)]
    if rng.random() < 0.25:
        words.append(rng.choice(_MODIFIERS))
    words += [rng.choice(_NOUNS), rng.choice(_VERBS)]
    return words


def _phrase(rng: random.Random, with_subject: bool) -> tuple[list[str], int]:
    """One sentiment phrase and its polarity (+1 or -1).

    Args:
        rng: the random source.
        with_subject: start with a subject ("the plot was ..."); without one the phrase continues the
            previous subject ("... and really funny").
    """
    words = _subject(rng) if with_subject else []
    positive = rng.random() < 0.5
    negated = rng.random() < 0.35
    if negated:
        if rng.random() < 0.3:
            words.append(rng.choice(_ADVERBS_ANY))
        words.append("not")
    elif rng.random() < 0.4:
        words.append(rng.choice(_ADVERBS_ANY + _ADVERBS_PLAIN))
    words.append(rng.choice(_POSITIVE if positive else _NEGATIVE))
    polarity = 1 if positive else -1
    # "not" flips the adjective's polarity; intensifiers never change it.
    return words, -polarity if negated else polarity


def _review(rng: random.Random) -> tuple[str, int]:
    """One review sentence (< 30 tokens) and its label (1 = positive).

    1 or 3 phrases: an odd count so the summed polarity is never 0 and the label is never a tie.
    Both polarities and negation are drawn independently of each other, which keeps labels balanced.
    Most sentences (70%) have one phrase, so a small model first learns word polarity and negation
    there; the 3-phrase majority votes are the hard part that separates stronger models. (With 60%
    three-phrase sentences a 2-layer, 128-wide BERT stayed at chance on 2 CPU cores: measured.)
    """
    count = 1 if rng.random() < 0.7 else 3
    words: list[str] = []
    total = 0
    for i in range(count):
        if i:
            words.append(rng.choice(_CONNECTORS))
        phrase, polarity = _phrase(rng, with_subject=i == 0 or rng.random() < 0.7)
        words += phrase
        total += polarity
    # At most one filler (opener or closer): 3 phrases of <= 7 tokens, 2 connectors, a 4-token filler
    # and the full stop stay under 30 tokens.
    filler = rng.random()
    if filler < 0.25:
        words = rng.choice(_OPENERS).split() + words
    elif filler < 0.5:
        words += rng.choice(_CLOSERS).split()
    if rng.random() < 0.7:
        words.append(".")
    return " ".join(words), int(total > 0)


def generate_classification(n: int, seed: int) -> list[dict]:
    """SST-2-like sentiment rows ``{"sentence": str, "label": 0 | 1, "idx": int}``.

    The label is 1 when the polarities of the sentence's phrases (the adjective's polarity, flipped
    by a preceding "not") sum to a positive number. Labels are balanced in expectation.

    Args:
        n: number of rows (``idx`` runs 0..n-1).
        seed: seed of the generator; the rows depend only on ``(n, seed)`` and a shorter ``n`` gives
            a prefix of a longer one.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        sentence, label = _review(rng)
        rows.append({"sentence": sentence, "label": label, "idx": idx})
    return rows


# ---------------------------------------------------------------------------------------------------
# Question answering
# ---------------------------------------------------------------------------------------------------


def _fact_prefix(relation: str, entity: str) -> str:
    """The words of a fact before its value: ``the capital of velmora is``."""
    return f"the {relation} of {entity} is"


def _context(rng: random.Random) -> tuple[list[tuple[int, str, str]], int]:
    """Facts ``(relation index, entity, value)`` of one context and the index of the asked fact.

    3 to 5 facts with pairwise distinct (relation, entity) pairs, so the question has one answer.
    With probability ``_DISTRACTOR_RATE`` one other fact has the asked relation but another entity.
    """
    count = rng.randint(3, 5)
    asked_rel = rng.randrange(len(_RELATIONS))
    _, entities, _, _ = _RELATIONS[asked_rel]
    asked_entity = rng.choice(entities)
    pairs = [(asked_rel, asked_entity)]
    if rng.random() < _DISTRACTOR_RATE:
        pairs.append((asked_rel, rng.choice([e for e in entities if e != asked_entity])))
    while len(pairs) < count:
        rel = rng.randrange(len(_RELATIONS))
        pair = (rel, rng.choice(_RELATIONS[rel][1]))
        if pair not in pairs:  # a repeated pair could state two different values for one question
            pairs.append(pair)
    # Shuffle through a permutation of indices so we can follow where the asked fact went.
    order = list(range(len(pairs)))
    rng.shuffle(order)
    facts = [(pairs[i][0], pairs[i][1], rng.choice(_RELATIONS[pairs[i][0]][2])) for i in order]
    return facts, order.index(0)


def _render(facts: list[tuple[int, str, str]]) -> tuple[str, list[int]]:
    """The context text and the character offset of each fact's value in it.

    Offsets are computed while the text is built, never searched for afterwards: the same value word
    may appear in several facts (or inside another word), and only the asked fact's one is the answer.
    """
    parts: list[str] = []
    starts: list[int] = []
    length = 0
    for rel, entity, value in facts:
        prefix = _fact_prefix(_RELATIONS[rel][0], entity) + " "
        sep = " " if parts else ""
        starts.append(length + len(sep) + len(prefix))
        fact = f"{sep}{prefix}{value} ."
        parts.append(fact)
        length += len(fact)
    return "".join(parts), starts


def _qa_example(rng: random.Random, unanswerable_fraction: float = 0.0) -> dict:
    """One QA row without its ``id``; unanswerable with probability ``unanswerable_fraction``."""
    facts, asked = _context(rng)
    context, starts = _render(facts)
    rel, entity, value = facts[asked]
    relation, entities, _, wh = _RELATIONS[rel]
    title_entity = facts[0][1]
    answers = {"text": [value], "answer_start": [starts[asked]]}
    # Only draw when asked to: with a fraction of 0 the random stream (hence every row) is unchanged.
    if unanswerable_fraction and rng.random() < unanswerable_fraction:
        # Ask the same relation of an entity the context states it for nowhere. The context still
        # states it for the original entity (and maybe a distractor), so the relation alone does not
        # tell answerable from unanswerable questions: the entity must be matched.
        stated = {e for r, e, _ in facts if r == rel}
        entity = rng.choice([e for e in entities if e not in stated])
        answers = {"text": [], "answer_start": []}
    return {
        "title": title_entity.removeprefix("the "),
        "context": context,
        "question": f"{wh} is the {relation} of {entity} ?",
        "answers": answers,
    }


def generate_qa(n: int, seed: int, unanswerable_fraction: float = 0.0) -> list[dict]:
    """SQuAD-v1.1-like rows ``{"id", "title", "context", "question", "answers"}`` (SQuAD v2.0-like
    with ``unanswerable_fraction > 0``).

    ``answers`` is ``{"text": [value], "answer_start": [offset]}`` where ``offset`` is the character
    offset of the value inside the asked fact (``context[offset:offset + len(value)] == value``).
    Contexts hold 3 to 5 facts (under 60 words); questions read ``what|who is the <relation> of
    <entity> ?``. An unanswerable question asks a relation the context states, but of an entity it
    does not state it for; its ``answers`` is ``{"text": [], "answer_start": []}``, as in SQuAD v2.0.

    Args:
        n: number of rows.
        seed: seed of the generator; ids are ``q<seed>-<i>``, unique within one call.
        unanswerable_fraction: probability that a row is unanswerable, in ``[0, 1)`` (default 0: the
            rows are exactly those of the v1.1-like generator).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= unanswerable_fraction < 1:
        raise ValueError(f"unanswerable_fraction must be in [0, 1), got {unanswerable_fraction}")
    rng = random.Random(seed)
    return [{"id": f"q{seed}-{i}", **_qa_example(rng, unanswerable_fraction)} for i in range(n)]


# ---------------------------------------------------------------------------------------------------
# Corpus and vocabulary
# ---------------------------------------------------------------------------------------------------


def generate_corpus(n: int, seed: int) -> list[str]:
    """Text lines for masked-LM pretraining: review sentences and QA contexts, mixed.

    Args:
        n: number of lines.
        seed: seed of the generator. The corpus uses its own derived random stream, so it is not a
            copy of the classification or QA rows generated with the same seed.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    # A string seed is hashed with sha512 by random.Random: stable across runs and processes.
    rng = random.Random(f"corpus-{seed}")
    lines = []
    for _ in range(n):
        if rng.random() < _CORPUS_REVIEW_RATE:
            lines.append(_review(rng)[0])
        else:
            lines.append(_render(_context(rng)[0])[0])
    return lines


def words() -> list[str]:
    """Every whitespace-separated token any generator can emit, sorted and de-duplicated."""
    phrases = [
        *_DETERMINERS, *_MODIFIERS, *_NOUNS, *_VERBS, *_POSITIVE, *_NEGATIVE, *_ADVERBS_ANY,
        *_ADVERBS_PLAIN, *_CONNECTORS, *_OPENERS, *_CLOSERS, "not", ".",
    ]
    for relation, entities, values, wh in _RELATIONS:
        # Fact and question templates: "the <relation> of <entity> is <value> ." / "<wh> is ... ?"
        phrases += ["the", relation, "of", "is", *entities, *values, wh, "?"]
    return sorted({token for phrase in phrases for token in phrase.split()})
