"""Training and validating small networks in one process, on images held in memory.

What the research studies share: LR/HR pairs of a folder of HR images (the LR images ``prepare_benchmark``
writes), batches of random aligned crops, Y-channel PSNR as BasicSR computes it, and a training step
(L1 loss, Adam) run for several networks side by side on the same batches.
"""
import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from deconv_basicsr.prepare.image_io import list_images, read_image
from deconv_basicsr.imresize import bicubic_downscale

# BT.601 luma of RGB values in [0, 1], in [16, 235]: BasicSR's ``rgb2ycbcr(y_only=True)``.
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def _to_tensor(bgr):
    """uint8 (h, w, 3) BGR image -> float32 (3, h, w) RGB tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))).float() / 255


def load_pairs(folder, scale, crop=None, count=None):
    """(LR, HR) pairs of every image in ``folder`` (the first ``count`` when given): float32 RGB tensors
    (3, h, w) in [0, 1].

    HR is the image (its centre ``crop`` x ``crop`` when given) cut to a multiple of ``scale``; LR is its
    MATLAB bicubic downscaling in 8 bits, the ``LRbicx`` image of ``prepare_benchmark``.
    """
    pairs = []
    for path in list_images(folder)[:count]:
        hr = read_image(path)
        if crop:
            top, left = max(0, (hr.shape[0] - crop) // 2), max(0, (hr.shape[1] - crop) // 2)
            hr = hr[top:top + crop, left:left + crop]
        hr = hr[:hr.shape[0] - hr.shape[0] % scale, :hr.shape[1] - hr.shape[1] % scale]
        pairs.append((_to_tensor(bicubic_downscale(hr, scale)), _to_tensor(hr)))
    if not pairs:
        raise FileNotFoundError(f'no images in {folder}')
    return pairs


class RandomCrops:
    """Batches of random aligned LR/HR crops of ``pairs``, as BasicSR's ``PairedImageDataset`` cuts them.

    With ``augment``, each crop is flipped horizontally, vertically and transposed, each with probability
    1/2 (``use_hflip`` and ``use_rot``). Calling the object returns the next ``(lq, gt)`` batch.
    """

    def __init__(self, pairs, gt_size, scale, batch_size, seed, augment=True):
        self.lq_size = gt_size // scale
        small = [tuple(lq.shape[1:]) for lq, _ in pairs if min(lq.shape[1:]) < self.lq_size]
        if small:
            raise ValueError(f'RandomCrops: LR images of size {small[0]} are smaller than the crop {self.lq_size}')
        self.pairs, self.scale, self.batch_size, self.augment = pairs, scale, batch_size, augment
        self.rng = np.random.default_rng(seed)

    def __call__(self):
        size, s = self.lq_size, self.scale
        lqs, gts = [], []
        for index in self.rng.integers(len(self.pairs), size=self.batch_size):
            lq, gt = self.pairs[index]
            top = self.rng.integers(lq.shape[1] - size + 1)
            left = self.rng.integers(lq.shape[2] - size + 1)
            lq = lq[:, top:top + size, left:left + size]
            gt = gt[:, top * s:(top + size) * s, left * s:(left + size) * s]
            if self.augment:
                hflip, vflip, transpose = self.rng.random(3) < 0.5
                for flag, op in ((hflip, lambda t: t.flip(-1)), (vflip, lambda t: t.flip(-2)),
                                 (transpose, lambda t: t.transpose(-1, -2))):
                    if flag:
                        lq, gt = op(lq), op(gt)
            lqs.append(lq)
            gts.append(gt)
        return torch.stack(lqs), torch.stack(gts)


def y_psnr(sr, gt, border):
    """PSNR (dB) on the Y channel of two RGB images (3, h, w) in [0, 1], both rounded to 8 bits, ``border``
    pixels left out on every side: BasicSR's ``calculate_psnr(..., test_y_channel=True)``."""
    weights = torch.tensor(_Y_WEIGHTS, dtype=torch.float64).view(3, 1, 1) / 255
    y_sr, y_gt = (((img.double().clamp(0, 1) * 255).round() * weights).sum(0) for img in (sr, gt))
    diff = (y_sr - y_gt)[border:y_sr.shape[0] - border, border:y_sr.shape[1] - border]
    return 10 * torch.log10(255**2 / diff.square().mean()).item()


@torch.no_grad()
def mean_psnr(model, pairs, border):
    """Mean ``y_psnr`` of ``model``'s outputs over the (LR, HR) ``pairs``, one image at a time.

    The model runs in the mode it is in: put it in eval mode to validate.
    """
    device = next(model.parameters()).device
    return statistics.fmean(y_psnr(model(lq[None].to(device))[0].cpu(), gt, border) for lq, gt in pairs)


def seeded(build, seed):
    """``build()`` with torch seeded by ``seed``. Networks built alike from one seed share the weights of the
    layers they have in common: the deconvolution archs build their plain twin first and convert it."""
    torch.manual_seed(seed)
    return build()


def train_step(network, optimizer, lq, gt):
    """One training step: forward in training mode, L1 loss, backward, optimizer step.

    Returns:
        Tensor: The loss, detached (a tensor, so that a CUDA step does not wait for it).
    """
    network.train()
    optimizer.zero_grad(set_to_none=True)
    loss = F.l1_loss(network(lq), gt)
    loss.backward()
    optimizer.step()
    return loss.detach()


class Lockstep:
    """Networks trained side by side on the same batches, each by Adam at ``lr``, every step timed.

    ``seconds`` holds the training seconds of each network so far; all of them see the same machine load.
    """

    def __init__(self, networks, lr):
        self.networks = networks
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=lr) for name, net in networks.items()}
        self.seconds = dict.fromkeys(networks, 0.0)

    def step(self, lq, gt):
        """One training step of every network on the batch; returns the losses by name."""
        losses = {}
        for name, network in self.networks.items():
            start = time.perf_counter()
            losses[name] = train_step(network, self.optimizers[name], lq, gt).item()
            self.seconds[name] += time.perf_counter() - start
        return losses
