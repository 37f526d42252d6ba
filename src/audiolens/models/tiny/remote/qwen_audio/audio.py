"""Structural double of Qwen-Audio's audio module: the names its processing uses (sampling
rate, window, hop, padding, log-mel features, the encoder's convolution length rule) and the
audio encoder the model imports from it, with a short window so that tests stay fast."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16000
HOP_LENGTH = 160
N_FFT = 400
N_MELS = 80
CHUNK_LENGTH = 3  # seconds in one window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE
N_FRAMES = N_SAMPLES // HOP_LENGTH


def pad_or_trim(array, length=N_SAMPLES):
    array = np.asarray(array)[:length]
    return np.pad(array, (0, length - len(array)))


def log_mel_spectrogram(audio):
    """(N_MELS, N_FRAMES) log band energies: power spectrum averaged over N_MELS equal bands."""
    audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    spec = torch.stft(audio, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT), return_complex=True)
    power = spec[..., :-1].abs() ** 2  # (N_FFT // 2 + 1, N_FRAMES)
    bands = torch.tensor_split(power, N_MELS, dim=0)
    mel = torch.stack([b.mean(0) for b in bands])
    log = torch.clamp(mel, min=1e-10).log10()
    return (torch.maximum(log, log.max() - 8.0) + 4.0) / 4.0


def get_T_after_cnn(frames):
    """Frames after a stride-1 then a stride-2 convolution (kernel 3, padding 1)."""
    return (frames - 1) // 2 + 1


class AudioEncoder(nn.Module):
    """Two convolutions over the batch's mel frames (up to twice the longest clip's frame count
    after them), 2-wide average pooling, a projection, then learned start and end vectors
    around each clip's own vectors."""

    def __init__(self, n_mels, n_state, output_dim, **_):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, n_state, 3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, 3, stride=2, padding=1)
        self.proj = nn.Linear(n_state, output_dim)
        self.audio_bos_eos_token = nn.Embedding(2, output_dim)

    def encode(self, input_audios, input_audio_lengths, audio_span_tokens):
        longest = 2 * int(input_audio_lengths[:, 0].max())
        x = input_audios[:, :, :longest].to(self.conv1.weight.dtype)
        x = F.avg_pool1d(F.gelu(self.conv2(F.gelu(self.conv1(x)))), 2)
        x = self.proj(x.transpose(1, 2))
        bos, eos = self.audio_bos_eos_token.weight[:1], self.audio_bos_eos_token.weight[1:]
        return [torch.cat([bos, row[: span - 2], eos]) for row, span in zip(x, audio_span_tokens)]
