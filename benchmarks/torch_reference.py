"""PyTorch eager references of three zoo models, trained the way the reports trained them.

Same layers as the presets (`siamese_argmax`: report 000's CNN tower with the hard-coded
comparison; `siamese_fullyconv`: report 001's LeNet5 fully convolutional with its 72-unit head;
`siamese_resnet`: report 001's ResNet, three residual blocks at 14x14x32), same pairs, same
recipe (Adam, batch 100, digit losses, and the comparison loss where the head is learned).
Two loops: the plain one a user writes (train, then evaluate once) and one that does pairzoo's
per-epoch work (running accuracies, the test pairs evaluated after every epoch).
Used only by bench_training.py; needs `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class ArgmaxTower(nn.Module):
    """Report 000's CNN on one digit: conv 32 -> pool -> conv 64 -> pool -> 200 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
        self.fc1, self.fc2 = nn.Linear(256, 200), nn.Linear(200, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class FullyConvTower(nn.Module):
    """Report 001's LeNet5 fully convolutional tower (as in the authors' models.py)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64)
        self.fc1, self.bn3 = nn.Conv2d(64, 120, 2), nn.BatchNorm2d(120)
        self.fc2, self.bn4 = nn.Conv2d(120, 84, 1), nn.BatchNorm2d(84)
        self.fc3, self.bn5 = nn.Conv2d(84, 10, 1), nn.BatchNorm2d(10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.bn1(self.conv1(x)), 2))
        x = F.relu(F.max_pool2d(self.bn2(self.conv2(x)), 2))
        x = self.bn3(F.relu(self.fc1(x)))
        x = self.bn4(F.relu(self.fc2(x)))
        return self.bn5(F.relu(self.fc3(x))).flatten(1)


class ResidualBlock(nn.Module):
    """x + (conv -> BN -> ReLU -> conv -> BN)(x), then ReLU, at constant width and size."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class ResNetTower(nn.Module):
    """Report 001's ResNet: 3x3 stem (32, BN, ReLU), three blocks, global average pool, 32 -> 10
    (58,244 parameters with the 72-unit head, as the preset)."""

    def __init__(self, channels: int = 32, blocks: int = 3):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.fc = nn.Linear(channels, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Siamese(nn.Module):
    def __init__(self, tower: nn.Module, learned_head: bool, head_batchnorm: bool = True):
        super().__init__()
        self.tower = tower
        norm = [nn.BatchNorm1d(72)] if head_batchnorm else []
        self.head = nn.Sequential(nn.Linear(20, 72), nn.ReLU(), *norm,
                                  nn.Linear(72, 2)) if learned_head else None

    def forward(self, pair):
        pair = (pair / 255 - MNIST_MEAN) / MNIST_STD
        a, b = self.tower(pair[:, 0:1]), self.tower(pair[:, 1:2])
        if self.head is None:
            compare = (a.argmax(1) <= b.argmax(1)).float()
        else:
            compare = self.head(torch.cat([a, b], 1))
        return compare, a, b


# name -> (tower, learned head, batch norm in the head)
MODELS = {"siamese_argmax": (ArgmaxTower, False, False),
          "siamese_fullyconv": (FullyConvTower, True, True),
          "siamese_resnet": (ResNetTower, True, False)}


def build(name: str) -> Siamese:
    tower, learned, head_batchnorm = MODELS[name]
    return Siamese(tower(), learned, head_batchnorm)


def train_once(name: str, pairs: np.ndarray, digits: np.ndarray, seed: int, epochs: int = 25,
               batch_size: int = 100, lr: float = 1e-3, test_pairs: np.ndarray | None = None,
               test_digits: np.ndarray | None = None, every_epoch: bool = True) -> float:
    """Train one run; returns its seconds (as pairzoo's train_seconds).

    every_epoch=True: every epoch ends as pairzoo's does, with running training accuracies and
    the test set's losses and accuracies in inference mode (what a learning curve needs).
    every_epoch=False: the plain loop, training only, then the test set evaluated once (timed
    too)."""
    torch.manual_seed(seed)
    learned = MODELS[name][1]
    model = build(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.from_numpy(pairs)
    a, b = torch.from_numpy(digits[:, 0]).long(), torch.from_numpy(digits[:, 1]).long()
    target = (a <= b).long()
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        correct = torch.zeros(3)
        for index in torch.randperm(len(x)).split(batch_size):
            compare, logits_a, logits_b = model(x[index])
            loss = F.cross_entropy(logits_a, a[index]) + F.cross_entropy(logits_b, b[index])
            if learned:
                loss = loss + F.cross_entropy(compare, target[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if every_epoch:
                with torch.no_grad():
                    correct += _correct(compare, logits_a, logits_b, a[index], b[index],
                                        target[index], learned)
        if every_epoch and test_pairs is not None:
            _evaluate(model, test_pairs, test_digits, learned)
    if not every_epoch and test_pairs is not None:
        _evaluate(model, test_pairs, test_digits, learned)
    return time.perf_counter() - start


def _correct(compare, logits_a, logits_b, a, b, target, learned) -> torch.Tensor:
    decided = compare.argmax(1) if learned else compare.long()
    return torch.stack([(decided == target).sum(), (logits_a.argmax(1) == a).sum(),
                        (logits_b.argmax(1) == b).sum()]).float()


def _evaluate(model, pairs, digits, learned) -> tuple[float, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(pairs)
        a, b = torch.from_numpy(digits[:, 0]).long(), torch.from_numpy(digits[:, 1]).long()
        target = (a <= b).long()
        compare, logits_a, logits_b = model(x)
        loss = F.cross_entropy(logits_a, a) + F.cross_entropy(logits_b, b)
        if learned:
            loss = loss + F.cross_entropy(compare, target)
        return float(loss), _correct(compare, logits_a, logits_b, a, b, target, learned)
