"""impasto: neural style transfer toolkit.

Importing this package imports no method, no optional dependency, and touches no disk or network.
"""

__version__ = "0.1.0"
