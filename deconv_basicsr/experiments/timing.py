"""Training-step times measured side by side: every network in turn in each round, medians over rounds.

Timings from the study's own runs are not used for the seconds axis: runs share the machine with each
other, so their clocks measure the load as much as the network.
"""
import platform
import statistics
import time

import torch


def step_seconds(networks, batch, rounds=5, steps=3):
    """Median seconds per training step (forward, L1, backward, Adam) of each network.

    Args:
        networks (dict[str, nn.Module]): Networks by name, timed in turn within every round.
        batch (tuple[Tensor, Tensor]): LQ and GT batch.
        rounds (int): Rounds; the first one warms up and is not counted.
        steps (int): Steps timed per network per round.

    Returns:
        dict[str, float]: Median seconds per step by name.
    """
    lq, gt = batch
    optimizers = {name: torch.optim.Adam(net.parameters(), lr=1e-4) for name, net in networks.items()}
    times = {name: [] for name in networks}
    for round_index in range(rounds + 1):
        for name, net in networks.items():
            net.train()
            start = time.perf_counter()
            for _ in range(steps):
                optimizers[name].zero_grad(set_to_none=True)
                torch.nn.functional.l1_loss(net(lq), gt).backward()
                optimizers[name].step()
            if round_index:
                times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in times.items()}


def machine():
    return f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}'


def study_step_times(preset, arms, threads=1, rounds=5):
    """Seconds per training step of the study's ``arms`` at its batch and crop sizes, on ``threads`` threads
    (as each run of the study trains), with the machine it was measured on."""
    from basicsr.archs import build_network

    from deconv_basicsr.experiments.design import FAMILIES, network_options

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = {'machine': machine(), 'batch': preset.batch_size, 'seconds_per_iter': {}}
        for family, (baseline, variants) in FAMILIES.items():
            members = [arm for arm in (baseline, *variants) if arm in arms]
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
