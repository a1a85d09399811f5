"""fairseq models registrations: every module in this folder is imported (and so registered), then
the σReparam twin ``sigma_<arch>`` of every arch registered so far (twins.register_twins)."""
import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

from .twins import register_twins  # noqa: E402

register_twins()
