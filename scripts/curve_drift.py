"""How far retrained runs moved from the same runs in another record (another machine or CPU capability).

    git show 4ba67ab:docs/study/cpu/curves.csv > /tmp/old_curves.csv
    python scripts/curve_drift.py /tmp/old_curves.csv docs/study/cpu/curves.csv

Prints a Markdown table: per run held by both records, the validations compared, the first iteration whose
PSNR differs, the largest absolute difference and the final difference (dB).
"""
import argparse

from deconv_basicsr.experiments import curves as cv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('reference', help='curves.csv of the reference record')
    parser.add_argument('record', help='curves.csv of the retrained runs')
    args = parser.parse_args(argv)
    result = cv.drift(cv.read_csv(args.reference), cv.read_csv(args.record))
    print('| run | validations | first differing iteration | largest difference (dB) | final difference (dB) |')
    print('|---|---|---|---|---|')
    for run, (count, first, largest, final) in sorted(result.items(), key=lambda item: item[0].name):
        print(f"| {run.name} | {count} | {first if first is not None else 'none'} | {largest:.4f} | {final:+.4f} |")
    if not result:
        print('(no run in both records)')


if __name__ == '__main__':
    main()
