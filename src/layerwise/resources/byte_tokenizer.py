"""A byte-level tokenizer that needs no hub: one token per UTF-8 byte.

Random test models and our own trained checkpoints use it, so every offline path has a
real Hugging Face tokenizer (saved next to the weights, loadable with AutoTokenizer).
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>",
                  "unk_token": "<unk>", "mask_token": "<mask>"}


def make_byte_tokenizer() -> PreTrainedTokenizerFast:
    """Return a fast tokenizer with 256 byte tokens followed by 5 special tokens (vocab 261)."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for tok in SPECIAL_TOKENS.values():
        vocab[tok] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=SPECIAL_TOKENS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=1024, **SPECIAL_TOKENS)
    return tok
