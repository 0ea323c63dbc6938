"""Collect BasicSR test results into the paper's Table 1 layout.

BasicSR's test pipeline logs, for every test set, ``Validation <set>`` followed by one ``# <metric>: <value>``
line per metric into ``results/<name>/test_<name>_<time>.log``. ``collect_table`` reads those logs for the
bicubic, baseline and deconvolution runs of each scale and lays them out as rows dataset x scale, columns
Bicubic / baseline / Deconv / difference (Deconv - baseline).
"""
import csv
import glob
import io
import re
from os import path as osp

__all__ = ['read_test_logs', 'collect_table', 'table_to_markdown', 'table_to_csv']

_VALIDATION = re.compile(r'Validation (\S+)\s*$')
_METRIC = re.compile(r'^\s+# (\w+): ([-+\d.eE]+|nan|inf)')


def read_test_logs(result_dir):
    """Metrics per test set from the logs of one BasicSR results folder.

    Args:
        result_dir (str): e.g. ``results/edsr_x2``.

    Returns:
        dict[str, dict[str, float]]: ``{test set name: {metric: value}}``; empty when there is no log.
        Where several logs exist, later ones (by time stamp in the name) win.
    """
    results = {}
    for log in sorted(glob.glob(osp.join(result_dir, 'test_*.log'))):
        current = None
        with open(log, encoding='utf-8', errors='replace') as f:
            for line in f:
                match = _VALIDATION.search(line)
                if match:
                    current = results.setdefault(match.group(1), {})
                    continue
                match = _METRIC.match(line)
                if match and current is not None:
                    current[match.group(1)] = float(match.group(2))
                elif not line.startswith('\t'):
                    current = None
    return results


def collect_table(results_root, methods, scales, datasets, metric='psnr'):
    """Table rows (dataset x scale) from several results folders.

    Args:
        results_root (str): BasicSR's ``results`` folder.
        methods (dict[str, str]): Column label -> results folder name template with ``{scale}``, in column
            order; the last two are the baseline and the deconvolution model, whose difference is added.
        scales (Sequence[int]): Scales, e.g. (2, 3).
        datasets (Sequence[str]): Test set names, in row order.
        metric (str): Metric name as in the option files. Default: 'psnr'.

    Returns:
        tuple[list[str], list[list]]: Header and rows; a missing value is None. Rows without any value are
        left out.
    """
    labels = list(methods)
    header = ['Dataset', 'Scale'] + labels + [f'{labels[-1]} - {labels[-2]}']
    logs = {(label, s): read_test_logs(osp.join(results_root, template.format(scale=s)))
            for label, template in methods.items() for s in scales}
    rows = []
    for dataset in datasets:
        for s in scales:
            values = [logs[(label, s)].get(dataset, {}).get(metric) for label in labels]
            if all(v is None for v in values):
                continue
            diff = None if values[-1] is None or values[-2] is None else values[-1] - values[-2]
            rows.append([dataset, f'x{s}'] + values + [diff])
    return header, rows


def _format(value, digits, signed=False):
    if value is None:
        return ''
    return f'{value:+.{digits}f}' if signed else f'{value:.{digits}f}'


def table_to_markdown(header, rows, digits=3):
    """Markdown table; missing values are shown as '-'."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(['---'] * 2 + ['---:'] * (len(header) - 2)) + '|']
    for row in rows:
        cells = row[:2] + [_format(v, digits) or '-' for v in row[2:-1]] + [_format(row[-1], digits, True) or '-']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def table_to_csv(header, rows, digits=4):
    """CSV text; missing values are empty cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(header)
    for row in rows:
        writer.writerow(row[:2] + [_format(v, digits) for v in row[2:]])
    return buf.getvalue()
