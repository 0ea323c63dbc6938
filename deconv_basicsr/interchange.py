"""A loaded network (``deconv_basicsr.inference.load_network``) in formats that tools outside this project read.

``export_onnx`` writes any network as ONNX with dynamic batch, height and width. ``spandrel_state_dict``
writes an EDSR (a fused DeconvEDSR) in the layout of spandrel's RCAN, which spandrel detects: spandrel
(0.4) has no EDSR, and BasicSR's EDSR keys are detected as nothing. RCAN with one residual group holds EDSR
exactly: each residual block becomes an RCAB whose channel attention is switched off (its sigmoid saturates
to exactly 1), the group's closing convolution is ``conv_after_body`` and the body's closing convolution is
an identity; RCAN adds the head's features twice where EDSR adds them once, so the group's convolution
is doubled and the upsampler's first convolution halved (powers of two: no rounding).
"""
import torch
from torch import nn

from deconv_basicsr.inference import input_channels

ATTENTION_OFF = 100.  # sigmoid(100) is exactly 1 in float32, bfloat16 and float16


def export_onnx(net, path, opset=None):
    """Write ``net`` as an ONNX file with dynamic batch, height and width.

    The graph has input ``input`` (n, c, h, w) and output ``output`` (n, c_out, h * scale, w * scale),
    both float32 RGB in [0, 1] like the network's. Needs the ``export`` extra (onnx, onnxscript).

    Args:
        net (nn.Module): Network on the CPU, float32, in eval mode.
        path (str): The ONNX file to write.
        opset (int | None): ONNX opset version; None: the exporter's default. Default: None.
    """
    example = torch.rand(1, input_channels(net), 32, 32, device=next(net.parameters()).device)
    dynamic = torch.export.Dim.DYNAMIC
    torch.onnx.export(net, (example, ), path, input_names=['input'], output_names=['output'], opset_version=opset,
                      dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic}, ), dynamo=True, external_data=False,
                      verbose=False)


def spandrel_state_dict(edsr):
    """The weights of ``edsr`` in the layout of spandrel's RCAN (one residual group), which computes the same.

    spandrel reads the image range as 255 and the residual scale as 1 (neither is in a state_dict): the
    input and output mean shifts carry ``img_range / 255`` and the mean, the RCABs' second convolutions
    ``res_scale``, so any EDSR converts.

    Args:
        edsr (nn.Module): BasicSR's ``EDSR`` with 3 input and output channels, e.g. a fused DeconvEDSR.

    Returns:
        dict[str, Tensor]: State_dict for ``torch.save`` (``.pth``), loaded by ``spandrel.ModelLoader``.
    """
    if not hasattr(edsr, 'conv_after_body') or input_channels(edsr) != 3 or edsr.conv_last.out_channels != 3:
        raise ValueError("spandrel's layout holds EDSR networks with 3 input and output channels only")
    num_feat = edsr.conv_first.out_channels
    mean, img_range = edsr.mean.reshape(3).float(), float(edsr.img_range)
    blocks = list(edsr.body)
    out = {
        'sub_mean.weight': torch.eye(3).reshape(3, 3, 1, 1) * (img_range / 255),
        'sub_mean.bias': -img_range * mean,
        'add_mean.weight': torch.eye(3).reshape(3, 3, 1, 1) * (255 / img_range),
        'add_mean.bias': 255 * mean,
        'head.0.weight': edsr.conv_first.weight, 'head.0.bias': edsr.conv_first.bias,
        'tail.1.weight': edsr.conv_last.weight, 'tail.1.bias': edsr.conv_last.bias,
    }
    attention = {'conv_du.0.weight': torch.zeros(1, num_feat, 1, 1), 'conv_du.0.bias': torch.zeros(1),
                 'conv_du.2.weight': torch.zeros(num_feat, 1, 1, 1),
                 'conv_du.2.bias': torch.full((num_feat, ), ATTENTION_OFF)}
    for index, block in enumerate(blocks):
        prefix = f'body.0.body.{index}.body.'
        out.update({prefix + '0.weight': block.conv1.weight, prefix + '0.bias': block.conv1.bias,
                    prefix + '2.weight': block.conv2.weight * block.res_scale,
                    prefix + '2.bias': block.conv2.bias * block.res_scale})
        out.update({prefix + '3.' + key: value for key, value in attention.items()})
    group_conv = f'body.0.body.{len(blocks)}.'
    out.update({group_conv + 'weight': 2 * edsr.conv_after_body.weight,
                group_conv + 'bias': 2 * edsr.conv_after_body.bias})
    identity = torch.zeros(num_feat, num_feat, 3, 3)
    identity[range(num_feat), range(num_feat), 1, 1] = 1
    out.update({'body.1.weight': identity, 'body.1.bias': torch.zeros(num_feat)})
    for index, module in enumerate(edsr.upsample):
        if isinstance(module, nn.Conv2d):
            halve = 0.5 if index == 0 else 1  # its input, the body's output, is doubled
            out.update({f'tail.0.{index}.weight': module.weight * halve, f'tail.0.{index}.bias': module.bias})
    return {key: value.detach().float().cpu().contiguous() for key, value in out.items()}
