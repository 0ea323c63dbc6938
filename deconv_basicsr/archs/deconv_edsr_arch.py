from basicsr.archs.edsr_arch import EDSR
from basicsr.utils.registry import ARCH_REGISTRY

from deconv_basicsr.layers import conv_names, convert_convs

EDSR_PARTS = ('conv_first', 'body', 'conv_after_body', 'upsample', 'conv_last')


@ARCH_REGISTRY.register()
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
        block, n_iter, eps, momentum, sampling_stride, freeze, freeze_iter, isqrt_method, stats_period,
            sync_stats: FastDeconv's settings, the same for every deconvolved layer (see
            ``deconv_basicsr.layers.FastDeconv``).
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
                 block=64,
                 n_iter=5,
                 eps=1e-5,
                 momentum=0.1,
                 sampling_stride=3,
                 freeze=False,
                 freeze_iter=100,
                 isqrt_method='auto',
                 stats_period=1,
                 sync_stats=False):
        super().__init__(num_in_ch, num_out_ch, num_feat, num_block, upscale, res_scale, img_range, rgb_mean)
        deconv_modules = [deconv_modules] if isinstance(deconv_modules, str) else list(deconv_modules)
        unknown = [name for name in deconv_modules if name not in EDSR_PARTS]
        if unknown:
            raise ValueError(f'DeconvEDSR: deconv_modules has unknown part(s) {unknown}; choose from {EDSR_PARTS}')
        settings = dict(block=block, n_iter=n_iter, eps=eps, momentum=momentum, sampling_stride=sampling_stride,
                        freeze=freeze, freeze_iter=freeze_iter, isqrt_method=isqrt_method,
                        stats_period=stats_period, sync_stats=sync_stats)
        convert_convs(self, [name for name in conv_names(self) if name.split('.')[0] in deconv_modules], **settings)
