"""``remaplab reproduce``: a C reproducer compiled statically, run N times on clean guests
spread over M VMs, every console report classified by the lab's crash table (syzbot's recipe:
the kernel, its config, ``gcc repro.c -lpthread -static``, boot, copy, run)."""
