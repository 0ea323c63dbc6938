"""Recompute the running statistics of FastDeconv layers from training batches.

This plays the role "precise BN" plays for batch normalisation. During training the running mean and
whitening matrix are moving averages over the last few dozen batches, gathered while the weights were
still moving; in eval mode they are all a layer has. Recalibrating replaces them by the statistics of a set
of batches pushed through the *current* network, so a validation or an exported model whitens with
statistics that belong to its weights.
"""
import torch

from deconv_basicsr.layers.fast_deconv import FastDeconv
from deconv_basicsr.layers.isqrt import isqrt

AVERAGES = ('cov', 'deconv')


def _default_forward(model, batch):
    device = next(model.parameters()).device
    return model(batch.to(device))


@torch.no_grad()
def recalibrate_deconv_stats(model, batches, forward=None, average='deconv'):
    """Replace the running statistics of every FastDeconv in ``model`` by those of ``batches``.

    Every batch runs through ``model`` as in training: each FastDeconv whitens its input with that input's
    own statistics, so every layer sees inputs distributed as it saw them during training. Per layer,
    ``running_mean`` becomes the mean of the batch means and ``running_deconv`` the mean of the batch
    whitening matrices (``average='deconv'``: what the moving average averages, with equal weights), or the
    inverse square root (same ``n_iter`` Newton–Schulz function) of the batches' pooled covariance, the
    within-batch covariances plus the spread of the batch means (``average='cov'``; a layer that keeps a
    running covariance gets the pooled covariance too).

    Nothing else changes: parameters, ``num_batches_tracked`` (so the ``freeze`` schedule) and the training
    mode of every module are as before, and modules other than FastDeconv run in eval mode meanwhile.

    Args:
        model (nn.Module): Network holding FastDeconv layers.
        batches (Iterable): Inputs, e.g. a few training batches (LQ images). At least one.
        forward (callable, optional): ``forward(model, batch)`` runs one batch. Default: ``model(batch)``
            with the batch moved to the model's device.
        average (str): 'deconv' (default) or 'cov', as above. Measured on DeconvSRCNN (README, "Evaluation
            statistics"), averaging the whitening matrices gave the smoother validation curve.

    Returns:
        int: Number of batches used (0 when ``model`` has no FastDeconv layer; nothing is run then).
    """
    if average not in AVERAGES:
        raise ValueError(f'recalibrate_deconv_stats: average must be one of {AVERAGES}, got {average!r}')
    layers = [m for m in model.modules() if isinstance(m, FastDeconv)]
    if not layers:
        return 0
    forward = forward or _default_forward
    sums = {layer: [] for layer in layers}

    def recording_statistics(layer):
        # Replaces the layer's _statistics for the duration: batch statistics for the output (as in
        # training), no running update, no step counted; the moments are kept for pooling.
        def statistics(x):
            stat_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
            with torch.autocast(x.device.type, enabled=False):
                mean, cov = layer._batch_moments(x.to(stat_dtype))
                deconv = isqrt(cov, layer.n_iter, layer._isqrt_method(x.device))
            sums[layer].append((mean.double(), cov.double() if average == 'cov' else deconv.double()))
            return mean, deconv

        return statistics

    modes = {m: m.training for m in model.modules()}
    model.eval()
    for layer in layers:
        layer.train()
        layer._statistics = recording_statistics(layer)
    try:
        count = 0
        for batch in batches:
            forward(model, batch)
            count += 1
    finally:
        for layer in layers:
            del layer._statistics
        for module, mode in modes.items():
            module.training = mode
    if count == 0:
        raise ValueError('recalibrate_deconv_stats: got no batches')

    for layer, stats in sums.items():
        if not stats:
            continue  # not reached by this forward
        means = torch.stack([mean for mean, _ in stats])
        mats = torch.stack([mat for _, mat in stats])
        mean = means.mean(0)
        if average == 'cov':
            spread = means - mean
            cov = mats.mean(0) + torch.einsum('bgi,bgj->gij', spread, spread) / len(stats)
            deconv = isqrt(cov, layer.n_iter, layer._isqrt_method(cov.device))
            if hasattr(layer, 'running_cov'):
                layer.running_cov.copy_(cov)
        else:
            deconv = mats.mean(0)
        layer.running_mean.copy_(mean)
        layer.running_deconv.copy_(deconv)
    return count
