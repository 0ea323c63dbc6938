from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.archs.srcnn_arch import SRCNN
from deconv_basicsr.layers import convert_convs


@ARCH_REGISTRY.register()
class DeconvSRCNN(SRCNN):
    """SRCNN whose convolutions listed in ``deconv_layers`` (1-based) are FastDeconv layers.

    The defaults whiten the input pixels (conv1: 9x9 patches of 3 channels, d = 243) and conv2's 5x5
    patches in blocks of 8 channels (d = 200): the covariance and its inverse square root stay cheap next
    to the convolutions. conv3 is left plain because whitening its 32-channel 5x5 patches costs ~15x the
    3-output convolution itself (see the cost model in the README).

    Args:
        num_in_ch, num_out_ch, upscale, num_feat, kernel_size: As SRCNN.
        deconv_layers (list[int]): Which convolutions (1, 2, 3) are deconvolved. Default: (1, 2).
        block, n_iter, eps, momentum, sampling_stride, freeze, freeze_iter, isqrt_method, stats_period,
            sync_stats: FastDeconv's settings (see ``deconv_basicsr.layers.FastDeconv``). Default block: 8.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 upscale=2,
                 num_feat=(64, 32),
                 kernel_size=(9, 5, 5),
                 deconv_layers=(1, 2),
                 block=8,
                 n_iter=5,
                 eps=1e-5,
                 momentum=0.1,
                 sampling_stride=3,
                 freeze=False,
                 freeze_iter=100,
                 isqrt_method='auto',
                 stats_period=1,
                 sync_stats=False):
        super().__init__(num_in_ch, num_out_ch, upscale, num_feat, kernel_size)
        deconv_layers = [deconv_layers] if isinstance(deconv_layers, int) else list(deconv_layers)
        if any(layer not in (1, 2, 3) for layer in deconv_layers):
            raise ValueError(f'DeconvSRCNN: deconv_layers must list conv numbers among 1, 2, 3; got {deconv_layers}')
        settings = dict(block=block, n_iter=n_iter, eps=eps, momentum=momentum, sampling_stride=sampling_stride,
                        freeze=freeze, freeze_iter=freeze_iter, isqrt_method=isqrt_method,
                        stats_period=stats_period, sync_stats=sync_stats)
        convert_convs(self, [f'conv{layer}' for layer in deconv_layers], **settings)
