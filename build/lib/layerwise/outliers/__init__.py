"""Outlier tokens and massive activations: which few vectors drive a layer's geometry.

Modules:
    detect    the detectors (norm ratio to the layer's median, massive activations); no geometry kernel, so
              Study 1's use of them does not depend on Study 3's code
    geometry  Study 3's anisotropy and TwoNN with and without the outliers, and their share of sigma_1^2
    probes    the layer probe with the outlier tokens or the massive dimensions left out

Nothing is imported here: importing `layerwise.outliers.detect` loads that module only.
"""
