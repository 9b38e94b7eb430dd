"""Preference data: loading, validation, tokenization and tensors.

Datasets are plain :class:`datasets.Dataset` objects in TRL's column conventions:

* **standard** pairs: ``prompt``, ``chosen``, ``rejected``, all strings. The texts are
  joined as they are (``prompt + chosen``), so a completion carries its own leading
  space, as in TRL: ``{"prompt": "The sky is", "chosen": " blue.", ...}``;
* **conversational** pairs: the same columns holding lists of ``{"role", "content"}``
  messages. The prompt is every message before the answer (it ends with the user
  turn); ``chosen`` and ``rejected`` hold only the assistant turn(s);
* **unpaired** data for KTO: ``prompt``, ``completion`` and a bool ``label`` (True for a
  desirable completion), standard or conversational. :func:`unpair_preference_dataset`
  turns pairs into it.

Every error about the data is a one-line :class:`~dpo_ref.errors.UserError` (a
``ValueError``) of the form
``row 3, field 'chosen': <what is wrong>``, where the row is the 0-based index into the
dataset (``dataset[3]``).

Tokenization choices (each one a classic source of silent DPO bugs, see the data page):

* **Boundary.** The prompt is tokenized alone and together with each completion; the
  completion starts where the two token sequences stop agreeing (TRL's rule, from
  ``trl.trainer.dpo_trainer``). Usually that is right after the prompt. When BPE merges
  a token across the boundary (a prompt ending in a space, ``"The sky is " + "blue"``),
  the merged token counts as completion and the prompt loses its last token; such rows
  are counted in ``n_boundary_mismatch`` and a warning is shown. We prefer this to
  tokenizing prompt and completion separately and concatenating, which would train the
  model on a token sequence (``" ", "blue"``) it never produces.
* **EOS.** Standard completions get the EOS id appended (unless they already end with
  it), so the model learns to stop. Conversational completions end however the chat
  template ends an assistant turn; nothing is added, as in TRL.
* **Masks.** Labels copy the input ids and put ``-100`` on prompt positions; the collator
  puts ``-100`` on padding. Masking is by position, never by token id, so an EOS that is
  also the pad token is still scored (:mod:`dpo_ref.logps` reads only the labels).
* **Truncation.** ``prompt + completion`` is cut to ``max_length`` by shortening the
  completion (its EOS goes first). A prompt longer than ``max_prompt_length`` (default
  ``max_length``) is dropped, never cut: cutting it would change the question. A prompt
  that exactly fills ``max_length`` would leave an empty completion, so that row is
  dropped too and counted as ``n_empty_after_truncation``. Both drops are counted in the
  returned :class:`TokenizationReport` and warned about; if nothing is left, it is an
  error.
"""

from dpo_ref.data.checks import (
    PAIRED_COLUMNS,
    UNPAIRED_COLUMNS,
    LengthGap,
    is_conversational,
    is_paired,
    length_gap,
    unpair_preference_dataset,
    validate_preference_dataset,
)
from dpo_ref.data.files import FILE_BUILDERS, load_preference_dataset
from dpo_ref.data.tensors import chosen_as_sft, collate_pairs, unpaired_rows
from dpo_ref.data.tokenize import TokenizationReport, ensure_pad_token, tokenize_pairs, tokenize_unpaired

__all__ = [
    "PAIRED_COLUMNS",
    "UNPAIRED_COLUMNS",
    "FILE_BUILDERS",
    "load_preference_dataset",
    "is_paired",
    "is_conversational",
    "validate_preference_dataset",
    "unpair_preference_dataset",
    "TokenizationReport",
    "ensure_pad_token",
    "tokenize_pairs",
    "tokenize_unpaired",
    "collate_pairs",
    "chosen_as_sft",
    "unpaired_rows",
    "LengthGap",
    "length_gap",
]
