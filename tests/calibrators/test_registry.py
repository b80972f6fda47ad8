import json

import numpy as np
import pytest

from calibrators.isotonic import IsotonicCalibration
from calibrators.registry import calibrator_from_dict
from calibrators.resoftmax import ResoftmaxScaling
from calibrators.temperature import TemperatureScaling
from calibrators.vector import VectorScaling

P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
Y = np.array([0, 1, 2, 1])


@pytest.mark.parametrize(
    "cls", [TemperatureScaling, VectorScaling, IsotonicCalibration, ResoftmaxScaling]
)
def test_dispatches_on_method(cls):
    model = cls().fit(P, Y)
    rebuilt = calibrator_from_dict(json.loads(json.dumps(model.to_dict())))
    assert type(rebuilt) is cls
    np.testing.assert_array_equal(rebuilt.transform(P), model.transform(P))


@pytest.mark.parametrize("data", [{"method": "platt"}, {}, {"method": None}])
def test_unknown_method(data):
    with pytest.raises(ValueError, match="unknown calibration method"):
        calibrator_from_dict(data)


def test_not_a_dict():
    with pytest.raises(ValueError, match="dict"):
        calibrator_from_dict([("method", "temperature")])
