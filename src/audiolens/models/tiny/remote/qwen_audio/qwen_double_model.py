"""Structural double of Qwen-Audio's remote modeling code: what the audiolens adapter relies on.

- ``QwenDoubleLMHeadModel.transformer`` (backbone, final-normed output) with blocks ``h`` that
  return tuples, attention ``attn`` returning ``(output, present)``, norms ``ln_1``/``ln_2``/``ln_f``,
  head ``lm_head``;
- an additive ``(batch, 1, 1, key)`` padding mask, causality applied inside the attention,
  rotary positions from the token index (``position_ids`` are accepted and ignored);
- a legacy tuple cache, ``(key, value)`` per layer shaped ``(batch, seq, heads, head_dim)``;
- without a cache, the span from each audio-start id to the next audio-end id (start + 1) is
  overwritten by the audio encoder's vectors, read from the side input ``audio_info``;
- transformers 4 members its forward calls: ``self.get_head_mask`` and ``config.use_return_dict``;
- a buffer the checkpoint does not store (the attention's ``query_scale``), and a method that
  imports a package only when called (``chat_stream``).
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from .audio import AudioEncoder
from .qwen_double_config import QwenDoubleConfig


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + turned * sin


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.c_attn = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.c_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        # A buffer the checkpoint does not store, set by the constructor alone (queries are
        # scaled by it, 1 at every position here).
        self.register_buffer("query_scale", torch.ones(1, 4096, 1, 1), persistent=False)

    def forward(self, hidden_states, rotary_pos_emb_list=None, layer_past=None, attention_mask=None,
                head_mask=None, use_cache=False, output_attentions=False):
        b, s, d = hidden_states.shape
        q, k, v = (t.view(b, s, self.heads, -1) for t in self.c_attn(hidden_states).split(d, dim=2))
        cos, sin = (t[:, -s:] for t in rotary_pos_emb_list[0])  # the newest s positions
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        past = 0 if layer_past is None else layer_past[0].shape[1]
        q = q * self.query_scale[:, past:past + s]
        if layer_past is not None:
            k = torch.cat([layer_past[0], k], dim=1)
            v = torch.cat([layer_past[1], v], dim=1)
        present = (k, v) if use_cache else None
        n_keys = k.shape[1]
        causal = torch.ones(n_keys, n_keys, dtype=torch.bool, device=k.device).tril()[n_keys - s:]
        if attention_mask is None:
            mask = causal
        else:
            mask = attention_mask.expand(-1, -1, s, -1).masked_fill(~causal, torch.finfo(q.dtype).min)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=mask)
        return self.c_proj(out.transpose(1, 2).reshape(b, s, d)), present


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.w1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.w2 = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.c_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        return self.c_proj(self.w1(x) * F.silu(self.w2(x)))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.attn = Attention(config)
        self.ln_2 = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, hidden_states, rotary_pos_emb_list=None, layer_past=None, attention_mask=None,
                head_mask=None, use_cache=False, output_attentions=False):
        attn_out, present = self.attn(self.ln_1(hidden_states), rotary_pos_emb_list, layer_past=layer_past,
                                      attention_mask=attention_mask, head_mask=head_mask, use_cache=use_cache)
        mid = hidden_states + attn_out
        out = mid + self.mlp(self.ln_2(mid))
        return (out, present) if use_cache else (out,)


class QwenDoublePreTrainedModel(PreTrainedModel):
    config_class = QwenDoubleConfig
    base_model_prefix = "transformer"

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d)):
            module.weight.data.normal_(0.0, 0.1)
            if getattr(module, "bias", None) is not None:
                module.bias.data.zero_()


class QwenDoubleModel(QwenDoublePreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.drop = nn.Dropout(0.0)
        self.h = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.ln_f = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.audio = AudioEncoder(**config.audio)
        self.post_init()

    def get_input_embeddings(self):
        return self.wte

    def rotary(self, n_positions, device):
        dim = self.config.hidden_size // self.config.num_attention_heads
        inv = 1.0 / self.config.rotary_emb_base ** (torch.arange(0, dim, 2, device=device).float() / dim)
        angles = torch.outer(torch.arange(n_positions, device=device).float(), inv)
        angles = torch.cat([angles, angles], dim=-1)[None, :, None, :]
        return [(angles.cos(), angles.sin())]

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, audio_info=None):
        start = self.config.audio["audio_start_id"]
        audios = None
        if past_key_values is None and bool((input_ids == start).any()):
            rows, starts = torch.where(input_ids == start)
            _, ends = torch.where(input_ids == start + 1)
            audios = self.audio.encode(audio_info["input_audios"], audio_info["input_audio_lengths"],
                                       audio_info["audio_span_tokens"])
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        head_mask = self.get_head_mask(head_mask, self.config.num_hidden_layers)
        batch, length = input_ids.shape
        past = 0 if past_key_values is None else past_key_values[0][0].shape[1]
        if past_key_values is None:
            past_key_values = (None,) * len(self.h)
        if attention_mask is not None:
            keep = attention_mask.view(batch, -1)[:, None, None, :].to(self.dtype)
            attention_mask = (1.0 - keep) * torch.finfo(self.dtype).min
        hidden = self.drop(self.wte(input_ids))
        if audios is not None:
            for r, a, b, vectors in zip(rows.tolist(), starts.tolist(), ends.tolist(), audios):
                hidden[r, a:b + 1] = vectors
        rotary = self.rotary(past + length, hidden.device)
        presents, states = [], []
        for block, layer_past, mask_i in zip(self.h, past_key_values, head_mask):
            if output_hidden_states:
                states.append(hidden)
            out = block(hidden, layer_past=layer_past, rotary_pos_emb_list=rotary,
                        attention_mask=attention_mask, head_mask=mask_i, use_cache=use_cache)
            hidden = out[0]
            if use_cache:
                presents.append(out[1])
        hidden = self.ln_f(hidden)
        if output_hidden_states:
            states.append(hidden)
        result = BaseModelOutputWithPast(last_hidden_state=hidden,
                                         past_key_values=tuple(presents) if use_cache else None,
                                         hidden_states=tuple(states) if output_hidden_states else None)
        return result if return_dict else result.to_tuple()


class QwenDoubleLMHeadModel(QwenDoublePreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.transformer = QwenDoubleModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.bf16 or config.fp16:
            self.to(torch.bfloat16 if config.bf16 else torch.float16)
        self.post_init()

    def get_input_embeddings(self):
        return self.transformer.wte

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, position_ids=None,
                use_cache=None, output_hidden_states=None, return_dict=None, audio_info=None, **kwargs):
        return_dict = return_dict if return_dict is not None else self.config.use_return_dict
        out = self.transformer(input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                               position_ids=position_ids, use_cache=use_cache,
                               output_hidden_states=output_hidden_states, return_dict=True,
                               audio_info=audio_info)
        result = CausalLMOutputWithPast(logits=self.lm_head(out.last_hidden_state),
                                        past_key_values=out.past_key_values, hidden_states=out.hidden_states)
        return result if return_dict else result.to_tuple()

    def chat_stream(self, *args, **kwargs):
        # Streaming generation lives in a package that does not import under transformers 5;
        # transformers still checks at load time that it can be imported.
        from transformers_stream_generator.main import NewGenerationMixin

        raise NotImplementedError(NewGenerationMixin)
