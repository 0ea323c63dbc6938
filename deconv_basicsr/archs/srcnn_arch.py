from torch import nn
from torch.nn import functional as F

from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class SRCNN(nn.Module):
    """SRCNN: three convolutions on the bicubically upsampled image, no residual learning.

    Paper: Image Super-Resolution Using Deep Convolutional Networks (Dong et al., TPAMI 2016); the
    defaults are its 9-5-5 network with 64 and 32 filters. The LR input is upsampled inside the network
    (PyTorch bicubic), so it takes BasicSR's usual LR/GT pairs and fits PairedImageDataset and the test
    pipeline. Convolutions are zero-padded to keep the size.

    Args:
        num_in_ch (int): Channel number of inputs. Default: 3.
        num_out_ch (int): Channel number of outputs. Default: 3.
        upscale (int): Upsampling factor. Default: 2.
        num_feat (tuple[int]): Filters of the first two convolutions. Default: (64, 32).
        kernel_size (tuple[int]): Kernel sizes of the three convolutions. Default: (9, 5, 5).
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, upscale=2, num_feat=(64, 32), kernel_size=(9, 5, 5)):
        super().__init__()
        if len(num_feat) != 2 or len(kernel_size) != 3:
            raise ValueError(f'SRCNN: num_feat needs 2 values and kernel_size 3, got {num_feat} and {kernel_size}')
        # Zero padding k // 2 keeps the image size only for odd kernels.
        if not all(isinstance(k, int) and k > 0 and k % 2 == 1 for k in kernel_size):
            raise ValueError(f'SRCNN: kernel_size must hold 3 odd positive ints, got {kernel_size}')
        if not all(isinstance(n, int) and n > 0 for n in (num_in_ch, num_out_ch, upscale, *num_feat)):
            raise ValueError(f'SRCNN: num_in_ch, num_out_ch, upscale and num_feat must be positive ints, got '
                             f'{num_in_ch}, {num_out_ch}, {upscale} and {num_feat}')
        self.upscale = upscale
        channels = (num_in_ch, *num_feat, num_out_ch)
        self.conv1, self.conv2, self.conv3 = (
            nn.Conv2d(channels[i], channels[i + 1], k, padding=k // 2) for i, k in enumerate(kernel_size))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=self.upscale, mode='bicubic', align_corners=False)
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)
