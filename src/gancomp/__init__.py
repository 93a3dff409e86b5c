"""gancomp: category-specialised learned image compression.

Importing the package is cheap: TensorFlow is only imported by the modules that need it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
