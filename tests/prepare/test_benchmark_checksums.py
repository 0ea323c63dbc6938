"""Known benchmark sets: the shipped sha256 list, the check naming every differing file; the wheel ships the
list (and the console scripts)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deconv_basicsr.prepare.checksums import check_set, read_checksums, sha256
from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / 'shared' / 'datasets'
SETS = ['B100', 'Set14', 'Set5', 'Urban100']
needs_shared = pytest.mark.skipif(not (SHARED / 'Set5').is_dir(), reason=f'{SHARED} not found')


def test_shipped_list_has_the_four_sets():
    checksums = read_checksums()
    assert sorted(checksums) == SETS
    assert [len(checksums[name]) for name in SETS] == [100, 14, 5, 200]  # Urban100: PNG and WebP of each
    assert checksums['Urban100']['img_001.png'] != checksums['Urban100']['img_001.webp']


@needs_shared
@pytest.mark.parametrize('set_name', SETS)
def test_published_copies_match(set_name):
    assert check_set(str(SHARED / set_name), set_name) == []


@needs_shared
def test_every_differing_unknown_or_missing_file_is_named(tmp_path):
    folder = tmp_path / 'my_set5'
    shutil.copytree(SHARED / 'Set5', folder)
    (folder / 'bird.png').write_bytes((folder / 'bird.png').read_bytes() + b'\0')
    (folder / 'baby.png').unlink()
    shutil.copy(folder / 'head.png', folder / 'extra.png')
    assert check_set(str(folder), 'Set5') == [
        f"{folder / 'bird.png'}: differs from Set5's bird.png (sha256 {read_checksums()['Set5']['bird.png'][:12]}...)",
        f"{folder / 'extra.png'}: not an image of Set5",
        f"{folder / 'baby.png'}: missing",
    ]
    with pytest.raises(ValueError, match='unknown set Set6'):
        check_set(str(folder), 'Set6')


def test_either_format_of_an_image_counts(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'png')
    (tmp_path / 'b.webp').write_bytes(b'webp')
    checksums = {'S': {'a.png': sha256(tmp_path / 'a.png'), 'a.webp': '0' * 64, 'b.png': '1' * 64,
                       'b.webp': sha256(tmp_path / 'b.webp'), 'c.png': '2' * 64, 'c.webp': '3' * 64}}
    assert check_set(str(tmp_path), 'S', checksums) == [f"{tmp_path / 'c.png or c.webp'}: missing"]


@needs_shared
def test_prepare_benchmark_checks_the_set_first(tmp_path, capsys):
    folder = tmp_path / 'hr'
    shutil.copytree(SHARED / 'Set5', folder)
    (folder / 'woman.png').write_bytes((folder / 'woman.png').read_bytes() + b'\0')
    script = load_script('prepare_benchmark')
    args = ['--hr', str(folder), '--set', 'Set5', '--out', str(tmp_path / 'out'), '--scales', '4']
    with pytest.raises(SystemExit, match='is not Set5 as published'):
        script.main(args)
    assert f"error: {folder / 'woman.png'}: differs from Set5's woman.png" in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
    script.main(args + ['--no-check'])
    assert f"warning: {folder / 'woman.png'}" in capsys.readouterr().err
    assert len(list((tmp_path / 'out' / 'LRbicx4').iterdir())) == 5


def test_wheel_ships_the_checksums_and_the_commands(tmp_path):
    source = tmp_path / 'source'
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns('.git', 'build', '*.egg-info', 'datasets',
                                                                'experiments', '.venv', '__pycache__'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(source), '--no-deps', '--no-build-isolation', '-q',
                    '-w', str(tmp_path / 'dist')], check=True, capture_output=True)
    (wheel, ) = (tmp_path / 'dist').glob('*.whl')
    with zipfile.ZipFile(wheel) as archive:
        assert 'deconv_basicsr/prepare/benchmark_checksums.sha256' in archive.namelist()
        (entry_points, ) = [name for name in archive.namelist() if name.endswith('.dist-info/entry_points.txt')]
        commands = archive.read(entry_points).decode()
    for command in ('deconv-basicsr-upscale = deconv_basicsr.upscale:main',
                    'deconv-basicsr-export = deconv_basicsr.export:main'):
        assert command in commands
