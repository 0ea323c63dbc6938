"""Speed and memory of network deconvolution next to the plain networks it replaces.

    python scripts/benchmark.py                    # CPU on 2 threads, then CUDA when present
    python scripts/benchmark.py --json bench.json  # also write the figures and the machine to a file
    python scripts/benchmark.py --quick            # smoke run: batch 2, 2 rounds

EDSR-baseline x2 (16 blocks, 64 features) and SRCNN x2 (9-5-5), each next to its deconvolution twin, on
batches of 16 LR patches of 48x48: a training step (forward, L1 loss, backward, Adam step), an evaluation
forward (eval mode, no grad) and the peak memory of a training step. Variants:

- plain: EDSR / SRCNN, the baseline of every ratio.
- exact: DeconvEDSR / DeconvSRCNN with their default settings (the reference's function and gradient;
  the inverse square root by 'spectral' on CPU and 'newton_schulz' on CUDA, as 'auto' picks).
- fast: the same with ``stats_period`` (statistics refreshed without gradient every few steps).
- reference: the same network with a layer written as the reference implementation is: the patch matrix
  copied by unfold, transpose and block interleave, then centred; the covariance by ``addmm``; an explicit
  Newton–Schulz iteration differentiated by autograd; the whitening folded into the kernel on every call.
- fused (eval only): the exact network after ``fuse_deconv``, i.e. a plain network.

Every round runs each variant in turn (the fast mode for a whole refresh period), so all of them see the
same machine load; a ratio is the median over rounds of the variant's time over the plain network's in
that round. Evaluation forwards run after the training rounds, in eval mode throughout as in a validation
run (FastDeconv reuses its folded kernels). Peak memory is the largest total of live tensors during a
training step: CUDA's allocator statistics, or on CPU the allocator totals the profiler records.
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import deconv_basicsr  # noqa: E402  (installs BasicSR's compatibility patches)
from basicsr.archs.edsr_arch import EDSR  # noqa: E402

from deconv_basicsr.archs.deconv_edsr_arch import DeconvEDSR  # noqa: E402
from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN  # noqa: E402
from deconv_basicsr.archs.srcnn_arch import SRCNN  # noqa: E402
from deconv_basicsr.layers import FastDeconv  # noqa: E402


def reference_isqrt(cov, n_iter):
    """The reference's coupled Newton–Schulz iteration: 3 products per step, autograd through each."""
    norm = cov.norm()
    y = cov / norm
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    z = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    for _ in range(n_iter):
        t = 0.5 * (3.0 * eye - z @ y)
        y = y @ t
        z = t @ z
    return z / torch.sqrt(norm)


class ReferenceDeconv(nn.Conv2d):
    """FastDeconv's function computed the way the reference implementation computes it (groups = 1)."""

    def __init__(self, layer):
        super().__init__(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         layer.dilation, 1, True, device=layer.weight.device, dtype=layer.weight.dtype)
        with torch.no_grad():
            self.weight.copy_(layer.weight)
            self.bias.copy_(layer.bias)
        self.block, self.num_features = layer.block, layer.num_features
        self.eps, self.n_iter, self.momentum = layer.eps, layer.n_iter, layer.momentum
        self.sampling_step = layer.sampling_stride * layer.stride[0]
        self.register_buffer('running_mean', layer.running_mean[0].clone())
        self.register_buffer('running_deconv', layer.running_deconv[0].clone())

    def forward(self, x):
        blocks = x.shape[1] // self.block
        if self.training:
            cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.sampling_step)
            cols = cols.transpose(1, 2).contiguous()
            cols = cols.view(-1, self.num_features, blocks).transpose(1, 2).contiguous().view(-1, self.num_features)
            mean = cols.mean(0)
            cols = cols - mean.unsqueeze(0)
            eye = torch.eye(self.num_features, dtype=x.dtype, device=x.device)
            cov = torch.addmm(eye, cols.t(), cols, beta=self.eps, alpha=1.0 / cols.shape[0])
            deconv = reference_isqrt(cov, self.n_iter)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach() * self.momentum)
                self.running_deconv.mul_(1 - self.momentum).add_(deconv.detach() * self.momentum)
        else:
            mean, deconv = self.running_mean, self.running_deconv
        w = self.weight.view(-1, self.num_features, blocks).transpose(1, 2).contiguous().view(-1, self.num_features)
        w = w @ deconv
        b = self.bias - (w @ mean.unsqueeze(1)).view(self.out_channels, -1).sum(1)
        w = w.view(-1, blocks, self.num_features).transpose(1, 2).contiguous().view(self.weight.shape)
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation)


def to_reference(model):
    """A copy of ``model`` with every FastDeconv replaced by its ReferenceDeconv."""
    model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, FastDeconv):
            model.set_submodule(name, ReferenceDeconv(module))
    return model


def check_reference(device):
    """ReferenceDeconv must compute FastDeconv's training output, or the comparison means nothing."""
    torch.manual_seed(0)
    layer = FastDeconv(16, 8, 3, padding=1, block=8).double().to(device)
    x = torch.randn(2, 16, 13, 13, dtype=torch.float64, device=device) * 3 + 1
    torch.testing.assert_close(ReferenceDeconv(layer)(x), layer(x))


NETWORKS = {
    'EDSR': (lambda: EDSR(3, 3, num_feat=64, num_block=16, upscale=2), lambda **kw: DeconvEDSR(
        3, 3, num_feat=64, num_block=16, upscale=2, **kw)),
    'SRCNN': (lambda: SRCNN(upscale=2), lambda **kw: DeconvSRCNN(upscale=2, **kw)),
}


class Variant:
    """One network under test, with its optimizer and how many steps make one timed sample."""

    def __init__(self, name, model, device, steps=1, trains=True):
        self.name, self.model, self.steps, self.trains = name, model.to(device), steps, trains
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4, betas=(0.9, 0.99))
        self.train_times, self.eval_times, self.peak = [], [], None

    def train_step(self, lq, gt):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        F.l1_loss(self.model(lq), gt).backward()
        self.optimizer.step()

    @torch.no_grad()
    def eval_step(self, lq):
        self.model(lq)


def exact_method(model, device):
    """The inverse square root method the layers of ``model`` use on ``device`` ('auto' resolved)."""
    return next(m for m in model.modules() if isinstance(m, FastDeconv)).isqrt_method_for(device)


def build_variants(network, device, stats_period):
    plain_fn, deconv_fn = NETWORKS[network]
    torch.manual_seed(0)
    plain = plain_fn()
    torch.manual_seed(0)
    exact = deconv_fn()
    torch.manual_seed(0)
    fast = deconv_fn(stats_period=stats_period)
    variants = [
        Variant('plain', plain, device),
        Variant(f'exact ({exact_method(exact, device)})', exact, device),
        Variant(f'fast (stats_period={stats_period})', fast, device, steps=stats_period),
        Variant('reference', to_reference(exact), device),
    ]
    return variants


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(device, fn, repeat=1):
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeat


def peak_memory(device, variant, lq, gt):
    """Largest total of live tensors (bytes) during training steps (a whole refresh period for the fast mode)."""
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(variant.steps):
            variant.train_step(lq, gt)
        synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(variant.steps):
            variant.train_step(lq, gt)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'trace.json')
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)['traceEvents']
    return max(e['args']['Total Allocated'] for e in events if e.get('name') == '[memory]')


def run_network(network, device, args, lq, gt):
    variants = build_variants(network, device, args.stats_period)
    for variant in variants:  # warm up: allocator, optimizer state
        for _ in range(max(2, variant.steps)):
            variant.train_step(lq, gt)
    for _ in range(args.rounds):
        for variant in variants:
            variant.train_times.append(timed(device, lambda: variant.train_step(lq, gt), variant.steps))
    if not args.no_memory:
        for variant in variants:
            variant.peak = peak_memory(device, variant, lq, gt)

    # Evaluation as in a validation run: eval mode throughout, so FastDeconv reuses its folded kernels.
    exact = copy.deepcopy(variants[1].model).eval()
    variants.append(Variant('fused', deconv_basicsr.fuse_deconv(exact), device, trains=False))
    for variant in variants:
        variant.model.eval()
        variant.eval_step(lq)
    for _ in range(args.eval_rounds):
        for variant in variants:
            variant.eval_times.append(timed(device, lambda: variant.eval_step(lq)))

    base = variants[0]

    def ratio(times, base_times):
        return statistics.median(t / b for t, b in zip(times, base_times))

    rows = []
    for variant in variants:
        rows.append({
            'network': network if variant is base else f'Deconv{network}',
            'variant': variant.name,
            'train_ms': 1e3 * statistics.median(variant.train_times) if variant.trains else None,
            'train_ratio': ratio(variant.train_times, base.train_times) if variant.trains else None,
            'eval_ms': 1e3 * statistics.median(variant.eval_times),
            'eval_ratio': ratio(variant.eval_times, base.eval_times),
            'peak_mb': variant.peak / 2**20 if variant.peak else None,
            'memory_ratio': variant.peak / base.peak if variant.peak else None,
        })
    return rows


def machine(device):
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            name = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{name}, {torch.get_num_threads()} threads'


def table(device, rows, args):
    def cell(value, fmt):
        return '-' if value is None else format(value, fmt)

    lines = [f'{device.type.upper()}: {machine(device)}; batch {args.batch} x {args.patch}x{args.patch} LR, x2; '
             f'medians of {args.rounds} training and {args.eval_rounds} evaluation rounds', '']
    lines.append(f'{"network":<12} {"variant":<26} {"train ms":>9} {"train x":>8} {"eval ms":>8} {"eval x":>7} '
                 f'{"peak MB":>8} {"mem x":>6}')
    for row in rows:
        lines.append(f'{row["network"]:<12} {row["variant"]:<26} {cell(row["train_ms"], ".0f"):>9} '
                     f'{cell(row["train_ratio"], ".2f"):>8} {cell(row["eval_ms"], ".1f"):>8} '
                     f'{cell(row["eval_ratio"], ".3f"):>7} {cell(row["peak_mb"], ".0f"):>8} '
                     f'{cell(row["memory_ratio"], ".2f"):>6}')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', choices=['all', 'cpu', 'cuda'], default='all',
                        help='all: CPU, then CUDA when present (default)')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads (default: 2)')
    parser.add_argument('--networks', nargs='+', choices=sorted(NETWORKS), default=sorted(NETWORKS))
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--patch', type=int, default=48, help='LR patch size (default: 48)')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--eval-rounds', type=int, default=15, help='rounds of evaluation forwards')
    parser.add_argument('--stats-period', type=int, default=8, help="the fast variant's stats_period")
    parser.add_argument('--no-memory', action='store_true', help='skip the peak memory measurement')
    parser.add_argument('--quick', action='store_true', help='batch 2, 2 rounds: checks that it all runs')
    parser.add_argument('--json', help='write the figures to this file')
    args = parser.parse_args()
    if args.quick:
        args.batch, args.rounds, args.eval_rounds = 2, 2, 2

    torch.set_num_threads(args.threads)
    devices = [torch.device('cpu')] if args.device in ('all', 'cpu') else []
    if args.device in ('all', 'cuda') and torch.cuda.is_available():
        devices.append(torch.device('cuda'))
    elif args.device == 'cuda':
        parser.error('CUDA is not available')

    record = {'torch': torch.__version__, 'settings': vars(args), 'results': []}
    for device in devices:
        check_reference(device)
        generator = torch.Generator().manual_seed(0)
        lq = torch.rand(args.batch, 3, args.patch, args.patch, generator=generator).to(device)
        gt = torch.rand(args.batch, 3, 2 * args.patch, 2 * args.patch, generator=generator).to(device)
        rows = []
        for network in args.networks:
            rows += run_network(network, device, args, lq, gt)
            print(table(device, rows, args), flush=True)  # so far
            print()
        record['results'].append({'device': device.type, 'machine': machine(device), 'rows': rows})
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(record, f, indent=2)


if __name__ == '__main__':
    main()
