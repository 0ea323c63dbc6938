"""Timings measured side by side: every task in turn in each round, medians over rounds; the machine.

Timings from the study's own runs are not used for the seconds axis: runs share the machine with each
other, so their clocks measure the load as much as the network.
"""
import os
import platform
import statistics
import time

import torch

from deconv_basicsr.experiments.inprocess import train_step


def side_by_side(tasks, rounds, device=None, warmup=1):
    """Seconds each task takes in every round, the tasks run in turn within a round.

    Running them in turn, rather than one after the other, lets every task see the same machine load, so
    ratios taken within a round hold even when the load changes between rounds.

    Args:
        tasks (dict[str, callable]): The work of one timed sample, by name.
        rounds (int): Timed rounds.
        device (torch.device | None): Where the tasks run; CUDA is synchronised around every task.
        warmup (int): Untimed rounds first (allocator, optimizer state, lazy initialisation).

    Returns:
        dict[str, list[float]]: Seconds by name, one value per timed round.
    """
    def synchronize():
        if device is not None and device.type == 'cuda':
            torch.cuda.synchronize(device)

    times = {name: [] for name in tasks}
    for round_index in range(warmup + rounds):
        for name, task in tasks.items():
            synchronize()
            start = time.perf_counter()
            task()
            synchronize()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def step_seconds(networks, batch, rounds=5, steps=3):
    """Median seconds per training step (forward, L1, backward, Adam) of each network.

    Args:
        networks (dict[str, nn.Module]): Networks by name, timed in turn within every round.
        batch (tuple[Tensor, Tensor]): LQ and GT batch.
        rounds (int): Timed rounds, after one that warms up.
        steps (int): Steps timed per network per round.

    Returns:
        dict[str, float]: Median seconds per step by name.
    """
    lq, gt = batch

    def training(network):
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
        return lambda: [train_step(network, optimizer, lq, gt) for _ in range(steps)]

    times = side_by_side({name: training(net) for name, net in networks.items()}, rounds)
    return {name: statistics.median(values) / steps for name, values in times.items()}


def device_name(device):
    """The CUDA device's name, or the CPU's model name (Linux; the machine type elsewhere)."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def environment(device):
    """What timings on ``device`` depend on, for a record: the device, CPU threads, torch, load average
    (1, 5 and 15 minutes: other processes on the machine)."""
    return {'device': device.type, 'name': device_name(device), 'threads': torch.get_num_threads(),
            'torch': torch.__version__, 'load_average': [round(x, 2) for x in os.getloadavg()]}


def machine():
    """The CPU, its thread count and torch, in words."""
    return f"{device_name(torch.device('cpu'))}, {torch.get_num_threads()} thread(s), torch {torch.__version__}"


def study_step_times(preset, arms, threads=1, rounds=5):
    """Seconds per training step of the study's ``arms`` at its batch and crop sizes, on ``threads`` threads
    (as each run of the study trains), with the machine it was measured on."""
    from basicsr.archs import build_network

    from deconv_basicsr.experiments.design import PAIRS, network_options

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = {'machine': machine(), 'batch': preset.batch_size, 'seconds_per_iter': {}}
        for family, pair in PAIRS.items():
            members = [arm for arm in pair if arm in arms]
            if not members:
                continue
            torch.manual_seed(0)
            size = preset.gt_size[family]
            gt = torch.rand(preset.batch_size, 3, size, size)
            lq = torch.nn.functional.avg_pool2d(gt, preset.scale)
            networks = {arm: build_network(network_options(preset, arm)) for arm in members}
            result['seconds_per_iter'].update(step_seconds(networks, (lq, gt), rounds))
        return result
    finally:
        torch.set_num_threads(previous)
