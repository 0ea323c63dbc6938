"""Train with BasicSR's pipeline, with this package's archs registered and its training features.

For people without a BasicSR checkout (the pip package ships no ``train.py`` script)::

    python -m deconv_basicsr.train -opt options/train_edsr_deconv_x2.yml [--auto_resume] [--debug]
    deconv-basicsr-train -opt options/train_edsr_deconv_x2.yml

It accepts BasicSR's flags (``-opt``, ``--auto_resume``, ``--launcher``, ``--debug``, ``--force_yml``,
``--local_rank``) and ``--check_images`` (decode every training image at start-up). The root path is the
current directory: ``experiments/`` and ``tb_logger/`` are created there, and ``--auto_resume`` looks there.
Ctrl-C (or SIGTERM) saves the current iteration and prints the command that resumes it
(``deconv_basicsr.training.interruption``).
"""
import os

from deconv_basicsr.training import train_pipeline


def main():
    """Run BasicSR's ``train_pipeline`` with the project's features (``deconv_basicsr.training``), the current
    directory as root path."""
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
