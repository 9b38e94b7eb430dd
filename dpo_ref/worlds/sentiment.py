"""The sentiment world: the analogue of the DPO paper's IMDb experiment, built locally.

DPO paper (arXiv 2305.18290), section 6.1, "controlled sentiment generation": prompts
are IMDb review prefixes of 2 to 8 tokens, the policy must continue them with positive
sentiment, and a sentiment classifier is the ground-truth reward. Nothing may be
downloaded here, so every piece is rebuilt at laptop scale:

==================  =========================================  ===================================
piece               the paper                                  here
==================  =========================================  ===================================
corpus              IMDb reviews                               :func:`generate_corpus`, a seeded
                                                               grammar of short reviews
tokenizer           GPT-2's BPE                                :func:`build_tokenizer`, word level
SFT / reference     gpt2-large fine-tuned on IMDb              a tiny GPT-2 trained on the corpus
judge (r*)          siebert/sentiment-roberta-large-english    VADER's compound score
                                                               (:class:`VaderJudge`)
prompts             prefixes of 2 to 8 tokens                  :func:`make_prompts`, the same
pairs               4 samples per prefix, 6 pairs, labelled    :func:`preference_pairs`, the same
                    by the classifier
evaluation          reward and KL from samples                 :func:`evaluate_policy`,
                                                               :func:`win_rates`
==================  =========================================  ===================================

The judge is VADER (Hutto and Gilbert, ICWSM 2014; the ``vaderSentiment`` package,
which ships its lexicon): a rule-based scorer that no one in this project wrote or
tuned, so the policy cannot be fitted to the judge by construction. Its compound score
lies in [-1, 1].

**What the judge reads.** The reward is VADER's compound score of the *whole review*,
prompt followed by completion, decoded to text. Two reasons. First, a reader judges
the review, not the second half of it: the prefix ``"the plot was not"`` followed by
``"good ."`` is a negative review, while VADER on the completion alone would call
``"good ."`` positive; VADER's negation and "but" rules only see across the boundary
when the prefix is included. Second, every completion of one prompt shares the same
prefix, so preference pairs (always within one prompt) still compare only what the
policy chose. The cost is that a strongly worded prefix moves the baseline of its
prompt, which is why rewards are compared within prompts (pairs, win rates) or
averaged over the same held-out prompts for every method.

**The grammar.** A review is two to four sentences. It has a latent overall polarity
(positive or negative, equally likely); each opinion sentence agrees with it with
probability ``agreement`` and a fifth of the sentences are neutral (when and where it
was watched, how long it runs). Sentences come from a dozen structures (plain
judgements, "what a ... !", "i would never recommend it", "not bad", "... , but ...",
boosters such as "very" and "incredibly"), and opinion words come from lists of
positive and negative adjectives, verbs, nouns and reactions, each checked against
VADER's lexicon (see :func:`check_vocabulary`). Neutral words are absent from the
lexicon. So the sentiment of a continuation is entirely a matter of which words the
model picks, and after any prefix the reference model can still go either way.

**Sequences.** Text is lower case, words and punctuation separated by single spaces,
so the word-level tokenizer round-trips it exactly. As in :mod:`dpo_ref.models`, no
special token is added automatically: a training sequence is the review's words
followed by ``<eos>``; prompts are the first 2 to 8 words; completions are the rest
(strings start with a space and carry no EOS, TRL's convention; trainers append it).
``<bos>`` is in the vocabulary for tools that expect one but is never prepended, so a
prompt tokenized by any pipeline gives the same ids.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from dpo_ref.logps import IGNORE_INDEX, sequence_logps

__all__ = [
    "PAD_TOKEN",
    "BOS_TOKEN",
    "EOS_TOKEN",
    "UNK_TOKEN",
    "generate_review",
    "generate_corpus",
    "grammar_words",
    "check_vocabulary",
    "build_tokenizer",
    "VaderJudge",
    "Prompt",
    "make_prompts",
    "Samples",
    "sample_completions",
    "completion_logps",
    "preference_pairs",
    "SampledEstimate",
    "mean_and_stderr",
    "evaluate_policy",
    "win_rates",
]

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)  # ids 0, 1, 2, 3

# --------------------------------------------------------------------------- vocabulary
# Opinion words carry a VADER valence of the stated sign; neutral words are absent from
# VADER's lexicon. check_vocabulary() verifies both, and the tests call it.

POSITIVE_ADJECTIVES = (
    "great", "wonderful", "superb", "brilliant", "excellent", "amazing", "good", "nice",
    "lovely", "beautiful", "charming", "delightful", "enjoyable", "fun", "clever",
    "gorgeous", "perfect", "powerful", "impressive", "sweet", "inspiring", "entertaining",
    "engaging", "thrilling", "exciting", "elegant", "pleasant", "fantastic", "awesome",
    "outstanding", "terrific", "magnificent", "marvelous", "remarkable", "satisfying",
    "flawless",
)  # fmt: skip
NEGATIVE_ADJECTIVES = (
    "bad", "awful", "terrible", "horrible", "boring", "dull", "weak", "poor", "lame",
    "stupid", "ugly", "painful", "annoying", "dreadful", "pathetic", "ridiculous",
    "messy", "disappointing", "confusing", "lazy", "fake", "miserable", "unpleasant",
    "tired", "wrong", "dumb", "idiotic", "hopeless", "useless", "worthless",
    "embarrassing",
)  # fmt: skip
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
    "plot", "story", "acting", "cast", "script", "ending", "music", "score", "dialogue",
    "pacing", "cinematography", "soundtrack", "editing", "lighting", "sound", "design",
    "casting", "tone", "finale", "opening", "writing", "premise", "atmosphere", "camera",
    "lead", "direction", "photography",
)  # fmt: skip
FILMS = ("film", "movie", "picture", "feature", "sequel", "remake", "documentary", "western", "musical", "drama")
NEUTRAL_ADJECTIVES = ("long", "short", "slow", "fast", "loud", "quiet", "dark", "old", "new", "simple", "familiar")
COMPANIONS = (
    ("my", "wife"), ("my", "husband"), ("my", "brother"), ("my", "sister"), ("my", "kids"),
    ("my", "parents"), ("my", "roommate"), ("a", "colleague"), ("my", "cousin"), ("my", "uncle"),
)  # fmt: skip
TIMES = (
    ("last", "night"), ("on", "sunday"), ("on", "saturday"), ("on", "tuesday"),
    ("this", "weekend"), ("in", "the", "afternoon"), ("last", "week"),
)  # fmt: skip
PLACES = (
    ("at", "the", "cinema"), ("at", "home"), ("on", "a", "plane"), ("on", "the", "train"),
    ("at", "the", "theater"), ("on", "my", "laptop"),
)  # fmt: skip
DURATIONS = (("two", "hours"), ("ninety", "minutes"), ("three", "hours"), ("an", "hour"))
SETTINGS = (
    ("london",), ("paris",), ("a", "small", "town"), ("a", "village"), ("the", "desert"),
    ("space",), ("the", "future"), ("the", "past"), ("a", "big", "city"),
)  # fmt: skip
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
        raise ValueError(f"n_reviews must be a positive int, got {n_reviews!r}")
    rng = random.Random(seed)
    return [generate_review(rng, agreement=agreement, neutral_rate=neutral_rate) for _ in range(n_reviews)]


def grammar_words() -> list[str]:
    """Every word the grammar can emit, sorted: the tokenizer's vocabulary (after the specials)."""
    words = {"the", "was", "and", "were", "i", "this", "what", "a", "!", "it", "is", "with", "made", "me",
             "feel", "from", "start", "to", "finish", "would", ",", "but", ".", "not", "watched", "saw",
             "runs", "for", "set", "in", "based", "on"}  # fmt: skip
    flat_lists = (
        POSITIVE_ADJECTIVES, NEGATIVE_ADJECTIVES, POSITIVE_VERBS, NEGATIVE_VERBS, POSITIVE_NOUNS,
        NEGATIVE_NOUNS, POSITIVE_FEELINGS, NEGATIVE_FEELINGS, POSITIVE_REACTIONS, NEGATIVE_REACTIONS,
        POSITIVE_OPENERS, NEGATIVE_OPENERS, BOOSTERS, ASPECTS, FILMS, NEUTRAL_ADJECTIVES, SOURCES,
    )  # fmt: skip
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
    lexicon = _analyzer().lexicon
    signed = {
        +1: POSITIVE_ADJECTIVES + POSITIVE_VERBS + POSITIVE_NOUNS + POSITIVE_FEELINGS + POSITIVE_REACTIONS
        + POSITIVE_OPENERS,
        -1: NEGATIVE_ADJECTIVES + NEGATIVE_VERBS + NEGATIVE_NOUNS + NEGATIVE_FEELINGS + NEGATIVE_REACTIONS
        + NEGATIVE_OPENERS,
    }  # fmt: skip
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


# --------------------------------------------------------------------------- judge


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


class VaderJudge:
    """The ground-truth reward r*(x, y): VADER's compound score of ``prompt + completion``.

    Callable on a list of full texts (prompt and completion already joined, see the
    module docstring for why the prompt is included); returns a float per text in
    [-1, 1]. VADER is deterministic and needs no model, so the judge holds no state.
    """

    name = "vader_compound"

    def __call__(self, texts: Sequence[str]) -> list[float]:
        analyzer = _analyzer()
        return [analyzer.polarity_scores(text)["compound"] for text in texts]

    def score(self, prompt: str, completion: str) -> float:
        """The reward of one completion of one prompt."""
        return self([join_text(prompt, completion)])[0]


def join_text(prompt: str, completion: str) -> str:
    """The review as a reader sees it: prompt and completion joined by one space."""
    return f"{prompt} {completion.strip()}".strip()


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """A review prefix: its text and its token ids (no special token)."""

    text: str
    ids: tuple[int, ...]


def make_prompts(
    reviews: Sequence[str],
    tokenizer: PreTrainedTokenizerFast,
    *,
    seed: int,
    min_tokens: int = 2,
    max_tokens: int = 8,
) -> list[Prompt]:
    """One prompt per review: its first ``k`` tokens, ``k`` uniform in [min_tokens, max_tokens].

    The paper's IMDb prompts are prefixes of 2 to 8 tokens (DPO paper, section 6.1).
    A review shorter than ``k + 1`` words keeps at least one word for the completion.
    """
    if not 1 <= min_tokens <= max_tokens:
        raise ValueError(f"need 1 <= min_tokens <= max_tokens, got {min_tokens} and {max_tokens}")
    rng = random.Random(seed)
    prompts = []
    for review in reviews:
        words = review.split()
        k = min(rng.randint(min_tokens, max_tokens), len(words) - 1)
        if k < 1:
            raise ValueError(f"review {review!r} is too short to split into a prompt and a completion")
        text = " ".join(words[:k])
        ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
        prompts.append(Prompt(text=text, ids=ids))
    return prompts


# --------------------------------------------------------------------------- sampling


@dataclass
class Samples:
    """Completions sampled for a list of prompts, ``num_samples`` per prompt, prompt-major.

    ``prompt_index[i]`` is the prompt of completion ``i``; ``completion_ids[i]`` its
    token ids, ending with EOS unless the length limit cut it (``truncated[i]``).
    """

    prompt_index: list[int]
    completion_ids: list[list[int]]
    truncated: list[bool]

    def __len__(self) -> int:
        return len(self.completion_ids)


@torch.no_grad()
def sample_completions(
    model: torch.nn.Module,
    prompts: Sequence[Prompt],
    *,
    num_samples: int,
    temperature: float,
    max_new_tokens: int,
    eos_token_id: int,
    seed: int,
    batch_size: int = 512,
) -> Samples:
    """Sample ``num_samples`` completions of every prompt from ``model``, with a KV cache.

    Plain ancestral sampling from ``softmax(logits / temperature)``: no top-k, no top-p,
    so at temperature 1 the completions are samples of pi(y|x) itself, which is what the
    KL estimate in :func:`evaluate_policy` needs. Temperature 0 is greedy decoding.
    A completion stops at EOS (kept) or after ``max_new_tokens`` tokens.

    Prompts of equal length are batched together, so no padding enters the model and
    position ids are simply those of the sequence. Randomness comes from a
    ``torch.Generator`` seeded with ``seed``: the same seed, model and prompts give the
    same completions, and the global RNG is untouched.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()

    rows = [(p, s) for p in range(len(prompts)) for s in range(num_samples)]  # prompt-major
    completions: list[list[int] | None] = [None] * len(rows)
    truncated = [False] * len(rows)
    by_length: dict[int, list[int]] = {}
    for row, (p, _) in enumerate(rows):
        by_length.setdefault(len(prompts[p].ids), []).append(row)

    for length in sorted(by_length):
        group = by_length[length]
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            input_ids = torch.tensor([prompts[rows[r][0]].ids for r in chunk], device=device)  # (b, Lp)
            tokens, done = _sample_batch(model, input_ids, temperature, max_new_tokens, eos_token_id, generator)
            for r, row_tokens, row_done in zip(chunk, tokens.tolist(), done.tolist()):
                if eos_token_id in row_tokens:
                    row_tokens = row_tokens[: row_tokens.index(eos_token_id) + 1]
                completions[r] = row_tokens
                truncated[r] = not row_done
    model.train(was_training)
    return Samples(prompt_index=[p for p, _ in rows], completion_ids=completions, truncated=truncated)


def _sample_batch(model, input_ids, temperature, max_new_tokens, eos_token_id, generator):
    """Sample continuations of equal-length prompts; returns ``(tokens (b, n), finished (b,))``."""
    # transformers 5 names the KV cache `cache` (`past_key_values` is deprecated).
    # Nothing is padded; the all-ones mask only tells transformers so (a sampled <pad> is a
    # token like any other here, and KL estimates need the model's own distribution).
    attention_mask = torch.ones_like(input_ids)
    out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True, logits_to_keep=1)
    cache, logits = out.cache, out.logits[:, -1, :]  # (b, V)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    steps = []
    for _ in range(max_new_tokens):
        if temperature == 0:
            token = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (b,)
        token = token.masked_fill(finished, eos_token_id)  # after EOS: filler, cut later
        steps.append(token)
        finished |= token == eos_token_id
        if bool(finished.all()):
            break
        attention_mask = torch.cat([attention_mask, attention_mask[:, :1]], dim=1)  # (b, Lp + t + 1)
        out = model(input_ids=token[:, None], attention_mask=attention_mask, cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1, :]
    return torch.stack(steps, dim=1), finished


def decode(tokenizer: PreTrainedTokenizerFast, ids: Sequence[int]) -> str:
    """Token ids to text without special tokens."""
    return tokenizer.decode(list(ids), skip_special_tokens=True)


def _prompt_completion_batch(prompts, samples: Samples, pad_token_id: int, device):
    """Right-padded ``(input_ids, attention_mask, labels)`` for prompt + completion, prompt masked."""
    sequences, label_rows = [], []
    for p, completion in zip(samples.prompt_index, samples.completion_ids):
        prompt_ids = list(prompts[p].ids)
        sequences.append(prompt_ids + completion)
        label_rows.append([IGNORE_INDEX] * len(prompt_ids) + completion)
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    labels = torch.full((len(sequences), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, (seq, lab) in enumerate(zip(sequences, label_rows)):
        input_ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention_mask[i, : len(seq)] = 1
    return input_ids.to(device), attention_mask.to(device), labels.to(device)


@torch.no_grad()
def completion_logps(
    model: torch.nn.Module,
    prompts: Sequence[Prompt],
    samples: Samples,
    *,
    pad_token_id: int,
    batch_size: int = 256,
) -> torch.Tensor:
    """Summed log pi(y|x) of every sampled completion (EOS included), shape ``(N,)``, on CPU.

    Scored by teacher forcing through :func:`dpo_ref.logps.sequence_logps`, the one
    place where logits become log-probs, at temperature 1 whatever the samples were
    drawn at.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    input_ids, attention_mask, labels = _prompt_completion_batch(prompts, samples, pad_token_id, device)
    parts = []
    for start in range(0, input_ids.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        logits = model(input_ids=input_ids[sl], attention_mask=attention_mask[sl]).logits  # (b, T, V)
        parts.append(sequence_logps(logits, labels[sl]).cpu())
    model.train(was_training)
    return torch.cat(parts)


def completion_texts(tokenizer, prompts: Sequence[Prompt], samples: Samples) -> list[str]:
    """Decoded completions, each starting with a space (TRL's convention), without EOS."""
    return [" " + decode(tokenizer, ids) for ids in samples.completion_ids]


# --------------------------------------------------------------------------- pairs


def preference_pairs(
    prompts: Sequence[Prompt],
    completions: Sequence[str],
    rewards: Sequence[float],
    *,
    samples_per_prompt: int,
) -> tuple[list[dict], int]:
    """All pairs among the completions of each prompt, labelled by the judge's reward.

    As in the DPO paper's IMDb experiment: ``samples_per_prompt`` = 4 completions per
    prefix give C(4, 2) = 6 pairs, the higher reward being ``chosen``. A pair whose two
    rewards are equal carries no preference and is dropped (VADER gives many exact ties,
    for instance two completions without sentiment words both score 0); two identical
    completions are dropped too, and so is a pair with an empty completion (the model
    ended the review at once), which a preference dataset cannot hold. ``completions``
    and ``rewards`` are prompt-major, as :func:`sample_completions` returns them.

    Returns:
        ``(pairs, dropped)``: rows ``{"prompt", "chosen", "rejected", "chosen_reward",
        "rejected_reward"}`` in TRL's column convention, and the counts of dropped pairs
        ``{"ties": ..., "empty": ...}``.
    """
    n = samples_per_prompt
    if len(completions) != len(prompts) * n or len(rewards) != len(completions):
        raise ValueError(
            f"expected {len(prompts)} x {n} completions and rewards, got {len(completions)} and {len(rewards)}"
        )
    pairs, dropped = [], {"ties": 0, "empty": 0}
    for p, prompt in enumerate(prompts):
        for i in range(n):
            for j in range(i + 1, n):
                a, b = p * n + i, p * n + j
                if not completions[a].strip() or not completions[b].strip():
                    dropped["empty"] += 1
                    continue
                if rewards[a] == rewards[b] or completions[a] == completions[b]:
                    dropped["ties"] += 1
                    continue
                win, lose = (a, b) if rewards[a] > rewards[b] else (b, a)
                pairs.append(
                    {
                        "prompt": prompt.text,
                        "chosen": completions[win],
                        "rejected": completions[lose],
                        "chosen_reward": float(rewards[win]),
                        "rejected_reward": float(rewards[lose]),
                    }
                )
    return pairs, dropped


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class SampledEstimate:
    """A Monte Carlo mean with its standard error (sample std / sqrt(n)) and sample count."""

    mean: float
    stderr: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "stderr": self.stderr, "n": self.n}


def mean_and_stderr(values: torch.Tensor | Sequence[float]) -> SampledEstimate:
    """Mean and standard error of i.i.d. samples (unbiased variance; stderr 0 for one sample)."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = x.numel()
    if n == 0:
        raise ValueError("cannot estimate a mean from zero samples")
    stderr = float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0
    return SampledEstimate(mean=float(x.mean()), stderr=stderr, n=n)


@torch.no_grad()
def evaluate_policy(
    policy: torch.nn.Module,
    reference: torch.nn.Module,
    prompts: Sequence[Prompt],
    tokenizer: PreTrainedTokenizerFast,
    judge: Callable[[Sequence[str]], list[float]],
    *,
    num_samples: int,
    max_new_tokens: int,
    seed: int,
) -> dict:
    """Expected reward and KL(pi || pi_ref), both estimated from samples of the policy.

    The sequence-level KL is estimated by its definition,

    .. math::

        \\mathrm{KL}(\\pi \\| \\pi_{\\text{ref}}) = \\mathbb E_{x}\\,\\mathbb E_{y \\sim \\pi(\\cdot|x)}
        \\Big[\\log \\frac{\\pi(y|x)}{\\pi_{\\text{ref}}(y|x)}\\Big]
        \\approx \\frac1N \\sum_i \\log \\frac{\\pi(y_i|x_i)}{\\pi_{\\text{ref}}(y_i|x_i)},

    with completions drawn at temperature 1 (samples of pi itself) and both log-probs
    summed over the completion tokens, EOS included. The estimate is unbiased, but single
    terms can be negative; its standard error says how far to trust it. A completion cut
    at ``max_new_tokens`` counts as the event "these first tokens", whose probability is
    the product of the same per-token factors, so the estimate is the exact KL of the
    length-limited sampling process.

    Returns:
        ``{"reward": {...}, "kl": {...}, "length": {...}, "truncated_fraction": float}``,
        each estimate as ``{"mean", "stderr", "n"}``.
    """
    samples = sample_completions(
        policy, prompts, num_samples=num_samples, temperature=1.0, max_new_tokens=max_new_tokens,
        eos_token_id=tokenizer.eos_token_id, seed=seed,
    )  # fmt: skip
    pad = tokenizer.pad_token_id
    log_ratio = completion_logps(policy, prompts, samples, pad_token_id=pad) - completion_logps(
        reference, prompts, samples, pad_token_id=pad
    )
    completions = completion_texts(tokenizer, prompts, samples)
    texts = [join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, completions)]
    rewards = judge(texts)
    return {
        "reward": mean_and_stderr(rewards).as_dict(),
        "kl": mean_and_stderr(log_ratio).as_dict(),
        "length": mean_and_stderr([len(c) for c in samples.completion_ids]).as_dict(),
        "truncated_fraction": sum(samples.truncated) / len(samples),
        "example": texts[0],
    }


@torch.no_grad()
def win_rates(
    policy: torch.nn.Module,
    baseline: torch.nn.Module,
    prompts: Sequence[Prompt],
    tokenizer: PreTrainedTokenizerFast,
    judge: Callable[[Sequence[str]], list[float]],
    *,
    temperatures: Sequence[float],
    max_new_tokens: int,
    seed: int,
    baseline_rewards: dict[float, list[float]] | None = None,
) -> dict[str, dict]:
    """Win rate of ``policy`` against ``baseline`` on the same prompts, per sampling temperature.

    For each prompt and temperature, one completion from each model; the judge scores
    both whole reviews and the higher score wins (a tie counts one half). This mirrors
    the DPO paper's temperature sweeps (section 6.2), with VADER in the role GPT-4 plays
    there. ``baseline_rewards`` (temperature -> rewards) skips re-sampling the baseline
    when several policies face the same one; see :func:`judge_samples`.

    Returns:
        ``{str(temperature): {"win_rate", "stderr", "policy_reward", "baseline_reward"}}``.
    """
    results = {}
    for temperature in temperatures:
        policy_scores = judge_samples(policy, prompts, tokenizer, judge, temperature=temperature,
                                      max_new_tokens=max_new_tokens, seed=seed)  # fmt: skip
        if baseline_rewards is not None and temperature in baseline_rewards:
            base_scores = baseline_rewards[temperature]
        else:
            base_scores = judge_samples(baseline, prompts, tokenizer, judge, temperature=temperature,
                                        max_new_tokens=max_new_tokens, seed=seed + 1)  # fmt: skip
        outcomes = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(policy_scores, base_scores)]
        estimate = mean_and_stderr(outcomes)
        results[f"{temperature:g}"] = {
            "win_rate": estimate.mean,
            "stderr": estimate.stderr,
            "n": estimate.n,
            "policy_reward": sum(policy_scores) / len(policy_scores),
            "baseline_reward": sum(base_scores) / len(base_scores),
        }
    return results


def judge_samples(
    model, prompts, tokenizer, judge, *, temperature: float, max_new_tokens: int, seed: int
) -> list[float]:
    """Sample one completion per prompt at ``temperature`` and return the judge's scores."""
    samples = sample_completions(
        model, prompts, num_samples=1, temperature=temperature, max_new_tokens=max_new_tokens,
        eos_token_id=tokenizer.eos_token_id, seed=seed,
    )  # fmt: skip
    texts = completion_texts(tokenizer, prompts, samples)
    return judge([join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, texts)])
