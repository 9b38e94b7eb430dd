"""The sentiment world's text: a seeded grammar of short movie reviews, and its tokenizer.

A review is two to four sentences around a latent polarity; opinion words come from
lists checked against VADER's lexicon (:func:`check_vocabulary`), neutral words are
absent from it. The word-level tokenizer (:func:`build_tokenizer`) covers exactly the
grammar's words. See :mod:`dpo_ref.worlds.sentiment` for the whole world.
"""

from __future__ import annotations

import random

from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from dpo_ref.errors import UserError

__all__ = [
    "PAD_TOKEN",
    "BOS_TOKEN",
    "EOS_TOKEN",
    "UNK_TOKEN",
    "SPECIAL_TOKENS",
    "POSITIVE_ADJECTIVES",
    "NEGATIVE_ADJECTIVES",
    "generate_review",
    "generate_corpus",
    "grammar_words",
    "check_vocabulary",
    "build_tokenizer",
]

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<bos>", "<eos>", "<unk>"
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)  # ids 0, 1, 2, 3

# --------------------------------------------------------------------------- vocabulary
# Opinion words carry a VADER valence of the stated sign; neutral words are absent from
# VADER's lexicon. check_vocabulary() verifies both, and the tests call it.

POSITIVE_ADJECTIVES = (
    "great",
    "wonderful",
    "superb",
    "brilliant",
    "excellent",
    "amazing",
    "good",
    "nice",
    "lovely",
    "beautiful",
    "charming",
    "delightful",
    "enjoyable",
    "fun",
    "clever",
    "gorgeous",
    "perfect",
    "powerful",
    "impressive",
    "sweet",
    "inspiring",
    "entertaining",
    "engaging",
    "thrilling",
    "exciting",
    "elegant",
    "pleasant",
    "fantastic",
    "awesome",
    "outstanding",
    "terrific",
    "magnificent",
    "marvelous",
    "remarkable",
    "satisfying",
    "flawless",
)
NEGATIVE_ADJECTIVES = (
    "bad",
    "awful",
    "terrible",
    "horrible",
    "boring",
    "dull",
    "weak",
    "poor",
    "lame",
    "stupid",
    "ugly",
    "painful",
    "annoying",
    "dreadful",
    "pathetic",
    "ridiculous",
    "messy",
    "disappointing",
    "confusing",
    "lazy",
    "fake",
    "miserable",
    "unpleasant",
    "tired",
    "wrong",
    "dumb",
    "idiotic",
    "hopeless",
    "useless",
    "worthless",
    "embarrassing",
)
POSITIVE_VERBS = ("loved", "enjoyed", "liked", "adored", "admired")
NEGATIVE_VERBS = ("hated", "disliked", "despised", "loathed", "regretted")
POSITIVE_NOUNS = ("masterpiece", "triumph", "treat", "delight", "joy")
NEGATIVE_NOUNS = ("mess", "disaster", "failure", "waste", "flop", "bore")
POSITIVE_FEELINGS = ("happy", "glad", "cheerful", "pleased", "proud", "thrilled", "satisfied")
NEGATIVE_FEELINGS = ("sad", "angry", "bored", "annoyed", "upset", "frustrated", "disgusted")
POSITIVE_REACTIONS = ("smile", "laugh", "cheer", "grin")
NEGATIVE_REACTIONS = ("cry",)
POSITIVE_OPENERS = ("luckily", "happily")
NEGATIVE_OPENERS = ("sadly", "unfortunately")
POSITIVE_RECOMMEND = (("gladly", "recommend"), ("happily", "recommend"), ("recommend",))
NEGATIVE_RECOMMEND = (("never", "recommend"), ("not", "recommend"))
# VADER scales the next sentiment word up; not in the lexicon themselves.
BOOSTERS = ("very", "really", "extremely", "quite", "incredibly", "totally", "absolutely", "so")

ASPECTS = (
    "plot",
    "story",
    "acting",
    "cast",
    "script",
    "ending",
    "music",
    "score",
    "dialogue",
    "pacing",
    "cinematography",
    "soundtrack",
    "editing",
    "lighting",
    "sound",
    "design",
    "casting",
    "tone",
    "finale",
    "opening",
    "writing",
    "premise",
    "atmosphere",
    "camera",
    "lead",
    "direction",
    "photography",
)
FILMS = ("film", "movie", "picture", "feature", "sequel", "remake", "documentary", "western", "musical", "drama")
NEUTRAL_ADJECTIVES = ("long", "short", "slow", "fast", "loud", "quiet", "dark", "old", "new", "simple", "familiar")
COMPANIONS = (
    ("my", "wife"),
    ("my", "husband"),
    ("my", "brother"),
    ("my", "sister"),
    ("my", "kids"),
    ("my", "parents"),
    ("my", "roommate"),
    ("a", "colleague"),
    ("my", "cousin"),
    ("my", "uncle"),
)
TIMES = (
    ("last", "night"),
    ("on", "sunday"),
    ("on", "saturday"),
    ("on", "tuesday"),
    ("this", "weekend"),
    ("in", "the", "afternoon"),
    ("last", "week"),
)
PLACES = (
    ("at", "the", "cinema"),
    ("at", "home"),
    ("on", "a", "plane"),
    ("on", "the", "train"),
    ("at", "the", "theater"),
    ("on", "my", "laptop"),
)
DURATIONS = (("two", "hours"), ("ninety", "minutes"), ("three", "hours"), ("an", "hour"))
SETTINGS = (
    ("london",),
    ("paris",),
    ("a", "small", "town"),
    ("a", "village"),
    ("the", "desert"),
    ("space",),
    ("the", "future"),
    ("the", "past"),
    ("a", "big", "city"),
)
SOURCES = ("book", "comic", "story", "memoir", "script")

Polarity = int  # +1 positive, -1 negative, 0 neutral
Words = list[str]


def _opinion(rng: random.Random, polarity: Polarity) -> Words:
    """One opinion sentence whose VADER sign is ``polarity`` (a handful of structures)."""
    pos = polarity > 0
    adjectives = POSITIVE_ADJECTIVES if pos else NEGATIVE_ADJECTIVES
    opposite = NEGATIVE_ADJECTIVES if pos else POSITIVE_ADJECTIVES
    adj, aspect, film = rng.choice(adjectives), rng.choice(ASPECTS), rng.choice(FILMS)
    boost = [rng.choice(BOOSTERS)] if rng.random() < 0.3 else []
    structure = rng.randrange(12)
    if structure == 0:
        return ["the", aspect, "was", *boost, adj, "."]
    if structure == 1:
        other = rng.choice([a for a in ASPECTS if a != aspect])
        return ["the", aspect, "and", "the", other, "were", *boost, adj, "."]
    if structure == 2:
        return ["i", rng.choice(POSITIVE_VERBS if pos else NEGATIVE_VERBS), "this", film, "."]
    if structure == 3:
        return ["what", "a", *boost, adj, film, "!"]
    if structure == 4:
        return ["it", "is", "a", *boost, adj, film, "with", "a", rng.choice(adjectives), aspect, "."]
    if structure == 5:
        return ["the", film, "made", "me", "feel", rng.choice(POSITIVE_FEELINGS if pos else NEGATIVE_FEELINGS), "."]
    if structure == 6:
        return ["the", aspect, "made", "me", rng.choice(POSITIVE_REACTIONS if pos else NEGATIVE_REACTIONS), "."]
    if structure == 7:
        noun = rng.choice(POSITIVE_NOUNS if pos else NEGATIVE_NOUNS)
        return ["it", "was", "a", noun, "from", "start", "to", "finish", "."]
    if structure == 8:
        recommend = rng.choice(POSITIVE_RECOMMEND if pos else NEGATIVE_RECOMMEND)
        return ["i", "would", *recommend, "it", "to", *rng.choice(COMPANIONS), "."]
    if structure == 9:
        opener = rng.choice(POSITIVE_OPENERS if pos else NEGATIVE_OPENERS)
        return [opener, ",", "the", aspect, "was", adj, "."]
    if structure == 10:
        # VADER flips and damps a negated word: "not bad" is mildly positive.
        return ["the", aspect, "was", "not", rng.choice(opposite), "."]
    # VADER weighs the clause after "but" more: the sentence takes its sign.
    other = rng.choice([a for a in ASPECTS if a != aspect])
    return ["the", other, "was", rng.choice(opposite), ",", "but", "the", aspect, "was", *boost, adj, "."]


def _neutral(rng: random.Random) -> Words:
    """One sentence with no sentiment word at all."""
    structure = rng.randrange(6)
    if structure == 0:
        return ["i", "watched", "it", *rng.choice(TIMES), "with", *rng.choice(COMPANIONS), "."]
    if structure == 1:
        return ["i", "saw", "it", *rng.choice(PLACES), *rng.choice(TIMES), "."]
    if structure == 2:
        return ["it", "runs", "for", *rng.choice(DURATIONS), "."]
    if structure == 3:
        return ["it", "is", "set", "in", *rng.choice(SETTINGS), "."]
    if structure == 4:
        return ["the", rng.choice(ASPECTS), "is", rng.choice(NEUTRAL_ADJECTIVES), "."]
    return ["the", rng.choice(FILMS), "is", "based", "on", "a", rng.choice(SOURCES), "."]


def generate_review(rng: random.Random, *, agreement: float = 0.8, neutral_rate: float = 0.2) -> str:
    """One review: 2 to 4 sentences around a latent polarity, as space-separated lower-case words.

    Args:
        rng: the source of randomness (a seeded ``random.Random``).
        agreement: probability that an opinion sentence has the review's polarity.
            Below 1, reviews mix praise and criticism, so a prefix never settles the
            sentiment of its continuation.
        neutral_rate: probability that a sentence carries no sentiment at all.
    """
    polarity = rng.choice((1, -1))
    words: Words = []
    for _ in range(rng.randint(2, 4)):
        if rng.random() < neutral_rate:
            words += _neutral(rng)
        else:
            words += _opinion(rng, polarity if rng.random() < agreement else -polarity)
    return " ".join(words)


def generate_corpus(n_reviews: int, *, seed: int, agreement: float = 0.8, neutral_rate: float = 0.2) -> list[str]:
    """``n_reviews`` reviews from :func:`generate_review`; the same seed gives the same list."""
    if not isinstance(n_reviews, int) or n_reviews < 1:
        raise UserError(f"n_reviews must be a positive int, got {n_reviews!r}")
    rng = random.Random(seed)
    return [generate_review(rng, agreement=agreement, neutral_rate=neutral_rate) for _ in range(n_reviews)]


def grammar_words() -> list[str]:
    """Every word the grammar can emit, sorted: the tokenizer's vocabulary (after the specials)."""
    words = {
        "the",
        "was",
        "and",
        "were",
        "i",
        "this",
        "what",
        "a",
        "!",
        "it",
        "is",
        "with",
        "made",
        "me",
        "feel",
        "from",
        "start",
        "to",
        "finish",
        "would",
        ",",
        "but",
        ".",
        "not",
        "watched",
        "saw",
        "runs",
        "for",
        "set",
        "in",
        "based",
        "on",
    }
    flat_lists = (
        POSITIVE_ADJECTIVES,
        NEGATIVE_ADJECTIVES,
        POSITIVE_VERBS,
        NEGATIVE_VERBS,
        POSITIVE_NOUNS,
        NEGATIVE_NOUNS,
        POSITIVE_FEELINGS,
        NEGATIVE_FEELINGS,
        POSITIVE_REACTIONS,
        NEGATIVE_REACTIONS,
        POSITIVE_OPENERS,
        NEGATIVE_OPENERS,
        BOOSTERS,
        ASPECTS,
        FILMS,
        NEUTRAL_ADJECTIVES,
        SOURCES,
    )
    phrase_lists = (POSITIVE_RECOMMEND, NEGATIVE_RECOMMEND, COMPANIONS, TIMES, PLACES, DURATIONS, SETTINGS)
    for words_list in flat_lists:
        words.update(words_list)
    for phrases in phrase_lists:
        for phrase in phrases:
            words.update(phrase)
    return sorted(words)


def check_vocabulary() -> None:
    """Raise ``ValueError`` unless the word lists agree with VADER's lexicon.

    Positive opinion words must have a positive valence, negative ones a negative
    valence, and the neutral lists (aspects, films, companions, places, ...) none at all.
    """
    from dpo_ref.worlds.sentiment.world import vader_lexicon

    lexicon = vader_lexicon()
    signed = {
        +1: POSITIVE_ADJECTIVES
        + POSITIVE_VERBS
        + POSITIVE_NOUNS
        + POSITIVE_FEELINGS
        + POSITIVE_REACTIONS
        + POSITIVE_OPENERS,
        -1: NEGATIVE_ADJECTIVES
        + NEGATIVE_VERBS
        + NEGATIVE_NOUNS
        + NEGATIVE_FEELINGS
        + NEGATIVE_REACTIONS
        + NEGATIVE_OPENERS,
    }
    for sign, words in signed.items():
        wrong = [w for w in words if lexicon.get(w, 0.0) * sign <= 0]
        if wrong:
            raise ValueError(f"words listed with sign {sign:+d} but VADER's valence disagrees: {wrong}")
    neutral = set(ASPECTS + FILMS + NEUTRAL_ADJECTIVES + SOURCES + BOOSTERS)
    for phrases in (COMPANIONS, TIMES, PLACES, DURATIONS, SETTINGS):
        neutral.update(w for phrase in phrases for w in phrase)
    scored = sorted(w for w in neutral if w in lexicon)
    if scored:
        raise ValueError(f"words meant to be neutral carry a VADER valence: {scored}")


# --------------------------------------------------------------------------- tokenizer


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :func:`grammar_words`, built locally and deterministically.

    Ids 0 to 3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; words follow in sorted
    order, so the ids depend on the grammar only, never on which reviews were sampled.
    Text splits on whitespace and decodes by joining with single spaces, so
    ``decode(encode(text)) == text`` for every text the grammar makes. Nothing is added
    automatically (see the module docstring); padding is on the right.
    """
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in grammar_words():
        vocab[word] = len(vocab)
    tokenizer = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # Metaspace-free word pieces: joining with " " is the exact inverse of WhitespaceSplit.
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        padding_side="right",
    )
