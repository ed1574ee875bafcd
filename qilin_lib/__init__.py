"""qilin_lib: the shared library behind the Qilin-Med reproduction notebooks.

Modules are small on purpose: each notebook reads top to bottom and calls into these.
"""

__version__ = "0.1.0"
