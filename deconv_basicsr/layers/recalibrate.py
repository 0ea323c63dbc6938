"""Recompute the running statistics of FastDeconv layers from training batches.

This plays the role "precise BN" plays for batch normalisation. During training the running mean and
whitening matrix are moving averages over the last few dozen batches, gathered while the weights were
still moving; in eval mode they are all a layer has. Recalibrating replaces them by the statistics of a set
of batches pushed through the *current* network, so a validation or an exported model whitens with
statistics that belong to its weights.
"""
import contextlib

import torch

from deconv_basicsr.layers.fast_deconv import FastDeconv

AVERAGES = ('cov', 'deconv')


class _Sums:
    """Sums, in float64, of the batch statistics a layer records: constant memory however many batches."""

    def __init__(self, average):
        self.average = average
        self.count = 0
        self.mean = self.outer = self.matrix = 0

    def append(self, stats):
        mean, cov, deconv = (t.double() for t in stats)
        if not all(torch.isfinite(t).all() for t in (mean, cov, deconv)):
            return  # as in training, non-finite statistics never reach the running ones
        self.count += 1
        self.mean = self.mean + mean
        if self.average == 'cov':
            self.outer = self.outer + mean.unsqueeze(-1) * mean.unsqueeze(-2)
        self.matrix = self.matrix + (cov if self.average == 'cov' else deconv)

    def statistics(self, layer):
        """Mean and whitening matrix: the average batch ``D``, or ``D`` of the pooled covariance."""
        mean = self.mean / self.count
        if self.average == 'deconv':
            return mean, self.matrix / self.count
        # Pooled covariance: the average within-batch covariance plus the spread of the batch means.
        cov = self.matrix / self.count + self.outer / self.count - mean.unsqueeze(-1) * mean.unsqueeze(-2)
        return mean, layer.whitening(cov)


def _default_forward(model, batch):
    device = next(model.parameters()).device
    return model(batch.to(device))


@torch.no_grad()
def recalibrate_deconv_stats(model, batches, forward=None, average='deconv'):
    """Replace the running statistics of every FastDeconv in ``model`` by those of ``batches``.

    Every batch runs through ``model`` as in training: each FastDeconv whitens its input with that input's
    own statistics, so every layer sees inputs distributed as it saw them during training. A batch whose
    statistics in a layer are not finite (NaN or inf) is left out of that layer's; a layer with no finite
    batch keeps its running statistics. Per layer,
    ``running_mean`` becomes the mean of the batch means and ``running_deconv`` the mean of the batch
    whitening matrices (``average='deconv'``: what the moving average averages, with equal weights), or the
    inverse square root (same ``n_iter`` Newton–Schulz function) of the batches' pooled covariance, the
    within-batch covariances plus the spread of the batch means (``average='cov'``).

    Nothing else changes: parameters, ``num_batches_tracked`` (so the ``freeze`` schedule) and the training
    mode of every module are as before, and modules other than FastDeconv run in eval mode meanwhile.

    Args:
        model (nn.Module): Network holding FastDeconv layers.
        batches (Iterable): Inputs, e.g. a few training batches (LQ images). At least one.
        forward (callable, optional): ``forward(model, batch)`` runs one batch. Default: ``model(batch)``
            with the batch moved to the model's device.
        average (str): 'deconv' (default) or 'cov', as above. Measured on DeconvSRCNN
            (docs/evaluation-statistics.md), averaging the whitening matrices gave the smoother validation curve.

    Returns:
        int: Number of batches used (0 when ``model`` has no FastDeconv layer; nothing is run then).
    """
    if average not in AVERAGES:
        raise ValueError(f'recalibrate_deconv_stats: average must be one of {AVERAGES}, got {average!r}')
    layers = [m for m in model.modules() if isinstance(m, FastDeconv)]
    if not layers:
        return 0
    forward = forward or _default_forward
    records = {layer: _Sums(average) for layer in layers}
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with contextlib.ExitStack() as stack:
            for layer in layers:
                layer.train()
                stack.enter_context(layer.recording(records[layer]))
            count = 0
            for batch in batches:
                forward(model, batch)
                count += 1
    finally:
        for module, mode in modes.items():
            module.training = mode
    if count == 0:
        raise ValueError('recalibrate_deconv_stats: got no batches')

    for layer, sums in records.items():
        if not sums.count:
            continue  # not reached by this forward, or no batch was finite
        mean, deconv = sums.statistics(layer)
        layer.running_mean.copy_(mean)
        layer.running_deconv.copy_(deconv)
    return count
