"""vmops: GPU virtual machines on Crusoe, Lambda and Nebius behind one model.

Python users start with ``vmops.session.Session`` (and ``vmops.inventory`` for DataFrames).
This module stays import-light: the `vm` command imports it on every start.
"""

__version__ = "0.1.0"
