"""Kernel providers: where the guest kernel, its modules and its build tree come from."""

from lab.kernel.base import Kernel
from lab.kernel.resolve import resolve_kernel
from lab.kernel.spec import KernelSpec, add_kernel_args

__all__ = ["Kernel", "KernelSpec", "add_kernel_args", "resolve_kernel"]
