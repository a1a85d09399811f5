"""fairseq models. Importing this package registers nothing (its fairseq-free modules, such as
``introspection``, import without fairseq); ``register()`` -- which ``sigma_plugin.register()``
calls -- imports every module of the folder (each registers its models by fairseq's decorators),
then registers the σReparam twin ``sigma_<arch>`` of every arch registered so far
(twins.register_twins)."""
import importlib
import pkgutil


def register() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    from .twins import register_twins
    register_twins()
