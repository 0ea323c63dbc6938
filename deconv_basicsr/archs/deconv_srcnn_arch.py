from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.archs.srcnn_arch import SRCNN
from deconv_basicsr.layers import deconvolve, takes_deconv_settings


@ARCH_REGISTRY.register()
@takes_deconv_settings
class DeconvSRCNN(SRCNN):
    """SRCNN whose convolutions listed in ``deconv_layers`` (1-based: conv1, conv2, conv3) are FastDeconv layers.

    The defaults whiten conv2's 5x5 patches in blocks of 16 channels (d = 400): of the variants the study
    compared (conv2; conv1+2; conv1+2+3; conv1+2 with ``input_layer: same``, all with blocks of 16), conv2
    alone ended highest on validation at every learning rate (docs/study.md). conv1 sees the input pixels: when
    deconvolved, it follows ``input_layer``. Whitening conv3's 32-channel 5x5 patches costs far more than its
    3-output convolution (docs/speed.md).

    Args:
        num_in_ch, num_out_ch, upscale, num_feat, kernel_size: As SRCNN.
        deconv_layers (list[int]): Which convolutions (1, 2, 3) are deconvolved. Default: (2, ).
        block (int): Channels per whitened block (FastDeconv's ``block``). Default: 16.
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
                 deconv_layers=(2, ),
                 block=16,
                 **deconv_settings):
        super().__init__(num_in_ch, num_out_ch, upscale, num_feat, kernel_size)
        deconv_layers = [deconv_layers] if isinstance(deconv_layers, int) else list(deconv_layers)
        if any(layer not in (1, 2, 3) for layer in deconv_layers):
            raise ValueError(f'DeconvSRCNN: deconv_layers must list conv numbers among 1, 2, 3; got {deconv_layers}')
        deconvolve(DeconvSRCNN, self, [f'conv{layer}' for layer in deconv_layers], 'conv1',
                   dict(deconv_settings, block=block))
