"""Speed and memory of network deconvolution next to the plain networks it replaces, and of its inverse
square roots.

Networks: EDSR-baseline x2 (16 blocks, 64 features) and SRCNN x2 (9-5-5), each next to its deconvolution
twin, on batches of LR patches: a training step (forward, L1 loss, backward, Adam step), an evaluation
forward (eval mode, no grad) and the peak memory of a training step. Variants:

- plain: EDSR / SRCNN, the baseline of every ratio.
- exact: DeconvEDSR / DeconvSRCNN with their default settings (the reference's function and gradient;
  the inverse square root by 'spectral' on CPU and 'newton_schulz' on CUDA, as 'auto' picks).
- fast: the same with ``stats_period`` (statistics refreshed without gradient every few steps).
- reference: the same network with ``ReferenceDeconv`` layers (``experiments.reference_layer``).
- fused (eval only): the exact network after ``fuse_deconv``, i.e. a plain network.

Every round runs each variant in turn (the fast mode for a whole refresh period), so all of them see the
same machine load; a ratio is the median over rounds of the variant's time over the plain network's in
that round. Evaluation forwards run after the training rounds, in eval mode throughout as in a validation
run (FastDeconv reuses its folded kernels). Peak memory is the largest total of live tensors during a
training step: CUDA's allocator statistics, or on CPU the allocator totals the profiler records.

Inverse square root: forward and backward of ``isqrt(cov, n_iter, method)`` on one float32 covariance of
dimension d, for each method, side by side in every round in the same way; the ratio is to
'newton_schulz'. Float32 covariances are inverted in float64 beyond ``FLOAT32_MAX_ITERS`` steps.
"""
import copy
import json
import os
import statistics
import tempfile
from dataclasses import dataclass
from functools import partial

import torch
from basicsr.archs.edsr_arch import EDSR

from deconv_basicsr.archs.deconv_edsr_arch import DeconvEDSR
from deconv_basicsr.archs.deconv_srcnn_arch import DeconvSRCNN
from deconv_basicsr.archs.srcnn_arch import SRCNN
from deconv_basicsr.experiments.inprocess import seeded, train_step
from deconv_basicsr.experiments.reference_layer import check_reference, to_reference
from deconv_basicsr.experiments.timing import environment, side_by_side
from deconv_basicsr.layers import FastDeconv, fuse_deconv
from deconv_basicsr.layers.isqrt import METHODS, isqrt, work_dtype

NETWORKS = {
    'EDSR': (lambda: EDSR(3, 3, num_feat=64, num_block=16, upscale=2),
             lambda **kw: DeconvEDSR(3, 3, num_feat=64, num_block=16, upscale=2, **kw)),
    'SRCNN': (lambda: SRCNN(upscale=2), lambda **kw: DeconvSRCNN(upscale=2, **kw)),
}


@dataclass
class Settings:
    networks: tuple = tuple(NETWORKS)  # () leaves the networks out
    batch: int = 16
    patch: int = 48  # LR patch side
    rounds: int = 5
    eval_rounds: int = 15
    stats_period: int = 8  # the fast variant's
    memory: bool = True
    # Whitened dimensions d = kh * kw * block: EDSR's conv_first when deconvolved (3x3, 3 channels),
    # SRCNN's first layer (9x9, 3 channels), EDSR's residual blocks (3x3, 64 channels). () leaves it out.
    isqrt_dims: tuple = (27, 243, 576)
    isqrt_iters: tuple = (5, 15)  # the layer's default; the reference's input-layer convention
    isqrt_rounds: int = 15


class Variant:
    """One network under test, with its optimizer, and how many training steps make one timed sample."""

    def __init__(self, name, model, steps=1):
        self.name, self.model, self.steps = name, model, steps
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train(self, lq, gt):
        for _ in range(self.steps):
            train_step(self.model, self.optimizer, lq, gt)

    def clear_step_state(self):
        """Drop what the last step left for the next (gradients, the statistics FastDeconv carries): the next
        step then frees only what it allocated, so the profiler can count its memory (on the CPU it warns of
        a block freed that was allocated before it started)."""
        self.optimizer.zero_grad(set_to_none=True)
        for module in self.model.modules():
            if isinstance(module, FastDeconv):
                module.load_carried_state(None)

    @torch.no_grad()
    def evaluate(self, lq):
        self.model(lq)


def build_variants(network, device, stats_period):
    """plain, exact, fast and reference variants of ``network``, from the same initial weights."""
    plain_fn, deconv_fn = NETWORKS[network]

    def build(fn):
        return seeded(fn, 0).to(device)

    exact = build(deconv_fn)
    method = next(m for m in exact.modules() if isinstance(m, FastDeconv)).isqrt_method_for(device)
    return [
        Variant('plain', build(plain_fn)),
        Variant(f'exact ({method})', exact),
        Variant(f'fast (stats_period={stats_period})', build(partial(deconv_fn, stats_period=stats_period)),
                steps=stats_period),
        Variant('reference', to_reference(exact)),
    ]


def median_ratio(times, base_times):
    """Median over rounds of the ratio of two timings taken in the same round, under the same load."""
    return statistics.median(t / b for t, b in zip(times, base_times))


def peak_memory(device, task):
    """Largest total of live tensors (bytes) while ``task`` runs."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        task()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    # The profiler's own library logs every start and stop, and on a machine without GPUs an error about
    # them, to stderr; it reads this at its first use. 6: above its highest level.
    os.environ.setdefault('KINETO_LOG_LEVEL', '6')
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        task()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'trace.json')
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)['traceEvents']
    return max(e['args']['Total Allocated'] for e in events if e.get('name') == '[memory]')


def network_rows(network, device, lq, gt, settings):
    """Training, evaluation and memory figures of every variant of ``network`` (see the module docstring)."""
    variants = build_variants(network, device, settings.stats_period)
    samples = side_by_side({v.name: partial(v.train, lq, gt) for v in variants}, settings.rounds, device, warmup=2)
    train = {v.name: [t / v.steps for t in samples[v.name]] for v in variants}  # seconds per step
    peaks = {}
    for v in variants if settings.memory else ():
        v.clear_step_state()
        peaks[v.name] = peak_memory(device, partial(v.train, lq, gt))
    # Evaluation as in a validation run: eval mode throughout, so FastDeconv reuses its folded kernels.
    for v in variants:
        v.model.eval()
    variants.append(Variant('fused', fuse_deconv(copy.deepcopy(variants[1].model))))
    evals = side_by_side({v.name: partial(v.evaluate, lq) for v in variants}, settings.eval_rounds, device)

    plain = variants[0].name
    rows = []
    for v in variants:
        trained = v.name in train
        rows.append({
            'network': network if v.name == plain else f'Deconv{network}',
            'variant': v.name,
            'train_ms': 1e3 * statistics.median(train[v.name]) if trained else None,
            'train_ratio': median_ratio(train[v.name], train[plain]) if trained else None,
            'eval_ms': 1e3 * statistics.median(evals[v.name]),
            'eval_ratio': median_ratio(evals[v.name], evals[plain]),
            'peak_mb': peaks[v.name] / 2**20 if v.name in peaks else None,
            'memory_ratio': peaks[v.name] / peaks[plain] if v.name in peaks else None,
        })
    return rows


def covariance(d, seed=0):
    """A float32 covariance plus ``1e-5 I`` like a layer's: eigenvalues spread over four decades."""
    g = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    samples = torch.randn(4 * d, d, generator=g) * torch.logspace(0, -2, d) @ rotation
    return samples.T @ samples / samples.shape[0] + 1e-5 * torch.eye(d)


def _isqrt_forward_backward(cov, grad, n_iter, method):
    isqrt(cov.detach().requires_grad_(), n_iter, method).backward(grad)


def isqrt_rows(device, settings):
    """Forward and backward times of ``isqrt`` by each method, for every d and n_iter."""
    tasks = {}
    for d in settings.isqrt_dims:
        cov = covariance(d).to(device)
        grad = torch.randn(d, d, generator=torch.Generator().manual_seed(1)).to(device)
        for n_iter in settings.isqrt_iters:
            for method in METHODS:
                tasks[d, n_iter, method] = partial(_isqrt_forward_backward, cov, grad, n_iter, method)
    times = side_by_side(tasks, settings.isqrt_rounds, device)
    return [{'d': d, 'n_iter': n_iter, 'method': method,
             'computed_in': str(work_dtype(torch.float32, n_iter)).replace('torch.', ''),
             'ms': 1e3 * statistics.median(values),
             'ratio': median_ratio(values, times[d, n_iter, 'newton_schulz'])}
            for (d, n_iter, method), values in times.items()]


def markdown_table(rows, columns):
    """``columns``: (title, key, format) triples; None shows as an empty cell."""
    lines = ['| ' + ' | '.join(title for title, _, _ in columns) + ' |', '|---' * len(columns) + '|']
    for row in rows:
        cells = ('' if row[key] is None else format(row[key], fmt) for _, key, fmt in columns)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


NETWORK_COLUMNS = (('network', 'network', ''), ('variant', 'variant', ''), ('train ms', 'train_ms', '.0f'),
                   ('ratio', 'train_ratio', '.2f'), ('eval ms', 'eval_ms', '.1f'), ('ratio', 'eval_ratio', '.3f'),
                   ('peak MB', 'peak_mb', '.0f'), ('ratio', 'memory_ratio', '.2f'))
ISQRT_COLUMNS = (('d', 'd', ''), ('n_iter', 'n_iter', ''), ('method', 'method', ''),
                 ('computed in', 'computed_in', ''), ('forward + backward ms', 'ms', '.2f'),
                 ('ratio to newton_schulz', 'ratio', '.2f'))


def run(device, settings, log=print):
    """Every figure on ``device``, each table logged as it is done.

    Returns:
        dict: ``environment`` (the machine, with the load average at the start), ``networks`` and ``isqrt``
        (rows of the tables), ``load_average_end``.
    """
    env = environment(device)
    record = {'environment': env}
    machine = f"{device.type.upper()}: {env['name']}, {env['threads']} thread(s), torch {env['torch']}"
    if settings.networks:
        check_reference(device)
        generator = torch.Generator().manual_seed(0)
        lq = torch.rand(settings.batch, 3, settings.patch, settings.patch, generator=generator).to(device)
        gt = torch.rand(settings.batch, 3, 2 * settings.patch, 2 * settings.patch, generator=generator).to(device)
        record['networks'] = []
        for network in settings.networks:
            record['networks'] += network_rows(network, device, lq, gt, settings)
        log(f'{machine}; batch {settings.batch} x {settings.patch}x{settings.patch} LR, x2; medians of '
            f'{settings.rounds} training and {settings.eval_rounds} evaluation rounds\n\n'
            f"{markdown_table(record['networks'], NETWORK_COLUMNS)}\n")
    if settings.isqrt_dims:
        record['isqrt'] = isqrt_rows(device, settings)
        log(f'{machine}; isqrt of a float32 covariance, medians of {settings.isqrt_rounds} rounds\n\n'
            f"{markdown_table(record['isqrt'], ISQRT_COLUMNS)}\n")
    record['load_average_end'] = [round(x, 2) for x in os.getloadavg()]
    return record
