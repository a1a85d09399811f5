"""Loading checkpoints without computing σReparam's initialisation first."""
from sigma_plugin.nn import deferred_sigma_init


def _defer_init_while_loading_checkpoints() -> None:
    """fairseq-generate & co. build each model and load its checkpoint right away
    (checkpoint_utils.load_model_ensemble_and_task): build with σReparam's initialisation
    deferred, so that loading takes u and γ from the checkpoint without computing them first.

    A wrapper stays the way: fairseq does tell ``task.build_model`` ``from_checkpoint=True`` there,
    but ``fairseq.models.build_model`` does not pass it on to the model class's ``build_model``."""
    from fairseq import checkpoint_utils
    real = checkpoint_utils.load_model_ensemble_and_task
    if getattr(real, "_sigma_plugin", False):
        return

    def load_model_ensemble_and_task(*args, **kwargs):
        with deferred_sigma_init():
            return real(*args, **kwargs)

    load_model_ensemble_and_task._sigma_plugin = True
    load_model_ensemble_and_task.__doc__ = real.__doc__
    checkpoint_utils.load_model_ensemble_and_task = load_model_ensemble_and_task


_defer_init_while_loading_checkpoints()
