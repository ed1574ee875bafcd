"""qilin_lib: the shared library behind the Qilin-Med reproduction notebooks.

Modules are small on purpose: each notebook reads top to bottom and calls into these.

Importing the package pins the CPU numerics (qilin_lib.numerics) before torch computes anything, so that
notebooks, the CLI, launched workers and tests all run one instruction-set path and thread count.
"""

from .numerics import pin as _pin_numerics

_pin_numerics()

__version__ = "0.1.0"
