"""``ResumableModel``: the model side of the project's training features, as a declared mixin."""
import pytest
import torch
from torch import nn

import deconv_basicsr.plugin  # noqa: F401  (BasicSR importable, the archs and the model registered)
from basicsr.models.base_model import BaseModel
from basicsr.models.sr_model import SRModel

from deconv_basicsr.models.deconv_sr_model import DeconvSRModel
from deconv_basicsr.training import ResumableModel, ResumePosition, resumable


def test_any_torch_optimizer_from_the_option_file():
    params = [nn.Parameter(torch.zeros(2))]
    sgd = ResumableModel.get_optimizer(None, 'SGD', params, 0.1, momentum=0.9, weight_decay=0)
    assert type(sgd) is torch.optim.SGD and sgd.defaults['momentum'] == 0.9 and sgd.defaults['lr'] == 0.1
    adam = ResumableModel.get_optimizer(None, 'Adam', params, 1e-4, betas=[0.9, 0.99])
    assert type(adam) is torch.optim.Adam and tuple(adam.defaults['betas']) == (0.9, 0.99)
    with pytest.raises(ValueError, match="'Sgd' is not an optimizer of torch.optim; choose one of .*SGD"):
        ResumableModel.get_optimizer(None, 'Sgd', params, 0.1)
    with pytest.raises(NotImplementedError):  # BasicSR's own stays as it is
        BaseModel.get_optimizer(None, 'SGD', params, 0.1)


def test_resumable_mixes_in_once_and_keeps_the_name():
    model_class = resumable(SRModel)
    assert issubclass(model_class, ResumableModel) and issubclass(model_class, SRModel)
    assert model_class.__name__ == 'SRModel' and model_class is not SRModel
    assert resumable(DeconvSRModel) is DeconvSRModel  # a ResumableModel already
    assert DeconvSRModel.__mro__.index(ResumableModel) < DeconvSRModel.__mro__.index(SRModel)


def test_resume_position_places_an_iteration_in_its_epoch():
    position = ResumePosition(start_iter=7, batches_per_epoch=4)
    assert [position.epoch_of(i) for i in (3, 4, 7, 8)] == [0, 1, 1, 2]


def test_the_best_validation_values_survive_a_resume(tmp_path):
    """BasicSR's ``best_metric_results`` travels in the training state (as plain numbers, which
    ``torch.load(weights_only=True)`` accepts), so "Best ... @ iter" after a resume still counts the validations
    before it."""
    import numpy as np

    class Model(ResumableModel, BaseModel):
        def __init__(self):  # no networks: only the mixin's state
            self.opt = {'val': {'metrics': {'psnr': {'type': 'calculate_psnr'}}}}

    before = Model()
    before._initialize_best_metric_results('val')
    before._update_best_metric_result('val', 'psnr', np.float64(30.5), 4)
    path = tmp_path / 'state.pt'
    torch.save({'local': before.local_training_state()}, path)

    after = Model()
    after.load_local_training_state(torch.load(path, weights_only=True)['local'])
    after._initialize_best_metric_results('val')  # what the next validation does first: keeps the record
    after._update_best_metric_result('val', 'psnr', np.float64(29.0), 8)
    assert after.best_metric_results['val']['psnr'] == {'better': 'higher', 'val': 30.5, 'iter': 4}
    assert Model().local_training_state()['best_metric_results'] == {}  # before any validation
