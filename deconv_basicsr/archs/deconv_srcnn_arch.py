from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.archs.srcnn_arch import SRCNN
from deconv_basicsr.layers import deconvolve, takes_deconv_settings


@ARCH_REGISTRY.register()
@takes_deconv_settings
class DeconvSRCNN(SRCNN):
    """SRCNN whose convolutions listed in ``deconv_layers`` (1-based: conv1, conv2, conv3) are FastDeconv layers.

    The defaults whiten the input pixels (conv1: 9x9 patches of 3 channels, d = 243) and conv2's 5x5
    patches in blocks of 8 channels (d = 200): the covariance and its inverse square root stay cheap next
    to the convolutions. conv3 is left plain because whitening its 32-channel 5x5 patches costs ~15x the
    3-output convolution itself (see docs/speed.md). conv1 sees the input pixels: it follows ``input_layer``.

    Args:
        num_in_ch, num_out_ch, upscale, num_feat, kernel_size: As SRCNN.
        deconv_layers (list[int]): Which convolutions (1, 2, 3) are deconvolved. Default: (1, 2).
        block (int): Channels per whitened block (FastDeconv's ``block``). Default: 8.
        input_layer (str | dict): Settings of a deconvolved conv1: 'reference' (Ye et al.'s input-layer
            convention, ``n_iter=15, freeze=True``), 'same' (the settings below), or a dict of FastDeconv
            settings overriding them. Default: 'reference'.
        **deconv_settings: FastDeconv's other settings (``n_iter``, ``eps``, ``momentum``, ...), the same for
            every deconvolved layer; see ``deconv_basicsr.layers.FastDeconv``.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 upscale=2,
                 num_feat=(64, 32),
                 kernel_size=(9, 5, 5),
                 deconv_layers=(1, 2),
                 block=8,
                 **deconv_settings):
        super().__init__(num_in_ch, num_out_ch, upscale, num_feat, kernel_size)
        deconv_layers = [deconv_layers] if isinstance(deconv_layers, int) else list(deconv_layers)
        if any(layer not in (1, 2, 3) for layer in deconv_layers):
            raise ValueError(f'DeconvSRCNN: deconv_layers must list conv numbers among 1, 2, 3; got {deconv_layers}')
        deconvolve(DeconvSRCNN, self, [f'conv{layer}' for layer in deconv_layers], 'conv1',
                   dict(deconv_settings, block=block))
