"""Research code. The study of the paper's claims through BasicSR's pipeline (``study``: its ``design``,
``runner``, ``curves`` and ``report``); studies and measurements run in one process on images in memory
(``inprocess``): ``benchmark`` (speed and memory, with ``reference_layer``), ``eval_stats`` and
``fast_mode``; side-by-side timing (``timing``). Scripts in ``scripts/`` parse arguments and call these."""
import deconv_basicsr.plugin  # noqa: E402,F401  (BasicSR importable, the archs and the model registered)
