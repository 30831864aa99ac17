"""Kernel providers: where the guest kernel, its modules and its build tree come from."""

from lab.kernel.base import Kernel
from lab.kernel.resolve import resolve_kernel

__all__ = ["Kernel", "resolve_kernel"]
