"""The one residual-stream recorder: forward hooks that hand each state to a callback as the forward makes it.

Extraction (`activations.extract`) and the logit lens (`lens.decode`) both read the residual stream this way
rather than through `output_hidden_states`: hooks do not depend on transformers' convention for the last entry
(≥5 replaces it by the post-final-norm state unless `config.tie_last_hidden_states=False`), and each float32
state can be consumed and freed as the forward goes on.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

StateCallback = Callable[[int, torch.Tensor], None]


def _first(output: torch.Tensor | tuple) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def residual_hooks(blocks: Sequence[nn.Module], on_state: StateCallback, *, final_norm: nn.Module | None = None,
                   attentions: Sequence[nn.Module] | None = None,
                   on_attention: StateCallback | None = None) -> Iterator[None]:
    """Hook `blocks` for the one forward run inside the context.

    `on_state(k, state)` receives layer 0 (the first block's input: the embeddings, plus positions for GPT-2,
    what transformers records as `hidden_states[0]`), then layer k = the output of block k, before any final
    norm, then, when `final_norm` is given, its output as layer n+1. `on_attention(k, out)` receives what the
    attention of block k writes into the residual stream (the sub-block lens). Layers are counted in forward
    order, so a block shared by every layer (ALBERT) gives one state per layer it serves.
    """
    if (attentions is None) != (on_attention is None):
        raise ValueError("attentions and on_attention go together")
    outputs = 0  # block outputs seen so far in this forward: the next state's layer minus one

    def block_input(_module, args, kwargs) -> None:
        nonlocal outputs
        if outputs == 0:  # a shared block is entered once per layer: only the first entry is layer 0
            on_state(0, kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])

    def block_output(_module, _args, output) -> None:
        nonlocal outputs
        outputs += 1
        on_state(outputs, _first(output))

    def attention_output(_module, _args, output) -> None:
        on_attention(outputs + 1, _first(output))

    def norm_output(_module, _args, output) -> None:
        on_state(outputs + 1, _first(output))

    handles = [blocks[0].register_forward_pre_hook(block_input, with_kwargs=True)]
    if attentions is not None:
        handles += [attention.register_forward_hook(attention_output) for attention in dict.fromkeys(attentions)]
    # one hook per distinct module: a shared block fires once per layer it serves, in forward order
    handles += [block.register_forward_hook(block_output) for block in dict.fromkeys(blocks)]
    if final_norm is not None:
        handles.append(final_norm.register_forward_hook(norm_output))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
