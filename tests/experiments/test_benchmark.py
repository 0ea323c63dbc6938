"""The benchmark: its reference-style layer computes FastDeconv's function, and the script's figures."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import check_python, subprocess_env

from deconv_basicsr.experiments import benchmark
from deconv_basicsr.experiments.reference_layer import ReferenceDeconv
from deconv_basicsr.layers import FastDeconv

BENCHMARK = str(Path(__file__).resolve().parents[2] / 'scripts' / 'benchmark.py')


@pytest.mark.parametrize('kwargs', [dict(block=4), dict(block=8, n_iter=15, stride=2)])
def test_reference_layer_computes_fastdeconv(kwargs):
    torch.manual_seed(0)
    layer = FastDeconv(8, 6, 3, padding=1, **kwargs).double()
    reference = ReferenceDeconv(layer)
    x = torch.randn(2, 8, 13, 11, dtype=torch.float64) * 3 + 1
    x_ref = x.clone().requires_grad_()
    x.requires_grad_()
    out, out_ref = layer(x), reference(x_ref)
    torch.testing.assert_close(out_ref, out)
    grad = torch.randn_like(out)
    out.backward(grad)
    out_ref.backward(grad)
    torch.testing.assert_close(x_ref.grad, x.grad)
    torch.testing.assert_close(reference.weight.grad, layer.weight.grad)
    torch.testing.assert_close(reference.running_deconv, layer.running_deconv[0])
    layer.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(reference(x), layer(x))


def test_isqrt_section_times_both_methods_side_by_side():
    settings = benchmark.Settings(isqrt_dims=(6, 9), isqrt_iters=(3, 7), isqrt_rounds=2)
    rows = benchmark.isqrt_rows(torch.device('cpu'), settings)
    assert [(r['d'], r['n_iter'], r['method']) for r in rows] == [
        (d, n, m) for d in (6, 9) for n in (3, 7) for m in ('newton_schulz', 'spectral')]
    assert [r['computed_in'] for r in rows[:4]] == ['float32'] * 2 + ['float64'] * 2
    assert all(r['ms'] > 0 for r in rows)
    assert all(r['ratio'] == 1 for r in rows if r['method'] == 'newton_schulz')
    cov = benchmark.covariance(9)
    eigvals = torch.linalg.eigvalsh(cov)
    torch.testing.assert_close(cov, cov.T)
    assert eigvals.min() > 0 and eigvals.max() / eigvals.min() > 100


def test_script_times_the_networks_quietly(tmp_path):
    out = tmp_path / 'bench.json'
    result = subprocess.run([sys.executable, BENCHMARK, '--quick', '--device', 'cpu', '--threads', '1', '--networks',
                             'SRCNN', '--patch', '12', '--isqrt-dims', '--json', str(out)], env=subprocess_env(),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # Nothing but the table: no profiler log lines, no CUDA error without a GPU, no allocator warning.
    assert result.stderr == ''
    assert result.stdout.startswith('CPU: ') and 'profiler' not in result.stdout and 'ERROR' not in result.stdout
    record = json.loads(out.read_text())
    result, = record['results']
    assert 'isqrt' not in result and len(result['environment']['load_average']) == 3
    rows = {row['variant']: row for row in result['networks']}
    assert list(rows) == ['plain', 'exact (spectral)', 'fast (stats_period=8)', 'reference', 'fused']
    # Per training step: the fast variant computes statistics at one step in 8, the exact one at every step.
    assert rows['fast (stats_period=8)']['train_ms'] < rows['exact (spectral)']['train_ms']
    assert rows['plain']['train_ratio'] == rows['plain']['eval_ratio'] == rows['plain']['memory_ratio'] == 1
    assert rows['fused']['train_ms'] is None and rows['fused']['eval_ms'] > 0
    # The deconvolution layers' patch matrices and statistics take memory the plain network does not need.
    assert all(rows[v]['memory_ratio'] > 1 for v in ('exact (spectral)', 'reference'))


def test_script_isqrt_only(tmp_path):
    out = tmp_path / 'isqrt.json'
    result = check_python([BENCHMARK, '--isqrt-only', '--quick', '--device', 'cpu', '--isqrt-dims', '8',
                           '--isqrt-iters', '2', '--json', str(out)], timeout=120)
    assert '| 8 | 2 | spectral | float32 |' in result.stdout
    record = json.loads(out.read_text())
    assert record['settings']['networks'] == [] and record['settings']['isqrt_rounds'] == 2
    assert [row['method'] for row in record['results'][0]['isqrt']] == ['newton_schulz', 'spectral']
