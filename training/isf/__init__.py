"""Attribute-conditioned styles for GNR: an implicit style function (ISF-GAN, Liu et al. 2021)
that edits a style code towards named attributes ("hair=red") and keeps the rest.

    from training.isf import load_isf
    isf = load_isf("isf.pt", checkpoint="ckpt.pt")      # ISFMismatchError for another GNR
    isf.attributes                                      # {"hair": ("black", ...), ...}
    z2 = isf.edit(z, {"hair": "red"}, seed=0)           # z: a StyleCode or 8 floats; same kind back
    isf.parse("hair=red,mouth=smile")                   # EditError: one line listing known values

Training, evaluation and the grid: ``python -m training.isf --help``.
"""
from .api import ISF, ISFError, ISFMismatchError, load_isf, ship_isf
from .attributes import AttributeVocab, EditError, LabelsError, read_labels

__all__ = ["ISF", "ISFError", "ISFMismatchError", "AttributeVocab", "EditError", "LabelsError",
           "load_isf", "read_labels", "ship_isf"]
