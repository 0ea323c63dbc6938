"""Test with BasicSR's pipeline, with this package's archs registered.

For people without a BasicSR checkout (the pip package ships no ``test.py`` script)::

    python -m deconv_basicsr.test -opt options/test_edsr_deconv_x2.yml
    deconv-basicsr-test -opt options/test_edsr_deconv_x2.yml

It accepts BasicSR's flags (``-opt``, ``--launcher``, ``--debug``, ``--force_yml``, ``--local_rank``).
The root path is the current directory: results land in ``results/<name>/``.
"""
import os

import deconv_basicsr  # noqa: F401  (patches BasicSR, registers the archs)
from basicsr.test import test_pipeline


def main():
    """Run ``basicsr.test.test_pipeline`` with the current directory as root path."""
    test_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
