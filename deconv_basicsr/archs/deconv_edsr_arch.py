from basicsr.archs.edsr_arch import EDSR
from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.layers import conv_names, deconvolve, takes_deconv_settings

EDSR_PARTS = ('conv_first', 'body', 'conv_after_body', 'upsample', 'conv_last')


@ARCH_REGISTRY.register()
@takes_deconv_settings
class DeconvEDSR(EDSR):
    """EDSR whose convolutions in ``deconv_modules`` are FastDeconv layers (network deconvolution).

    The default deconvolves only the convs inside the residual blocks, the seed paper's design: the head,
    the upsampler and the tail stay plain convolutions (decorrelating them hurts). Module names are EDSR's,
    so EDSR and DeconvEDSR checkpoints share their parameter keys (DeconvEDSR adds statistic buffers), and
    for the same seed both start from the same weights.

    Args:
        num_in_ch (int): Channel number of inputs.
        num_out_ch (int): Channel number of outputs.
        num_feat (int): Channel number of intermediate features. Default: 64.
        num_block (int): Block number in the trunk network. Default: 16.
        upscale (int): Upsampling factor. Support 2^n and 3. Default: 4.
        res_scale (float): Used to scale the residual in residual block. Default: 1.
        img_range (float): Image range. Default: 255.
        rgb_mean (tuple[float]): Image mean in RGB orders. Default: DIV2K's (0.4488, 0.4371, 0.4040).
        deconv_modules (list[str]): Which of EDSR's parts get FastDeconv, among 'conv_first', 'body',
            'conv_after_body', 'upsample', 'conv_last'. Default: ['body'].
        input_layer (str | dict): Settings of a deconvolved ``conv_first`` (it sees the input pixels):
            'reference' (Ye et al.'s input-layer convention, ``n_iter=15, freeze=True``), 'same', or a dict of
            FastDeconv settings overriding the others. Default: 'reference'.
        **deconv_settings: FastDeconv's settings (``block``, ``n_iter``, ``eps``, ...), the same for every
            deconvolved layer; see ``deconv_basicsr.layers.FastDeconv``.
    """

    def __init__(self,
                 num_in_ch,
                 num_out_ch,
                 num_feat=64,
                 num_block=16,
                 upscale=4,
                 res_scale=1,
                 img_range=255.,
                 rgb_mean=(0.4488, 0.4371, 0.4040),
                 deconv_modules=('body', ),
                 **deconv_settings):
        super().__init__(num_in_ch, num_out_ch, num_feat, num_block, upscale, res_scale, img_range, rgb_mean)
        deconv_modules = [deconv_modules] if isinstance(deconv_modules, str) else list(deconv_modules)
        unknown = [name for name in deconv_modules if name not in EDSR_PARTS]
        if unknown:
            raise ValueError(f'DeconvEDSR: deconv_modules has unknown part(s) {unknown}; choose from {EDSR_PARTS}')
        names = [name for name in conv_names(self) if name.split('.')[0] in deconv_modules]
        deconvolve(DeconvEDSR, self, names, 'conv_first', deconv_settings)
