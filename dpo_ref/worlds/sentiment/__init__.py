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

:func:`build_sentiment_world` assembles the pieces in this order into one
:class:`SentimentWorld` (:mod:`dpo_ref.worlds.sentiment.recipe`), as the experiments
and the examples use it.

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

from dpo_ref.worlds.sentiment.evaluation import *  # noqa: F403
from dpo_ref.worlds.sentiment.evaluation import __all__ as _evaluation_names
from dpo_ref.worlds.sentiment.grammar import *  # noqa: F403  (the public names of each part)
from dpo_ref.worlds.sentiment.grammar import __all__ as _grammar_names
from dpo_ref.worlds.sentiment.recipe import *  # noqa: F403
from dpo_ref.worlds.sentiment.recipe import __all__ as _recipe_names
from dpo_ref.worlds.sentiment.world import *  # noqa: F403
from dpo_ref.worlds.sentiment.world import __all__ as _world_names

__all__ = [*_grammar_names, *_world_names, *_evaluation_names, *_recipe_names]
