"""sigma_plugin: σReparam and attention-entropy tracking for fairseq Transformers.

``sigma_plugin.nn`` is plain torch. The fairseq components (models, criteria, the
``lars`` optimizer) are registered by ``register()``, which runs by itself when the
package is imported with fairseq already loaded -- which is what
``fairseq-train --user-dir sigma_plugin`` does. A program that imports sigma_plugin
*before* fairseq and then uses fairseq in the same process calls
``sigma_plugin.register()`` itself. Keeping fairseq out of a plain import keeps the
recipe steps (``python -m sigma_plugin.recipe.*``) fast.
"""
import sys

__version__ = "0.1.0"


def register() -> None:
    """Register the fairseq components and allowlist fairseq's checkpoint classes for
    torch's weights_only loading. Idempotent."""
    from ._torch_compat import allow_fairseq_checkpoints

    allow_fairseq_checkpoints()
    _install_one_line_errors()
    from . import criterions, feature_transforms, models, optim  # noqa: F401  (importing optim registers)
    models.register()  # after fairseq's own models: every arch gets its sigma_ twin
    criterions.register()


def _install_one_line_errors() -> None:
    """Flag errors of the plugin (exceptions whose class sets ``one_line``) end fairseq-train /
    fairseq-generate with ``<program>: error: <message>`` (exit status 1), no traceback."""
    previous = sys.excepthook
    if getattr(previous, "_sigma_plugin", False):
        return

    def hook(exc_type, exc, tb):
        if getattr(exc_type, "one_line", False):
            import os
            sys.stderr.write(f"{os.path.basename(sys.argv[0] or 'python')}: error: {exc}\n")
            return
        previous(exc_type, exc, tb)

    hook._sigma_plugin = True
    sys.excepthook = hook


if "fairseq" in sys.modules:
    register()
