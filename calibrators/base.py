"""What every persisted calibrator shares: the fitted check, input checks and persistence.

A calibrator subclasses :class:`Persisted` and names its ``method`` (the ``"method"`` of its
``to_dict()``), the attribute that ``fit`` sets (``_fitted_attribute``), ``get_params()`` (JSON-
safe constructor parameters, ``{}`` by default), ``_validated_params()`` and
``_fitted_dict()``. It then gets :meth:`Persisted.to_dict`
(``{"method", "params", "fitted"}``) and, in its own ``from_dict``, :meth:`Persisted._restore`
(the checked ``fitted`` section and an instance built from ``params``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from calibrators._validation import check_probabilities


def fitted_section(data, method: str) -> dict:
    """Check ``data["method"] == method`` and return ``data["fitted"]``."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a dict from to_dict(); got {type(data).__name__}")
    if data.get("method") != method:
        raise ValueError(f"expected method {method!r}; got {data.get('method')!r}")
    fitted = data.get("fitted")
    if not isinstance(fitted, dict):
        raise ValueError(f"a {method} calibrator dict needs a 'fitted' mapping")
    return fitted


def check_n_classes(value) -> int:
    """An integer ``n_classes >= 2`` (as stored by ``to_dict``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(f"n_classes must be an integer >= 2; got {value!r}")
    return int(value)


def check_positive_number(value, name: str) -> float:
    """``float(value)`` for a finite real ``value > 0`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return value


def check_fitted(model, attribute: str, how_to_fit: str) -> None:
    """Raise scikit-learn's ``NotFittedError`` unless ``model`` has ``attribute``."""
    if not hasattr(model, attribute):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet; {how_to_fit}"
        )


def fit_diagnostics(model) -> dict[str, Any]:
    """``n_iter``, ``converged``, ``loss_before`` and ``loss_after`` of an iterative fit."""
    return {
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "loss_before": float(model.loss_before_),
        "loss_after": float(model.loss_after_),
    }


def restore_diagnostics(model, fitted: dict) -> None:
    """Set the attributes of :func:`fit_diagnostics` from a stored ``fitted`` mapping."""
    model.n_iter_ = int(fitted.get("n_iter", 0))
    model.converged_ = bool(fitted.get("converged", True))
    model.loss_before_ = float(fitted.get("loss_before", math.nan))
    model.loss_after_ = float(fitted.get("loss_after", math.nan))


class Persisted:
    """Base of the fitted, JSON-persisted calibrators (see the module docstring)."""

    method: ClassVar[str]
    _fitted_attribute: ClassVar[str]
    _how_to_fit: ClassVar[str] = "call fit(P, y) first"

    def get_params(self) -> dict:
        """Constructor parameters, JSON-safe."""
        return {}

    def _validated_params(self):
        """Check the constructor parameters (raises ``ValueError``)."""
        return None

    def _fitted_dict(self) -> dict:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        check_fitted(self, self._fitted_attribute, self._how_to_fit)

    def _checked_input(self, P) -> np.ndarray:
        """Validated ``P`` with the fitted number of columns (``n_classes_``)."""
        self._check_fitted()
        P = check_probabilities(P)
        if P.shape[1] != self.n_classes_:
            raise ValueError(f"P has {P.shape[1]} columns; the fit had {self.n_classes_} classes")
        return P

    def predict(self, P) -> np.ndarray:
        """Top label of :meth:`transform` (ties: the lowest index)."""
        return np.argmax(self.transform(P), axis=1)

    def to_dict(self) -> dict:
        """JSON-safe ``{"method": ..., "params": get_params(), "fitted": {...}}``."""
        self._check_fitted()
        return {"method": self.method, "params": self.get_params(), "fitted": self._fitted_dict()}

    @classmethod
    def _restore(cls, data) -> tuple[Any, dict]:
        """``(instance built from data["params"], data["fitted"])``, both checked."""
        fitted = fitted_section(data, cls.method)
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise ValueError(f"a {cls.method} dict needs a 'params' mapping")
        model = cls(**params)
        model._validated_params()
        return model, fitted
