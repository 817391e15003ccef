"""Writes the fixtures of tests/test_official.py: small checkpoints in the authors' PyTorch
layout, in both torch.save formats, and what their networks compute.

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy
    /tmp/torchenv/bin/python tests/make_official_fixtures.py --out=tests/fixtures/official

Run once with torch installed; the tests then need no torch. The five networks below are
written from the paper's architecture as the authors' unsup3d/networks.py lays it out
(same module order, so the same state-dict keys), with the widths as arguments so that
the fixtures stay small. Files written:

  trainer_zip.pth       a trainer checkpoint (netD, netA, netL, netV, netC, optimizerD...,
                        metrics_trace of class unsup3d.meters.MetricsTrace, epoch 30),
                        zip format (PyTorch >= 1.6)
  model_legacy.pth      a clean model-only checkpoint of the same networks, legacy format
                        (the default of PyTorch 1.2)
  noconf_legacy.pth     the same without netC (a syncar-style model), trainer layout,
                        legacy format
  vgg16_zip.pth         torchvision's VGG16 state-dict layout (features.N, classifier.N)
  expected.npz          input images (NCHW, [-1, 1]) and each network's output on them;
                        a VGG16 input and its relu3_3 features

Large weights are strided views of small random storages (torch.save writes the storage,
so the files stay a few hundred kB) and the optimizer moments are expanded zeros: the
files are what torch.save writes, the values just compress well.
"""

import argparse
import os
import sys
import types

import numpy as np
import torch
from torch import nn

WIDTHS = {"nf_depth": 16, "zdim_depth": 16, "nf_light": 4, "nf_conf": 16, "zdim_conf": 8}


def encoder(cout, nf, activation=True):
    layers = []
    cin = 3
    for i in range(4):
        layers += [nn.Conv2d(cin, nf * 2 ** i, 4, 2, 1, bias=False), nn.ReLU()]
        cin = nf * 2 ** i
    layers += [nn.Conv2d(cin, nf * 8, 4, 1, 0, bias=False), nn.ReLU(),
               nn.Conv2d(nf * 8, cout, 1, 1, 0, bias=False)]
    if activation:
        layers.append(nn.Tanh())
    return layers


def gn_encoder(nf, zdim):
    layers = []
    cin = 3
    for i in range(4):
        c = nf * 2 ** i
        layers.append(nn.Conv2d(cin, c, 4, 2, 1, bias=False))
        if i < 3:
            layers.append(nn.GroupNorm(16 * 2 ** i, c))
        layers.append(nn.LeakyReLU(0.2))
        cin = c
    return layers + [nn.Conv2d(cin, zdim, 4, 1, 0, bias=False), nn.ReLU()]


class Encoder(nn.Module):
    def __init__(self, cout, nf):
        super().__init__()
        self.network = nn.Sequential(*encoder(cout, nf))

    def forward(self, x):
        return self.network(x).reshape(x.size(0), -1)


class EDDeconv(nn.Module):
    def __init__(self, cout, nf, zdim, activation=True):
        super().__init__()
        layers = gn_encoder(nf, zdim)
        layers += [nn.ConvTranspose2d(zdim, nf * 8, 4, 1, 0, bias=False), nn.ReLU(),
                   nn.Conv2d(nf * 8, nf * 8, 3, 1, 1, bias=False), nn.ReLU()]
        for c_in, c in ((nf * 8, nf * 4), (nf * 4, nf * 2), (nf * 2, nf)):
            g = 16 * c // nf
            layers += [nn.ConvTranspose2d(c_in, c, 4, 2, 1, bias=False), nn.GroupNorm(g, c),
                       nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.GroupNorm(g, c),
                       nn.ReLU()]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                   nn.Conv2d(nf, nf, 3, 1, 1, bias=False), nn.GroupNorm(16, nf), nn.ReLU(),
                   nn.Conv2d(nf, nf, 5, 1, 2, bias=False), nn.GroupNorm(16, nf), nn.ReLU(),
                   nn.Conv2d(nf, cout, 5, 1, 2, bias=False)]
        if activation:
            layers.append(nn.Tanh())
        self.network = nn.Sequential(*layers)

    def forward(self, x):
        return self.network(x)


class ConfNet(nn.Module):
    def __init__(self, nf, zdim):
        super().__init__()
        layers = gn_encoder(nf, zdim)
        layers += [nn.ConvTranspose2d(zdim, nf * 8, 4, 1, 0, bias=False), nn.ReLU(),
                   nn.ConvTranspose2d(nf * 8, nf * 4, 4, 2, 1, bias=False),
                   nn.GroupNorm(64, nf * 4), nn.ReLU(),
                   nn.ConvTranspose2d(nf * 4, nf * 2, 4, 2, 1, bias=False),
                   nn.GroupNorm(32, nf * 2), nn.ReLU()]
        self.network = nn.Sequential(*layers)
        self.out_net1 = nn.Sequential(
            nn.ConvTranspose2d(nf * 2, nf, 4, 2, 1, bias=False), nn.GroupNorm(16, nf),
            nn.ReLU(), nn.ConvTranspose2d(nf, nf, 4, 2, 1, bias=False), nn.GroupNorm(16, nf),
            nn.ReLU(), nn.Conv2d(nf, 2, 5, 1, 2, bias=False), nn.Softplus())
        self.out_net2 = nn.Sequential(nn.Conv2d(nf * 2, 2, 3, 1, 1, bias=False),
                                      nn.Softplus())

    def forward(self, x):
        out = self.network(x)
        return self.out_net1(out), self.out_net2(out)


def vgg16_layout():
    """torchvision's vgg16: features (13 conv + ReLU, 5 max-pools) and classifier."""
    features, cin = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"):
        if v == "M":
            features.append(nn.MaxPool2d(2, 2))
        else:
            features += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    model = nn.Module()
    model.features = nn.Sequential(*features)
    model.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
                                     nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                                     nn.Linear(4096, 1000))
    return model


def fill(module, gen):
    """Random weights: small tensors contiguous, large ones strided views of a small
    storage (index 7a + 3b + 2c + d of a 4-D weight [a, b, c, d]) whose values are
    distinct under a transpose of any two axes."""
    for p in module.parameters():
        shape = tuple(p.shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = (2.0 / fan_in) ** 0.5 if len(shape) > 1 else 0.5
        if p.numel() <= 4096 or len(shape) == 1:
            value = torch.randn(shape, generator=gen) * scale
        else:
            strides = (7, 3, 2, 1)[-len(shape):]
            size = sum((n - 1) * s for n, s in zip(shape, strides, strict=True)) + 1
            base = torch.randn(size, generator=gen) * scale
            value = base.as_strided(shape, strides)
        p.data = value
    for m in module.modules():
        if isinstance(m, nn.GroupNorm):
            m.weight.data = 1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=gen)


def adam_state(net):
    """torch.optim.Adam's state_dict layout (the authors' optimiser settings), moments as
    expanded zeros so that they cost one element each on disk."""
    params = list(net.parameters())
    state = {i: {"step": torch.tensor(100.0), "exp_avg": torch.zeros(1).expand(p.shape),
                 "exp_avg_sq": torch.zeros(1).expand(p.shape)} for i, p in enumerate(params)}
    group = {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 5e-4,
             "amsgrad": False, "params": list(range(len(params)))}
    return {"state": state, "param_groups": [group]}


def metrics_trace_class():
    """A class that pickles as unsup3d.meters.MetricsTrace, like the authors' trainer's."""
    module = types.ModuleType("unsup3d.meters")
    sys.modules.setdefault("unsup3d", types.ModuleType("unsup3d"))
    sys.modules["unsup3d.meters"] = module

    class MetricsTrace:
        def __init__(self):
            self.data = {"train": [{"loss": 0.5}], "val": [{"loss": 0.6}]}

    MetricsTrace.__module__, MetricsTrace.__qualname__ = "unsup3d.meters", "MetricsTrace"
    module.MetricsTrace = MetricsTrace
    return MetricsTrace


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/official")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    w = WIDTHS
    nets = {"netD": EDDeconv(1, w["nf_depth"], w["zdim_depth"], activation=False),
            "netA": EDDeconv(3, w["nf_depth"], w["zdim_depth"]),
            "netL": Encoder(4, w["nf_light"]),
            "netV": Encoder(6, w["nf_light"]),
            "netC": ConfNet(w["nf_conf"], w["zdim_conf"])}
    for net in nets.values():
        fill(net, gen)
        net.eval()
    states = {k: net.state_dict() for k, net in nets.items()}

    trainer = dict(states)
    trainer.update({k.replace("net", "optimizer"): adam_state(net) for k, net in nets.items()})
    trainer["metrics_trace"] = metrics_trace_class()()
    trainer["epoch"] = 30
    torch.save(trainer, os.path.join(args.out, "trainer_zip.pth"))
    torch.save(states, os.path.join(args.out, "model_legacy.pth"),
               _use_new_zipfile_serialization=False)
    noconf = {k: v for k, v in trainer.items() if k not in ("netC", "optimizerC")}
    torch.save(noconf, os.path.join(args.out, "noconf_legacy.pth"),
               _use_new_zipfile_serialization=False)

    images = torch.rand((2, 3, 64, 64), generator=gen) * 2 - 1
    expected = {"images": images.numpy()}
    with torch.no_grad():
        for k in ("netD", "netA", "netL", "netV"):
            expected[k] = nets[k](images).numpy()
        expected["netC_l1"], expected["netC_percl"] = (t.numpy() for t in nets["netC"](images))

    vgg = vgg16_layout()
    fill(vgg, gen)
    for m in vgg.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=gen)
    torch.save(vgg.state_dict(), os.path.join(args.out, "vgg16_zip.pth"))
    vgg_input = torch.randn((1, 3, 32, 32), generator=gen)
    with torch.no_grad():
        expected["vgg_input"] = vgg_input.numpy()
        expected["vgg_relu3_3"] = vgg.features[:16](vgg_input).numpy()
    np.savez_compressed(os.path.join(args.out, "expected.npz"), **expected)
    for name in sorted(os.listdir(args.out)):
        print(f"{name}: {os.path.getsize(os.path.join(args.out, name))} bytes")


if __name__ == "__main__":
    main()
