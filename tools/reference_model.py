#!/usr/bin/env python3
"""Reference implementation of Earmark's front end and network in PyTorch (Python).

Written for Earmark from the published description of EfficientAT's MobileNetV3 ("mn")
audio tagger and its AugmentMelSTFT front end (inference mode). It loads the upstream
checkpoint as published and is used to
  * check the C++ implementation (golden files; see tools/make_golden.py),
  * time the Python reference in the benchmark (bench/run),
  * compute per-column scores offline for comparisons.
Run it with Debian's interpreter (/usr/bin/python3), which sees python3-torch/torchaudio.
"""
import argparse
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# input_channels, kernel, expanded_channels, out_channels, use_se, activation, stride
BLOCKS = [
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]


def conv_bn_act(cin, cout, k, stride=1, groups=1, act=None):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=0.001, momentum=0.01)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c, make_divisible(c // 4, 8))
        self.fc2 = nn.Linear(make_divisible(c // 4, 8), c)

    def forward(self, x):
        s = x.mean((2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class ConcSE(nn.Module):
    # Upstream stacks several squeeze-excitation layers; the AudioSet models use one (channels).
    def __init__(self, c):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SE(c)])

    def forward(self, x):
        return self.conc_se_layers[0](x)


class Block(nn.Module):
    def __init__(self, cin, k, cexp, cout, se, act, stride):
        super().__init__()
        A = nn.Hardswish if act == "HS" else nn.ReLU
        layers = []
        if cexp != cin:
            layers.append(conv_bn_act(cin, cexp, 1, act=A))
        layers.append(conv_bn_act(cexp, cexp, k, stride, groups=cexp, act=A))
        if se:
            layers.append(ConcSE(cexp))
        layers.append(conv_bn_act(cexp, cout, 1))
        self.block = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.res else y


class MN(nn.Module):
    def __init__(self, width=0.4, num_classes=527):
        super().__init__()
        ad = lambda c: make_divisible(c * width, 8)
        layers = [conv_bn_act(1, ad(16), 3, 2, act=nn.Hardswish)]
        for cin, k, cexp, cout, se, act, s in BLOCKS:
            layers.append(Block(ad(cin), k, ad(cexp), ad(cout), se, act, s))
        last_in = ad(BLOCKS[-1][3])
        layers.append(conv_bn_act(last_in, 6 * last_in, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                        nn.Linear(6 * last_in, ad(1280)), nn.Hardswish(),
                                        nn.Dropout(0.2), nn.Linear(ad(1280), num_classes))

    def forward(self, x):
        x = self.features(x)
        emb = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x), emb

    def columns(self, x, pool=1):
        """Per-column logits of the unpooled feature map (frequency-averaged)."""
        f = self.features(x).mean(2)  # B, C, T
        if pool > 1:
            f = F.avg_pool1d(f, pool, 1, pool // 2, count_include_pad=False)
        f = f.transpose(1, 2)  # B, T, C
        c = self.classifier
        return c[5](c[3](c[2](f)))


class LogMel(nn.Module):
    def __init__(self):
        super().__init__()
        import torchaudio
        self.register_buffer("window", torch.hann_window(800, periodic=False), persistent=False)
        mel, _ = torchaudio.compliance.kaldi.get_mel_banks(128, 1024, 32000, 0.0, 15000.0, vtln_low=100.0,
                                                           vtln_high=-500.0, vtln_warp_factor=1.0)
        self.register_buffer("mel", F.pad(mel, (0, 1)), persistent=False)
        self.register_buffer("pre", torch.as_tensor([[[-.97, 1]]]), persistent=False)

    def forward(self, x):
        x = F.conv1d(x.unsqueeze(1), self.pre).squeeze(1)
        x = torch.stft(x, 1024, hop_length=320, win_length=800, center=True, normalized=False,
                       window=self.window, return_complex=False)
        x = (x ** 2).sum(-1)
        x = torch.matmul(self.mel, x)
        return ((x + 1e-5).log() + 4.5) / 5.0


def width_of(path):
    name = path.split("/")[-1]
    table = {"mn01": .1, "mn02": .2, "mn04": .4, "mn05": .5, "mn10": 1., "mn20": 2., "mn30": 3., "mn40": 4.}
    return table.get(name[:4], 1.0)


def load(path):
    m = MN(width_of(path))
    m.load_state_dict(torch.load(path, map_location="cpu"), strict=True)
    return m.eval()


def read_wav(path):
    import wave
    import numpy as np
    with wave.open(path) as w:
        assert w.getframerate() == 32000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype("float32") / 32768.0
    return torch.from_numpy(data.copy())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint")
    ap.add_argument("wav", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=0, help="time features+network over this many runs")
    ap.add_argument("--optimize", action="store_true", help="freeze + optimize_for_inference (TorchScript)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per file (for bench/run)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, mel = load(a.checkpoint), LogMel()
    net = model
    if a.optimize:
        net = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))
    with torch.no_grad():
        for path in a.wav:
            x = read_wav(path)[None]
            logits, _ = net(mel(x)[:, None])
            top = torch.sigmoid(logits[0]).topk(5)
            if not a.json:
                print(path, [(int(i), round(float(v), 3)) for v, i in zip(top.values, top.indices)])
            if a.repeat:
                for _ in range(3):
                    net(mel(x)[:, None])
                t0 = time.perf_counter()
                for _ in range(a.repeat):
                    net(mel(x)[:, None])
                dt = (time.perf_counter() - t0) / a.repeat
                if a.json:
                    import json
                    print(json.dumps({"reference": True, "file": path, "threads": a.threads, "features_network_s": dt,
                                      "audio_s": x.shape[1] / 32000}))
                else:
                    print(f"  features+network: {dt * 1e3:.2f} ms per {x.shape[1] / 32000:.1f} s clip")


if __name__ == "__main__":
    sys.exit(main())
