"""Moved to :mod:`sigma_plugin.util.atomic`. This alias remains only for asr/decode_ctc.py
(another change in flight owns it); delete it once nothing imports ``sigma_plugin.corpus.atomic``."""
from sigma_plugin.util.atomic import (atomic_open, atomic_path, remove_stale_temps,  # noqa: F401
                                      temp_path_for, write_lines, write_text)
