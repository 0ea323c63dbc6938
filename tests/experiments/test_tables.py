"""The results table from BasicSR test logs."""
import pytest
from helpers import load_script

from deconv_basicsr.experiments.tables import collect_table, read_test_logs, table_to_csv, table_to_markdown


def write_log(results, name, values, stamp='20260101_000000'):
    """A BasicSR test log with ``values`` = {test set: (psnr, ssim)}."""
    folder = results / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'2026-01-01 00:00:00,000 INFO: \n  name: {name}\n  psnr:[\n']
    for dataset, (psnr, ssim) in values.items():
        lines.append(f'2026-01-01 00:00:01,000 INFO: Validation {dataset}\n'
                     f'\t # psnr: {psnr:.4f}\tBest: {psnr:.4f} @ {name} iter\n'
                     f'\t # ssim: {ssim:.4f}\tBest: {ssim:.4f} @ {name} iter\n\n')
    (folder / f'test_{name}_{stamp}.log').write_text(''.join(lines))


@pytest.fixture
def results(tmp_path):
    root = tmp_path / 'results'
    write_log(root, 'bicubic_x2', {'Set5': (33.6736, 0.9303), 'B100': (29.56, 0.8431)})
    write_log(root, 'edsr_x2', {'Set5': (38.034, 0.9606), 'B100': (32.213, 0.9)})
    write_log(root, 'edsr_deconv_x2', {'Set5': (37.5, 0.95)}, stamp='20260101_000000')
    write_log(root, 'edsr_deconv_x2', {'Set5': (37.994, 0.9604)}, stamp='20260102_000000')  # newer wins
    write_log(root, 'bicubic_x3', {'Set5': (30.4033, 0.8682)})
    return root


def test_read_test_logs(results):
    assert read_test_logs(str(results / 'edsr_deconv_x2')) == {'Set5': {'psnr': 37.994, 'ssim': 0.9604}}
    assert read_test_logs(str(results / 'missing')) == {}


def test_table_layout(results):
    methods = {'Bicubic': 'bicubic_x{scale}', 'EDSR': 'edsr_x{scale}', 'DeconvEDSR': 'edsr_deconv_x{scale}'}
    header, rows = collect_table(str(results), methods, (2, 3), ('Set5', 'Set14', 'B100'))
    assert header == ['Dataset', 'Scale', 'Bicubic', 'EDSR', 'DeconvEDSR', 'DeconvEDSR - EDSR']
    assert rows[0][:2] == ['Set5', 'x2'] and rows[0][-1] == pytest.approx(-0.04)
    assert [r[:2] for r in rows] == [['Set5', 'x2'], ['Set5', 'x3'], ['B100', 'x2']]  # Set14: no results
    markdown = table_to_markdown(header, rows)
    assert '| Set5 | x2 | 33.674 | 38.034 | 37.994 | -0.040 |' in markdown
    assert '| B100 | x2 | 29.560 | 32.213 | - | - |' in markdown
    assert table_to_csv(header, rows).splitlines()[1] == 'Set5,x2,33.6736,38.0340,37.9940,-0.0400'


def test_command_line(results, capsys):
    make_table = load_script('make_table')
    make_table.main(['--results', str(results), '--metric', 'ssim', '--out', str(results / 't')])
    assert '| Set5 | x2 | 0.9303 | 0.9606 | 0.9604 | -0.0002 |' in (results / 't.md').read_text()
    assert (results / 't.csv').read_text().startswith('Dataset,Scale,Bicubic,EDSR,DeconvEDSR')
    with pytest.raises(SystemExit, match='no psnr results'):
        make_table.main(['--results', str(results / 'empty'), '--model', 'srcnn'])
