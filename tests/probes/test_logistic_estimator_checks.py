"""scikit-learn's own estimator checks (`sklearn.utils.estimator_checks`) on TorchLogisticProbe: the API it claims
as a scikit-learn classifier (get_params/set_params and clone, fit returning self, fitted attributes with a
trailing underscore, `classes_`, `n_features_in_`, NotFittedError before fit, idempotent fits, predictions that do
not depend on the batch or on the row order, no change to the input, pickling, ...).

The checks that do not apply fail for a reason the probe chose on purpose; each is listed with its reason and
marked xfail strictly, so a check that starts passing fails here and the list stays true.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from layerwise.probes.logistic import TorchLogisticProbe

# The checks' made-up problems are small and fitted for at most 50 epochs: a few stop unconverged, which no
# check is about (convergence is tested in test_logistic.py).
pytestmark = [pytest.mark.usefixtures("single_torch_thread"),
              pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")]

PROBE = TorchLogisticProbe(device="cpu", max_epochs=50)

FLOAT_LABELS = ("labels are integer layer indices: the check's float labels are refused (TypeError) before "
                "it gets to what it checks")
BINARY_DECISION = ("two classes give [n, 2] logits (a symmetric softmax, see probes/logistic.py), not scikit-learn's "
                   "one-column binary decision (training accuracy and probabilities: test_logistic.py, against "
                   "scikit-learn)")
OWN_MESSAGE = "refused, with the probe's own message rather than scikit-learn's wording"


def expected_failed_checks(estimator) -> dict[str, str]:
    """Each check that does not apply to the probe, and why."""
    return {
        "check_n_features_in_after_fitting": "a width mismatch is " + OWN_MESSAGE + " ('X has 1 columns, the probe "
                                             "was fitted on 4'; n_features_in_ itself is set and checked)",
        "check_complex_data": "complex X is refused as a TypeError (real numbers only), not a ValueError",
        "check_dtype_object": "object arrays are refused (real numeric dtypes only), not converted",
        "check_estimators_empty_data_messages": "an X without rows or columns is " + OWN_MESSAGE,
        "check_estimators_nan_inf": FLOAT_LABELS + " (NaN and inf in X are refused by name: test_logistic.py)",
        "check_classifiers_one_label": FLOAT_LABELS + " (one class is refused: 'need at least two classes')",
        "check_classifiers_classes": "string labels are refused: labels are integer layer indices",
        "check_classifiers_train": BINARY_DECISION,
        "check_classifiers_regression_target": "a continuous target is refused as a TypeError (integer labels only), "
                                               "not a ValueError naming it continuous",
        "check_supervised_y_no_nan": FLOAT_LABELS + " (an inf label is refused with them)",
        "check_supervised_y_2d": "a [n, 1] y is refused (one label per row, 1-D), not raveled with a warning",
        "check_decision_proba_consistency": BINARY_DECISION,
        "check_fit2d_1sample": "one sample is one class, " + OWN_MESSAGE + " ('need at least two classes')",
        "check_fit2d_predict1d": "a 1-D X is " + OWN_MESSAGE + " (a non-empty 2-D array [n_vectors, width])",
        "check_requires_y_none": "fit without y is " + OWN_MESSAGE + " (y must be 1-D with one label per row)",
    }


@parametrize_with_checks([PROBE], expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_scikit_learn_estimator_check(estimator, check):
    check(estimator)

