"""tensorfields: tensor-decomposed scene representations, trained and rendered."""

__version__ = "0.1.0"
