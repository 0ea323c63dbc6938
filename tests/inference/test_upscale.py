"""``python -m deconv_basicsr.upscale``: files and folders, tiles, bad images and bad checkpoints."""
import cv2
import numpy as np
import pytest
import torch

from deconv_basicsr import upscale
from deconv_basicsr.inference import load_network, upscale_image

from helpers import check_python, run_python, write_options


def _write_images(folder):
    """An 8-bit colour, a 16-bit gray and an 8-bit BGRA image, and a file that is no image."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = {'colour.png': rng.integers(0, 256, (12, 10, 3), dtype=np.uint8),
              'gray16.png': rng.integers(0, 65536, (9, 13), dtype=np.uint16),
              'alpha.png': rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)}
    for name, img in images.items():
        assert cv2.imwrite(str(folder / name), img)
    (folder / 'broken.jpg').write_text('not an image')
    return images


def test_folder_upscaled_bad_image_reported_and_others_written(deconv_edsr_checkpoint, tmp_path, capsys):
    images = _write_images(tmp_path / 'in')
    with pytest.raises(SystemExit) as info:
        upscale.main(['-i', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '-m', str(deconv_edsr_checkpoint[0]),
                      '--device', 'cpu'])
    assert info.value.code == '1 of 4 images failed'
    errors = capsys.readouterr().err
    assert f'error: {tmp_path / "in" / "broken.jpg"}: cannot read the image' in errors
    net = load_network(deconv_edsr_checkpoint[0])
    for name, img in images.items():
        out = cv2.imread(str(tmp_path / 'out' / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(out, upscale_image(net, img)), name


def test_tiles_and_option_file_give_the_same_image(deconv_edsr_checkpoint, tmp_path):
    path, network_g = deconv_edsr_checkpoint
    image = _write_images(tmp_path / 'in')['colour.png']
    options = write_options(tmp_path / 'net.yml', {'name': 'x', 'network_g': network_g})
    upscale.main(['-i', str(tmp_path / 'in' / 'colour.png'), '-o', str(tmp_path / 'tiled'), '-m', str(path),
                  '--opt', options, '--tile', '5', '--tile-pad', '6', '--precision', 'fp32'])
    tiled = cv2.imread(str(tmp_path / 'tiled' / 'colour.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(tiled, upscale_image(load_network(path), image))


def test_same_name_twice_is_an_error_not_an_overwrite(deconv_edsr_checkpoint, tmp_path, capsys):
    images = _write_images(tmp_path / 'in')
    (tmp_path / 'in' / 'broken.jpg').unlink()
    assert cv2.imwrite(str(tmp_path / 'in' / 'colour.jpg'), np.zeros((5, 7, 3), np.uint8))
    with pytest.raises(SystemExit, match='1 of 4 images failed'):
        upscale.main(['-i', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '-m', str(deconv_edsr_checkpoint[0])])
    assert f"error: {tmp_path / 'in' / 'colour.png'}: {tmp_path / 'out' / 'colour.png'} is already the output" \
        in capsys.readouterr().err
    out = cv2.imread(str(tmp_path / 'out' / 'colour.png'), cv2.IMREAD_UNCHANGED)
    assert out.shape == (10, 14, 3)  # colour.jpg comes first (sorted names) and is kept


@pytest.mark.parametrize('content, message', [('network_g: {type: NoSuchArch}', "No object named 'NoSuchArch'"),
                                              ('network_g: [', 'not valid YAML at line'), ('name: x', 'has no network_g'),
                                              ('', 'empty')])
def test_wrong_option_file_one_line_error(deconv_edsr_checkpoint, tmp_path, content, message):
    (tmp_path / 'net.yml').write_text(content)
    with pytest.raises(SystemExit) as info:
        upscale.main(['-i', 'x.png', '-o', str(tmp_path / 'out'), '-m', str(deconv_edsr_checkpoint[0]),
                      '--opt', str(tmp_path / 'net.yml')])
    assert info.value.code.startswith('error: ') and message in info.value.code and '\n' not in info.value.code


def test_wrong_checkpoint_one_line_error(tmp_path):
    _write_images(tmp_path / 'in')
    torch.save({'iter': 1}, tmp_path / 'state.pth')
    result = run_python(['-m', 'deconv_basicsr.upscale', '-i', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'),
                         '-m', str(tmp_path / 'state.pth')])
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == (f'error: {tmp_path / "state.pth"}: holds no network weights '
                                                      '(neither params_ema nor params nor a state_dict)')
    assert not (tmp_path / 'out').exists()


def test_module_command_runs(deconv_edsr_checkpoint, tmp_path):
    _write_images(tmp_path / 'in')
    (tmp_path / 'in' / 'broken.jpg').unlink()
    result = check_python(['-m', 'deconv_basicsr.upscale', '-i', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'),
                           '-m', str(deconv_edsr_checkpoint[0])])
    assert '3 image(s) written to' in result.stdout
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['alpha.png', 'colour.png', 'gray16.png']
