"""Structural double of Qwen-Audio's tokenizer: a slow tokenizer (no offset mapping) whose text
``<audio>path</audio>`` becomes audio-start, N-2 audio-pad and audio-end tokens, N given by
``audio_info["audio_span_tokens"]``; without ``audio_info`` such a tag cannot be tokenized.

Ordinary text: words of a small vocabulary (with their leading space) or, failing that, bytes.
"""

import json
import re
from typing import ClassVar

from transformers import PreTrainedTokenizer

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "[[[AUDIO:modality]]]", "<audio>", "</audio>")
PIECE = re.compile(r"\s?[A-Za-z]+|\s?\d|\s?[^\sA-Za-z\d]+|\s+")


class QwenDoubleTokenizer(PreTrainedTokenizer):
    vocab_files_names: ClassVar[dict] = {"vocab_file": "vocab.json"}
    model_input_names: ClassVar[list] = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, **kwargs):
        with open(vocab_file, encoding="utf-8") as f:
            self.words = {w: 256 + i for i, w in enumerate(json.load(f))}
        first = 256 + len(self.words)
        self.special_tokens = {t: first + i for i, t in enumerate(SPECIALS)}
        self.audio_start_id = self.special_tokens["<audio>"]
        self.audio_end_id = self.special_tokens["</audio>"]
        self.audio_pad_id = self.special_tokens["[[[AUDIO:modality]]]"]
        self.eod_id = self.special_tokens["<|endoftext|>"]
        self.decoder = {i: w for w, i in {**self.words, **self.special_tokens}.items()}
        self.split_specials = re.compile("(" + "|".join(map(re.escape, SPECIALS)) + ")")
        self.vocab_file = vocab_file
        super().__init__(**kwargs)

    def __len__(self):
        return 256 + len(self.words) + len(self.special_tokens)

    @property
    def vocab_size(self):
        return len(self)

    def get_vocab(self):
        return {**self.words, **self.special_tokens}

    def tokenize(self, text, audio_info=None, **kwargs):
        tokens = []
        for part in self.split_specials.split(text):
            if part in self.special_tokens:
                tokens.append(part)
                continue
            for piece in PIECE.findall(part):
                if piece in self.words:
                    tokens.append(piece)
                else:
                    tokens += [bytes([b]) for b in piece.encode("utf-8")]
        out, n_audio = [], 0
        while "<audio>" in tokens:
            a = tokens.index("<audio>")
            b = tokens.index("</audio>", a)
            span = audio_info["audio_span_tokens"][n_audio]
            out += tokens[:a] + ["<audio>"] + ["[[[AUDIO:modality]]]"] * (span - 2) + ["</audio>"]
            tokens, n_audio = tokens[b + 1:], n_audio + 1
        return out + tokens

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, (str, bytes)):
            return self._convert_token_to_id(tokens)
        return [self._convert_token_to_id(t) for t in tokens]

    def _convert_token_to_id(self, token):
        if isinstance(token, bytes):
            return token[0]
        return self.special_tokens.get(token, self.words.get(token))

    def _convert_id_to_token(self, index):
        return bytes([index]) if index < 256 else self.decoder[index]

    def _decode(self, token_ids, skip_special_tokens=False, **kwargs):
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        out = b""
        for i in token_ids:
            if i < 256:
                out += bytes([i])
            elif not (skip_special_tokens and i in self.decoder and self.decoder[i] in self.special_tokens):
                out += self.decoder[i].encode("utf-8")
        return out.decode("utf-8", errors="replace")

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = f"{save_directory}/{filename_prefix or ''}vocab.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(sorted(self.words, key=self.words.get), f)
        return (path,)
