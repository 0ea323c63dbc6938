"""Test with BasicSR's pipeline, with this package's archs registered and its training features.

For people without a BasicSR checkout (the pip package ships no ``test.py`` script)::

    python -m deconv_basicsr.test -opt options/test_edsr_deconv_x2.yml
    deconv-basicsr-test -opt options/test_edsr_deconv_x2.yml

It accepts BasicSR's flags (``-opt``, ``--launcher``, ``--debug``, ``--force_yml``, ``--local_rank``).
The root path is the current directory: results land in ``results/<name>/``.
"""
import os

from deconv_basicsr.training import test_pipeline


def main():
    """Run BasicSR's ``test_pipeline`` with the project's features (``deconv_basicsr.training``), the current
    directory as root path."""
    test_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
