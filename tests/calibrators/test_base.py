import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from calibrators.base import check_n_classes, check_positive_number, fitted_section
from calibrators.registry import CALIBRATORS

P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])


@pytest.mark.parametrize("method", sorted(CALIBRATORS))
def test_every_calibrator_refuses_use_before_fit(method):
    model = CALIBRATORS[method]()
    for use in (model.transform, model.predict):
        with pytest.raises(NotFittedError, match=f"This {type(model).__name__} instance is not"):
            use(P)
    with pytest.raises(NotFittedError, match=r"call fit\(P, y\) first"):
        model.to_dict()


@pytest.mark.parametrize("method", sorted(CALIBRATORS))
def test_every_calibrator_checks_columns_and_stored_sections(method):
    model = CALIBRATORS[method]().fit(P, [0, 1, 2, 0])
    with pytest.raises(ValueError, match="P has 2 columns; the fit had 3 classes"):
        model.transform([[0.5, 0.5]])
    np.testing.assert_array_equal(model.predict(P), np.argmax(model.transform(P), axis=1))
    stored = model.to_dict()
    assert stored["method"] == method
    with pytest.raises(ValueError, match="'params' mapping"):
        CALIBRATORS[method].from_dict(stored | {"params": [1]})
    with pytest.raises(ValueError, match="'fitted' mapping"):
        CALIBRATORS[method].from_dict(stored | {"fitted": None})


def test_fitted_section_and_number_checks():
    with pytest.raises(ValueError, match="expected a dict"):
        fitted_section([], "temperature")
    with pytest.raises(ValueError, match="expected method 'vector'; got 'temperature'"):
        fitted_section({"method": "temperature", "fitted": {}}, "vector")
    assert fitted_section({"method": "vector", "fitted": {"a": 1}}, "vector") == {"a": 1}
    assert check_n_classes(3) == 3
    for bad in (1, True, 2.0, None):
        with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
            check_n_classes(bad)
    assert check_positive_number(2, "T") == 2.0
    for bad in (0, -1.0, float("inf"), float("nan"), True, "1"):
        with pytest.raises(ValueError, match="T must be a positive finite number"):
            check_positive_number(bad, "T")
