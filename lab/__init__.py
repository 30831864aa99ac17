"""remaplab: a QEMU-based integration test lab for Linux kernel memory-mapping code."""

__version__ = "0.1.0"
