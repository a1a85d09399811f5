"""fairseq criteria. Importing this package registers nothing (the fairseq-free metric maths --
``sigma_reduction``, ``sigma_encoding``, ``sigma_snapshot`` -- import without fairseq);
``register()`` -- which ``sigma_plugin.register()`` calls -- imports every module of the folder
(each registers its criteria), then ``<criterion>_with_sigma`` for every criterion registered so
far (twins.register_criterion_twins)."""
import importlib
import pkgutil


def register() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    from .twins import register_criterion_twins
    register_criterion_twins()
