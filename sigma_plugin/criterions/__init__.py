"""fairseq criterions registrations: every module in this folder is imported (and so registered),
then ``<criterion>_with_sigma`` for every criterion registered so far (twins.register_criterion_twins)."""
import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

from .twins import register_criterion_twins  # noqa: E402

register_criterion_twins()
