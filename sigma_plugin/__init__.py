"""sigma_plugin: σReparam and attention-entropy tracking for fairseq Transformers.

``sigma_plugin.nn`` is plain torch. Importing the package with fairseq installed also
registers the models, criteria and optimizers (this is what ``--user-dir`` does).
"""
__version__ = "0.1.0"

try:
    import fairseq  # noqa: F401
except ImportError:  # library-only use (sigma_plugin.nn) without fairseq
    pass
else:
    from ._torch_compat import allow_fairseq_checkpoints

    allow_fairseq_checkpoints()
    from . import criterions, models, optim  # noqa: F401,E402
