# ruff: noqa: E501  (console text is data: its lines are as long as the kernel prints them)
"""Report families for generate.py: (name, title syzkaller's rules give, console text).

Console text follows the printk formats of the kernel code named in each comment; addresses,
offsets and task names are made up.  The titles were written from the rules (which frames
are skipped, which line names the culprit), before the triage code was run on them."""

from __future__ import annotations

REGS = """RSP: 0018:ffffc90000d3fc58 EFLAGS: 00010246
RAX: 0000000000000000 RBX: ffff888004c2b000 RCX: 0000000000000000
RDX: 0000000000000001 RSI: ffffffff81e3a1c0 RDI: 00000000ffffffff
R13: 0000000000000000 R14: ffff888004c2b0c0 R15: 0000000000000001
FS:  00007f3a12a2e740(0000) GS:ffff88803ec00000(0000) knlGS:0000000000000000"""
CPU = """CPU: 1 PID: 4242 Comm: syz-executor.2 Not tainted 6.1.76 #1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014"""
USER = """ do_syscall_64+0x3b/0x90
 entry_SYSCALL_64_after_hwframe+0x63/0xcd
RIP: 0033:0x7f3a12b4c2d1
Code: 48 89 f8 48 89 f7 48 89 d6 48 89 ca 4d 89 c2 4d 89 c8 4c 8b 4c 24 08 0f 05 <48> 3d 01 f0 ff ff
RSP: 002b:00007ffd9a1c2e78 EFLAGS: 00000246 ORIG_RAX: 0000000000000010
 </TASK>"""
ARM_REGS = """pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
sp : ffff80000a33bb90
x29: ffff80000a33bb90 x28: ffff000004a1c000 x27: 0000000000000000
x2 : 0000000000000000 x1 : ffff000004a1c000 x0 : 0000000000000000"""
ARM_USER = """ invoke_syscall+0x48/0x114
 el0_svc_common.constprop.0+0x44/0xec
 do_el0_svc+0x2c/0xd0
 el0_svc+0x2c/0x84
 el0t_64_sync_handler+0xbc/0x140
 el0t_64_sync+0x18c/0x190"""


def warning(at: str, rip: str, frames: str, msg: str = "") -> str:
    """A 6.1 x86 WARN(): kernel/panic.c __warn() and the report_bug() path."""
    head = f"------------[ cut here ]------------\n{msg}\n" if msg else ""
    return f"""{head}WARNING: CPU: 1 PID: 4242 at {at} {rip}+0x1b4/0x2c0
Modules linked in: multimap(O)
{CPU}
RIP: 0010:{rip}+0x1b4/0x2c0
Code: 0f 0b e9 5c ff ff ff 48 c7 c7 e0 3a 6b 82 e8 0c 5d 3a 00 <0f> 0b eb c4 66 90 0f 1f 44 00 00
{REGS}
Call Trace:
 <TASK>
 ? __warn+0x81/0x130
 ? {rip}+0x1b4/0x2c0
 ? report_bug+0x171/0x1a0
 ? handle_bug+0x3c/0x70
 ? exc_invalid_op+0x17/0x70
 ? asm_exc_invalid_op+0x1a/0x20
{frames}
{USER}
---[ end trace 0000000000000000 ]---"""


def oops(head: str, rip: str, frames: str, extra: str = "") -> str:
    """A 6.1 x86 oops: arch/x86/kernel/dumpstack.c __die() and show_regs()."""
    return f"""{head}
{extra}Oops: 0000 [#1] PREEMPT SMP NOPTI
{CPU}
RIP: 0010:{rip}
Code: 48 8b 45 c8 48 85 c0 74 0a 48 8b 40 08 <48> 8b 00 ff d0 90 48 83 c4 10 5b 5d c3
{REGS}
Call Trace:
 <TASK>
{frames}
{USER}
Modules linked in: multimap(O)
CR2: 0000000000000008
---[ end trace 0000000000000000 ]---"""


def arm_oops(head: str, pc: str, frames: str, mid: str = "") -> str:
    """A 6.1 arm64 oops: arch/arm64/mm/fault.c die_kernel_fault() and arch/arm64 die()."""
    return f"""{head}
Mem abort info:
  ESR = 0x0000000096000005
  EC = 0x25: DABT (current EL), IL = 32 bits
{mid}Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP
Modules linked in: multimap(O)
CPU: 0 PID: 4242 Comm: multimap-ctl Tainted: G           O       6.1.76 #1
Hardware name: linux,dummy-virt (DT)
{ARM_REGS}
pc : {pc}
lr : {pc.split("+")[0]}+0x10/0x20
Call trace:
{frames}
{ARM_USER}
Code: f9400260 b4000080 f9400000 d63f0000 (f9400000)
---[ end trace 0000000000000000 ]---"""


def lockdep(head: str, body: str, frames: str) -> str:
    """kernel/locking/lockdep.c report layout: banner, details, stack backtrace."""
    bar = "=" * len(head)
    return f"""{bar}
{head}
6.1.76 #1 Not tainted
{"-" * len(head)}
{body}

stack backtrace:
{CPU}
Call Trace:
 <TASK>
 dump_stack_lvl+0x45/0x5f
{frames}
{USER}"""


FAMILIES: list[tuple[str, str, str]] = [
    # mm/usercopy.c usercopy_abort(): BUG() after "usercopy: Kernel memory exposure attempt".
    (
        "usercopy-bug",
        "BUG: bad usercopy in simple_read_from_buffer",
        "usercopy: Kernel memory exposure attempt detected from SLUB object 'kmalloc-64' (offset 0,"
        " size 100)!\n------------[ cut here ]------------\nkernel BUG at mm/usercopy.c:101!\n"
        "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n"
        + CPU
        + "\nRIP: 0010:usercopy_abort+0x7a/0x7c\n"
        + REGS
        + "\nCall Trace:\n <TASK>\n __check_heap_object+0xe1/0x100\n"
        " __check_object_size.part.0+0x12e/0x170\n __check_object_size.cold+0x19/0x1e\n"
        " simple_read_from_buffer+0x8e/0xf0\n multimap_stats_read+0x6c/0x90 [multimap]\n"
        " vfs_read+0xb3/0x2f0\n ksys_read+0x63/0xe0\n" + USER,
    ),
    # mm/usercopy.c usercopy_warn() (hardened usercopy in warn mode).
    (
        "usercopy-warn",
        "WARNING: bad usercopy in put_cmsg",
        warning(
            "mm/usercopy.c:83",
            "usercopy_warn",
            " __check_object_size+0x1f2/0x350\n put_cmsg+0x14a/0x2a0\n ____sys_recvmsg+0x1a0/0x3c0",
            "Bad or missing usercopy whitelist? Kernel memory exposure attempt detected from SLUB"
            " object 'skbuff_head_cache' (offset 64, size 20)!",
        ),
    ),
    # lib/kobject.c kobject_put() on an uninitialised kobject.
    (
        "kobject",
        "WARNING: kobject bug in hci_unregister_dev",
        warning(
            "lib/kobject.c:720",
            "kobject_put",
            " put_device+0x13/0x20\n hci_unregister_dev+0x2d7/0x460\n vhci_release+0x7e/0xf0\n"
            " __fput+0x109/0x400",
            "kobject: '(null)' (000000004d41f1b8): is not initialized, yet kobject_put() is being"
            " called.",
        ),
    ),
    # fs/proc/generic.c proc_register(): "proc_dir_entry '%s/%s' already registered".
    (
        "proc-register",
        "WARNING: proc registration bug in ip_vs_control_net_init",
        warning(
            "fs/proc/generic.c:376",
            "proc_register",
            " proc_create_net_data+0x9c/0xe0\n ip_vs_control_net_init+0x3ed/0x560\n"
            " ops_init+0x4c/0x130\n setup_net+0x1f0/0x3f0",
            "proc_dir_entry 'net/ip_vs' already registered",
        ),
    ),
    # mm/util.c kvmalloc_node(): WARN_ON_ONCE for sizes above INT_MAX.
    (
        "kmalloc-bug",
        "WARNING: kmalloc bug in xt_alloc_table_info",
        warning(
            "mm/util.c:596",
            "kvmalloc_node",
            " xt_alloc_table_info+0x3c/0x90\n do_ip6t_set_ctl+0x4a3/0xd30\n nf_setsockopt+0x6c/0xa0",
        ),
    ),
    # lib/refcount.c refcount_warn_saturate().
    (
        "refcount",
        "WARNING: refcount bug in multimap_buffer_put",
        warning(
            "lib/refcount.c:28",
            "refcount_warn_saturate",
            " multimap_buffer_put+0x44/0x51 [multimap]\n multimap_vm_close+0x12/0x20 [multimap]\n"
            " remove_vma+0x2b/0x50\n exit_mmap+0x1b8/0x2f0",
            "refcount_t: underflow; use-after-free.",
        ),
    ),
    # lib/debugobjects.c debug_print_object().
    (
        "odebug",
        "WARNING: ODEBUG bug in tty_port_destructor",
        warning(
            "lib/debugobjects.c:505",
            "debug_print_object",
            " debug_check_no_obj_freed+0x1e0/0x220\n kfree+0xb2/0x1c0\n"
            " tty_port_destructor+0x5a/0x80\n tty_port_put+0x2e/0x40",
            "ODEBUG: free active (active state 0) object type: timer_list hint:"
            " delayed_work_timer_fn+0x0/0x30",
        ),
    ),
    # Any other WARN_ON: "WARNING in <function at RIP>".
    (
        "warn-plain",
        "WARNING in multimap_mmap",
        warning(
            "drivers/misc/multimap/main.c:412",
            "multimap_mmap",
            " mmap_region+0x5a6/0x8e0\n do_mmap+0x3a4/0x590\n vm_mmap_pgoff+0xd8/0x170",
        ),
    ),
    # arm64 WARN: "pc :" names the function.
    (
        "warn-arm64",
        "WARNING in multimap_fault",
        "------------[ cut here ]------------\nWARNING: CPU: 0 PID: 4242 at"
        " drivers/misc/multimap/main.c:300 multimap_fault+0x60/0x110 [multimap]\nModules linked in:"
        " multimap(O)\nCPU: 0 PID: 4242 Comm: multimap-ctl Tainted: G           O       6.1.76 #1\n"
        "Hardware name: linux,dummy-virt (DT)\n" + ARM_REGS + "\npc : multimap_fault+0x60/0x110"
        " [multimap]\nlr : __do_fault+0x40/0x1a0\nCall trace:\n multimap_fault+0x60/0x110 [multimap]\n"
        " __do_fault+0x40/0x1a0\n do_fault+0x1c4/0x4a0\n"
        + ARM_USER
        + "\n---[ end trace 0000000000000000 ]---",
    ),
    # kernel/locking/lockdep.c print_circular_bug().
    (
        "lockdep-circular",
        "possible deadlock in multimap_ioctl",
        lockdep(
            "WARNING: possible circular locking dependency detected",
            "multimap-ctl/4242 is trying to acquire lock:\nffff888005a3c0a8 (&mm->mmap_lock){++++}-"
            "{3:3}, at: __might_fault+0x7a/0xe0\n\nbut task is already holding lock:\n"
            "ffff888004c2b0b8 (&buf->lock){+.+.}-{3:3}, at: multimap_ioctl+0x3e/0x2c0 [multimap]\n\n"
            "which lock already depends on the new lock.\n\n\nthe existing dependency chain (in"
            " reverse order) is:\n\n-> #1 (&buf->lock){+.+.}-{3:3}:\n       __mutex_lock+0x9a/0x950\n"
            "       multimap_fault+0x33/0x110 [multimap]",
            " check_noncircular+0xfe/0x110\n __lock_acquire+0x1254/0x1e20\n lock_acquire+0xc8/0x2f0\n"
            " __might_fault+0xa0/0xe0\n _copy_to_user+0x22/0x80\n multimap_ioctl+0x1b8/0x2c0 [multimap]",
        ),
    ),
    # kernel/locking/lockdep.c print_deadlock_bug().
    (
        "lockdep-recursive",
        "possible deadlock in multimap_release",
        lockdep(
            "WARNING: possible recursive locking detected",
            "multimap-ctl/4242 is trying to acquire lock:\nffff888004c2b0b8 (&buf->lock){+.+.}-{3:3},"
            " at: multimap_release+0x2a/0x90 [multimap]\n\nbut task is already holding lock:\n"
            "ffff888004c2b0b8 (&buf->lock){+.+.}-{3:3}, at: multimap_buffer_put+0x19/0x51 [multimap]",
            " __lock_acquire+0x1254/0x1e20\n lock_acquire+0xc8/0x2f0\n __mutex_lock+0x9a/0x950\n"
            " multimap_release+0x2a/0x90 [multimap]",
        ),
    ),
    # kernel/locking/lockdep.c print_freed_lock_bug() (debug_check_no_locks_freed).
    (
        "held-lock-freed",
        "WARNING: held lock freed in sctp_wait_for_connect",
        lockdep(
            "WARNING: held lock freed!",
            "syz-executor.2/4242 is freeing memory ffff88801e2d0000-ffff88801e2d07ff, with a lock"
            " still held there!\nffff88801e2d0120 (sk_lock-AF_INET6){+.+.}-{0:0}, at: lock_sock"
            " include/net/sock.h:1725 [inline]\nffff88801e2d0120 (sk_lock-AF_INET6){+.+.}-{0:0}, at:"
            " sctp_wait_for_connect+0x1a3/0x5e0 net/sctp/socket.c:9339\n2 locks held by"
            " syz-executor.2/4242:",
            " debug_check_no_locks_freed+0x1a0/0x1c0\n kfree+0xb2/0x1c0\n __sk_destruct+0x4e/0x2e0\n"
            " sctp_wait_for_connect+0x2f1/0x5e0",
        ),
    ),
    # kernel/locking/lockdep.c lockdep_rcu_suspicious().
    (
        "rcu-suspicious",
        "WARNING: suspicious RCU usage in multimap_stats_show",
        lockdep(
            "WARNING: suspicious RCU usage",
            "include/linux/rcupdate.h:737 rcu_read_lock() used illegally while idle!\n\nother info"
            " that might help us debug this:\n\nrcu_scheduler_active = 2, debug_locks = 1",
            " lockdep_rcu_suspicious+0x13c/0x160\n rcu_read_lock_held_common+0x2a/0x40\n"
            " multimap_stats_show+0x8e/0x120 [multimap]\n seq_read_iter+0x12a/0x4a0",
        ),
    ),
    # The same without the "file:line" line (cut short): syzkaller titles the line itself.
    (
        "rcu-suspicious-short",
        "WARNING: suspicious RCU usage",
        "=============================\nWARNING: suspicious RCU usage\n6.1.76 #1 Not tainted\n"
        "-----------------------------",
    ),
    # kernel/locking/lockdep.c print_lock_held_when_returning (lockdep_sys_exit).
    (
        "lock-held-user",
        "WARNING: lock held when returning to user space in multimap_ioctl",
        "================================================\nWARNING: lock held when returning to user"
        " space!\n6.1.76 #1 Not tainted\n------------------------------------------------\n"
        "multimap-ctl/4242 is leaving the kernel with locks still held!\n1 lock held by"
        " multimap-ctl/4242:\n #0: ffff888004c2b0b8 (&buf->lock){+.+.}-{3:3}, at:"
        " multimap_ioctl+0x3e/0x2c0 [multimap]",
    ),
    # net/core/dev.c netdev_wait_allrefs_any().
    (
        "netdev-wait",
        "unregister_netdevice: waiting for DEV to become free",
        "unregister_netdevice: waiting for vxcan1 to become free. Usage count = 2\n"
        "leaked reference.\n__netdev_tracker_alloc include/linux/netdevice.h:3995 [inline]",
    ),
    # arch/x86/boot/compressed/misc.c: the decompressor again while the kernel was running.
    (
        "reboot",
        "unexpected kernel reboot",
        "multimap: ready: max_pages=65536, /dev/multimap mode 600\nDecompressing Linux... Parsing ELF..."
        " done.\nBooting the kernel.",
    ),
    # arm64 die(): synchronous external abort, no page-fault header before it.
    (
        "arm64-internal-error",
        "Internal error in multimap_read_reg",
        "Internal error: synchronous external abort: 0000000096000010 [#1] PREEMPT SMP\n"
        "Modules linked in: multimap(O)\nCPU: 0 PID: 4242 Comm: multimap-ctl Tainted: G           O"
        "       6.1.76 #1\nHardware name: linux,dummy-virt (DT)\n"
        + ARM_REGS
        + "\npc : __raw_readl+0x8/0x14\nlr : multimap_read_reg+0x24/0x40 [multimap]\nCall trace:\n"
        " __raw_readl+0x8/0x14\n multimap_read_reg+0x24/0x40 [multimap]\n multimap_ioctl+0x98/0x2c0"
        " [multimap]\n" + ARM_USER + "\n---[ end trace 0000000000000000 ]---",
    ),
    # arm64 page fault: the fault header comes first, "Internal error:" is part of it.
    (
        "arm64-null",
        "BUG: unable to handle kernel NULL pointer dereference in multimap_release",
        arm_oops(
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
            "multimap_release+0x2c/0x90 [multimap]",
            " multimap_release+0x2c/0x90 [multimap]\n __fput+0x78/0x260\n ____fput+0x10/0x20\n"
            " task_work_run+0x80/0xe0",
        ),
    ),
    (
        "arm64-paging",
        "BUG: unable to handle kernel paging request in multimap_fault",
        arm_oops(
            "Unable to handle kernel paging request at virtual address ffff80000b0c0000",
            "memcpy+0x100/0x254",
            " memcpy+0x100/0x254\n multimap_fault+0x88/0x110 [multimap]\n __do_fault+0x40/0x1a0",
        ),
    ),
    # arch/arm/mm/fault.c do_DataAbort(): "Unhandled fault:", then arm's die().
    (
        "arm-unhandled",
        "Unhandled fault in dev_read",
        "Unhandled fault: page domain fault (0x01b) at 0x00000e30\npgd = 84cd4b1e\nInternal error: :"
        " 1b [#1] SMP ARM\nModules linked in:\nCPU: 1 PID: 4242 Comm: multimap-ctl Not tainted"
        " 6.1.76 #1\nHardware name: Generic DT based system\nPC is at memset+0x4c/0x78\nLR is at"
        " dev_read+0x3c/0x80\npc : [<8031b4a8>]    lr : [<80a1f2d4>]    psr: 60000193\nBacktrace:\n"
        "[<8031b4a8>] (memset) from [<80a1f2d4>] (dev_read+0x3c/0x80)\n[<80a1f2d4>] (dev_read) from"
        " [<80456c08>] (vfs_read+0xa4/0x2f0)\n[<80456c08>] (vfs_read) from [<80457190>]"
        " (ksys_read+0x68/0xe4)",
    ),
    # arch/arm/mm/alignment.c do_alignment(), then die() with "PC is at".
    (
        "arm-alignment",
        "Alignment trap in ipv6_rcv_parse",
        "Alignment trap: not handling instruction e1932f9f at [<80a6c2e4>]\nInternal error: : 1"
        " [#1] SMP ARM\nModules linked in:\nCPU: 0 PID: 4242 Comm: syz-executor.2 Not tainted"
        " 6.1.76 #1\nHardware name: Generic DT based system\nPC is at"
        " ipv6_rcv_parse+0x54/0x1a0\nLR is at ipv6_rcv+0x30/0xa0\nBacktrace:\n[<80a6c290>]"
        " (ipv6_rcv_parse) from [<80a6d1b0>] (ipv6_rcv+0x30/0xa0)",
    ),
    # kernel/panic.c check_panic_on_warn(): the WARNING names the bug, not the panic after it.
    (
        "panic-on-warn",
        "WARNING in multimap_mmap",
        warning(
            "drivers/misc/multimap/main.c:412",
            "multimap_mmap",
            " mmap_region+0x5a6/0x8e0\n do_mmap+0x3a4/0x590\n vm_mmap_pgoff+0xd8/0x170",
        ).replace(
            "---[ end trace 0000000000000000 ]---",
            "Kernel panic - not syncing: kernel: panic_on_warn set ...\n"
            + CPU
            + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n panic+0x118/0x2ed\n"
            " check_panic_on_warn.cold+0x19/0x35\n __warn+0xa5/0x130\n </TASK>\nKernel Offset:"
            " disabled\n---[ end Kernel panic - not syncing: kernel: panic_on_warn set ... ]---",
        ),
    ),
    # Only the panic survived on the console: syzkaller's corrupted title.
    (
        "panic-on-warn-alone",
        "kernel panic: panic_on_warn set",
        "Kernel panic - not syncing: panic_on_warn set ...\n" + CPU + "\nCall Trace:\n"
        " dump_stack+0x97/0xe0\n panic+0x1e0/0x3f0\n __warn.cold+0x1a/0x2b\nKernel Offset: disabled",
    ),
    # kernel/locking/lockdep.c save_trace(): the graph is full.
    (
        "lockdep-max-stack",
        "BUG: MAX_STACK_TRACE_ENTRIES too low!",
        "BUG: MAX_STACK_TRACE_ENTRIES too low!\nturning off the locking correctness validator.\n"
        + CPU
        + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n save_trace+0x2f5/0x320\n"
        " mark_lock+0x1a4/0x310\n __lock_acquire+0x8b2/0x1e20\n" + USER,
    ),
    # kernel/exit.c do_exit() of pid 1.
    (
        "kill-init",
        "kernel panic: Attempted to kill init!",
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
        + CPU
        + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n panic+0x118/0x2ed\n do_exit.cold+0x15/0x15\n"
        " do_group_exit+0x2d/0x90\n </TASK>\nKernel Offset: disabled\n---[ end Kernel panic - not"
        " syncing: Attempted to kill init! exitcode=0x0000000b ]---",
    ),
    # drivers/tty/sysrq.c sysrq_handle_crash().
    (
        "sysrq",
        "kernel panic: sysrq triggered crash",
        "sysrq: Trigger a crash\nKernel panic - not syncing: sysrq triggered crash\n"
        + CPU
        + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n panic+0x118/0x2ed\n"
        " sysrq_handle_crash+0x16/0x20\n __handle_sysrq.cold+0x43/0x11b\n write_sysrq_trigger+0x24/0x40\n"
        " </TASK>\nKernel Offset: disabled\n---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
    ),
    # Two reports: the first one names the crash.
    (
        "first-report-wins",
        "KASAN: use-after-free Read in multimap_readback",
        "==================================================================\nBUG: KASAN:"
        " use-after-free in multimap_readback+0x5c/0x90 [multimap]\nRead of size 8 at addr"
        " ffff888004e1a000 by task multimap-ctl/4242\n\n" + CPU + "\nCall Trace:\n <TASK>\n"
        " dump_stack_lvl+0x45/0x5f\n print_report+0x171/0x4a8\n kasan_report+0xb1/0x140\n"
        " multimap_readback+0x5c/0x90 [multimap]\n multimap_ioctl+0x1b8/0x2c0 [multimap]\n"
        + USER
        + "\n==================================================================\n"
        "general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1]"
        " PREEMPT SMP KASAN\n" + CPU + "\nRIP: 0010:list_del+0x12/0x40\nCall Trace:\n"
        " multimap_release+0x2c/0x90 [multimap]",
    ),
    # Frames with compiler suffixes and a skipped RIP: the name without .isra/.cold.
    (
        "gpf-suffixes",
        "general protection fault in skb_copy_bits",
        "general protection fault, probably for non-canonical address 0xdffffc0000000003: 0000 [#1]"
        " PREEMPT SMP KASAN\nKASAN: null-ptr-deref in range [0x0000000000000018-0x000000000000001f]\n"
        + CPU
        + "\nRIP: 0010:memcpy_erms+0x6/0x10\n"
        + REGS
        + "\nCall Trace:\n <TASK>\n"
        " skb_copy_bits.isra.0+0x2c4/0x6a0\n __pskb_pull_tail.cold+0x3a/0x41\n"
        " tcp_v4_rcv+0x1f2/0x1e10\n" + USER,
    ),
    (
        "null-deref",
        "BUG: unable to handle kernel NULL pointer dereference in multimap_release",
        oops(
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "multimap_release+0x2c/0x90 [multimap]",
            " __fput+0xf4/0x2a0\n task_work_run+0x5c/0x90\n exit_to_user_mode_prepare+0x1c2/0x1d0",
            "#PF: supervisor read access in kernel mode\n#PF: error_code(0x0000) - not-present page\n"
            "PGD 0 P4D 0\n",
        ),
    ),
    (
        "page-fault",
        "BUG: unable to handle kernel paging request in multimap_fault",
        oops(
            "BUG: unable to handle page fault for address: ffffc90000400000",
            "memset_erms+0x9/0x10",
            " multimap_fault.cold+0x1b/0x2f [multimap]\n __do_fault+0x3a/0x130\n"
            " handle_mm_fault+0xa9/0x2a0",
            "#PF: supervisor write access in kernel mode\n",
        ),
    ),
    (
        "double-fault",
        "PANIC: double fault in multimap_recurse",
        "PANIC: double fault, error_code: 0x0\n" + CPU + "\nRIP: 0010:multimap_recurse+0x12/0x40"
        " [multimap]\n" + REGS + "\nKernel panic - not syncing: Machine halted.",
    ),
    (
        "kernel-bug",
        "kernel BUG in remap_pfn_range_notrack",
        "------------[ cut here ]------------\nkernel BUG at mm/memory.c:2477!\ninvalid opcode: 0000"
        " [#1] PREEMPT SMP NOPTI\n"
        + CPU
        + "\nRIP: 0010:remap_pfn_range_notrack+0x4a1/0x4e0\n"
        + REGS
        + "\nCall Trace:\n <TASK>\n remap_pfn_range+0x5b/0xa0\n multimap_mmap+0x1c0/0x2e0 [multimap]\n"
        + USER,
    ),
    (
        "list-corruption",
        "BUG: corrupted list in multimap_release",
        "list_del corruption. prev->next should be ffff888004c2b0c0, but was dead000000000100."
        " (prev=ffff888004c2b1c0)\n------------[ cut here ]------------\nkernel BUG at"
        " lib/list_debug.c:59!\ninvalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n"
        + CPU
        + "\nRIP: 0010:__list_del_entry_valid.cold+0x37/0x4a\n"
        + REGS
        + "\nCall Trace:\n <TASK>\n"
        " __list_del_entry_valid+0x8f/0xa0\n multimap_release+0x4e/0x90 [multimap]\n"
        " __fput+0xf4/0x2a0\n" + USER,
    ),
    # kernel/hung_task.c check_hung_task(): rtnl_lock victims are grouped.
    (
        "hung-rtnl",
        "INFO: task hung in rtnl_lock",
        "INFO: task kworker/0:2:1289 blocked for more than 143 seconds.\n      Not tainted 6.1.76 #1\n"
        '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.\ntask:kworker/0:2'
        "       state:D stack:26544 pid:1289  ppid:2      flags:0x00004000\nCall Trace:\n <TASK>\n"
        " __schedule+0x34b/0x9e0\n schedule+0x5d/0xe0\n schedule_preempt_disabled+0x14/0x30\n"
        " __mutex_lock.constprop.0+0x3bd/0x6b0\n rtnl_lock+0x15/0x20\n linkwatch_event+0xb/0x30\n"
        " process_one_work+0x1c4/0x380\n </TASK>",
    ),
    (
        "hung-plain",
        "INFO: task hung in multimap_release",  # frames with "wait" are skipped
        "INFO: task multimap-ctl:4242 blocked for more than 122 seconds.\n      Tainted: G           O"
        "       6.1.76 #1\ntask:multimap-ctl    state:D stack:0     pid:4242  ppid:1      flags:0x00000000\n"
        "Call Trace:\n <TASK>\n __schedule+0x34b/0x9e0\n schedule+0x5d/0xe0\n"
        " schedule_timeout+0x88/0x140\n wait_for_completion+0x86/0x160\n"
        " multimap_wait_idle+0x41/0x70 [multimap]\n multimap_release+0x5c/0x90 [multimap]\n </TASK>",
    ),
    # mm/kmemleak.c as syzkaller prints it: "BUG: memory leak" and the object's backtrace.
    (
        "leak",
        "memory leak in multimap_ioctl",  # frames with "alloc" are skipped
        'BUG: memory leak\nunreferenced object 0xffff888004e1a000 (size 64):\n  comm "multimap-ctl",'
        " pid 4242, jiffies 4294894567 (age 12.340s)\n  hex dump (first 32 bytes):\n    00 00 00 00 00"
        " 00 00 00 00 00 00 00 00 00 00 00  ................\n  backtrace:\n"
        "    [<ffffffff8134e1a2>] kmalloc_trace+0x26/0x60\n"
        "    [<ffffffffa00021c4>] multimap_alloc_buffer+0x34/0x120 [multimap]\n"
        "    [<ffffffffa0002a10>] multimap_ioctl+0x1a0/0x2c0 [multimap]",
    ),
    # lib/ubsan.c: the handler frames are skipped.
    (
        "ubsan-shift",
        "UBSAN: shift-out-of-bounds in multimap_order",
        "================================================================================\nUBSAN:"
        " shift-out-of-bounds in drivers/misc/multimap/main.c:88:21\nshift exponent 64 is too large"
        " for 64-bit type 'long unsigned int'\n" + CPU + "\nCall Trace:\n <TASK>\n"
        " dump_stack_lvl+0x45/0x5f\n __ubsan_handle_shift_out_of_bounds.cold+0x61/0xef\n"
        " multimap_order+0x3a/0x50 [multimap]\n multimap_ioctl+0x88/0x2c0 [multimap]\n"
        + USER
        + "\n================================================================================",
    ),
    (
        "ubsan-index",
        "UBSAN: array-index-out-of-bounds in multimap_stats_show",
        "UBSAN: array-index-out-of-bounds in drivers/misc/multimap/stats.c:40:9\nindex 8 is out of"
        " range for type 'u64 [8]'\n" + CPU + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n"
        " ubsan_epilogue+0x5/0x40\n __ubsan_handle_out_of_bounds+0x8a/0xb0\n"
        " multimap_stats_show+0xf8/0x120 [multimap]\n" + USER,
    ),
    # kernel/rcu/tree_stall.h: the stall is put on the frame before the dispatcher.
    (
        "rcu-stall",
        "INFO: rcu detected stall in multimap_ioctl",
        "rcu: INFO: rcu_preempt self-detected stall on CPU\nrcu: \t1-....: (10500 ticks this GP)"
        " idle=5dc/1/0x4000000000000000 softirq=4412/4412 fqs=5244\n\t(t=10501 jiffies g=9553 q=214"
        " ncpus=2)\n"
        + CPU
        + "\nRIP: 0010:multimap_spin+0x14/0x30 [multimap]\n"
        + REGS
        + "\nCall Trace:\n <IRQ>\n rcu_sched_clock_irq+0x2c5/0x9a0\n update_process_times+0x63/0xa0\n"
        " </IRQ>\n <TASK>\n asm_sysvec_apic_timer_interrupt+0x1a/0x20\nRIP:"
        " 0010:multimap_spin+0x14/0x30 [multimap]\n multimap_ioctl+0x1b8/0x2c0 [multimap]\n"
        " __x64_sys_ioctl+0x8d/0xd0\n do_syscall_64+0x3b/0x90\n"
        " entry_SYSCALL_64_after_hwframe+0x63/0xcd\n </TASK>",
    ),
    (
        "soft-lockup",
        "BUG: soft lockup in multimap_ioctl",  # the frame before sys_ioctl
        "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [multimap-ctl:4242]\nModules linked in:"
        " multimap(O)\n" + CPU + "\nRIP: 0010:_raw_spin_lock+0x1a/0x30\n" + REGS + "\nCall Trace:\n"
        " <TASK>\n multimap_lock_all+0x2e/0x60 [multimap]\n multimap_ioctl+0x1b8/0x2c0 [multimap]\n"
        " __x64_sys_ioctl+0x8d/0xd0\n do_syscall_64+0x3b/0x90\n"
        " entry_SYSCALL_64_after_hwframe+0x63/0xcd\n </TASK>",
    ),
    (
        "sleeping",
        "BUG: sleeping function called from invalid context in multimap_fault",
        "BUG: sleeping function called from invalid context at include/linux/sched/mm.h:274\n"
        "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 4242, name: multimap-ctl\n"
        "preempt_count: 1, expected: 0\n"
        + CPU
        + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n"
        " __might_resched.cold+0xcc/0xde\n __kmem_cache_alloc_node+0x2c4/0x2e0\n kmalloc_trace+0x26/0x60\n"
        " multimap_fault+0x7c/0x110 [multimap]\n __do_fault+0x3a/0x130\n" + USER,
    ),
    (
        "stack-protector",
        "kernel panic: stack is corrupted in multimap_ioctl",
        "Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in:"
        " multimap_ioctl+0x2b8/0x2c0 [multimap]\n" + CPU + "\nCall Trace:\n <TASK>\n"
        " dump_stack_lvl+0x45/0x5f\n panic+0x118/0x2ed\n __stack_chk_fail+0x14/0x20\n </TASK>\n"
        "Kernel Offset: disabled",
    ),
    (
        "bad-page",
        "BUG: Bad page state in multimap_free_pages",
        "BUG: Bad page state in process multimap-ctl  pfn:00c86\npage:00000000bf38fe50 refcount:0"
        " mapcount:0 mapping:0000000000000000 index:0x0 pfn:0xc86\nflags:"
        " 0x1000(reserved|section=0|zone=0)\npage dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s)"
        " set\nModules linked in: multimap(O)\n" + CPU + "\nCall Trace:\n <TASK>\n"
        " dump_stack_lvl+0x3a/0x4c\n bad_page+0xef/0x10b\n free_page_is_bad+0x6e/0x75\n"
        " free_unref_page_prepare+0x19d/0x266\n free_unref_page+0x4f/0xfc\n __free_pages+0x53/0x7d\n"
        " multimap_free_pages+0x42/0x7c [multimap]\n multimap_buffer_put+0x19/0x51 [multimap]\n"
        + USER,
    ),
    # mm/page_poison.c check_poison_mem() (page_poison=1): a freed page written to, found when it
    # is allocated again; the stack is the next allocator's, so no function is named.
    (
        "page-poison",
        "pagealloc: memory corruption",
        "pagealloc: memory corruption\nffff888004e1a000: 41 41 41 41 41 41 41 41 41 41 41 41 41 41"
        " 41 41  AAAAAAAAAAAAAAAA\n" + CPU + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n"
        " __kernel_unpoison_pages+0x1a3/0x1c0\n post_alloc_hook+0xc5/0xe0\n"
        " get_page_from_freelist+0x62a/0x1230\n __alloc_pages+0x1a1/0x330\n pipe_write+0x2f6/0x6e0\n"
        " vfs_write+0x2a2/0x410\n ksys_write+0x5f/0xe0\n"
        + USER
        + "\npage:00000000bf38fe50 refcount:1"
        " mapcount:0 mapping:0000000000000000 index:0x0 pfn:0xc86\npage dumped because: pagealloc:"
        " corrupted page details",
    ),
    # mm/slub.c slab_bug() with slub_debug=FZPU: any cache's check, its taint in brackets
    # (print_tainted()), then check_bytes_and_report()'s details and print_trailer()'s object.
    (
        "slub-poison-any-cache",
        "BUG vm_area_struct: Poison overwritten",
        "=============================================================================\nBUG"
        " vm_area_struct (Tainted: G    B      O      ): Poison overwritten\n"
        "-----------------------------------------------------------------------------\n\n"
        "0xffff888004e1a058-0xffff888004e1a05f @offset=88. First byte 0x0 instead of 0x6b\n"
        "Allocated in vm_area_alloc+0x1e/0x60 age=12 cpu=1 pid=4242\n kmem_cache_alloc+0x1ba/0x2f0\n"
        " vm_area_alloc+0x1e/0x60\n mmap_region+0x2c1/0x8c0\nFreed in vm_area_free+0x1a/0x30 age=4"
        " cpu=1 pid=4242\n kmem_cache_free+0x2b6/0x320\n remove_vma+0x4f/0x60\nSlab"
        " 0xffffea000013868 objects=22 used=22 fp=0x0000000000000000 flags=0x100000000010200(slab|head"
        "|node=0|zone=1)\nObject 0xffff888004e1a000 @offset=0 fp=0x0000000000000000\n\n"
        "Object   ffff888004e1a000: 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  kkkkkkkkkkkkkkkk\n"
        + CPU
        + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n check_bytes_and_report+0xf1/0x140\n"
        " check_object+0x1ec/0x2a0\n alloc_debug_processing+0xd0/0x1b0\n ___slab_alloc+0x5a1/0xa20\n"
        " kmem_cache_alloc+0x1ba/0x2f0\n vm_area_dup+0x22/0xb0\n"
        + USER
        + "\nFIX vm_area_struct: Restoring Poison 0xffff888004e1a058-0xffff888004e1a05f=0x6b\n"
        "FIX vm_area_struct: Marking all objects used",
    ),
    # kernel/hung_task.c check_hung_task() of 6.15+: " in I/O wait" when the task waits for I/O.
    (
        "hung-iowait",
        "INFO: task hung in multimap_fault",  # __folio_lock ("_lock") and "wait" frames skipped
        "INFO: task multimap-ctl:4242 blocked in I/O wait for more than 122 seconds.\n      Tainted:"
        " G           O       6.16.0 #1\ntask:multimap-ctl    state:D stack:0     pid:4242  tgid:4242"
        "  ppid:1      task_flags:0x400040 flags:0x00004002\nCall Trace:\n <TASK>\n"
        " __schedule+0x4c2/0xfd0\n schedule+0x27/0xd0\n io_schedule+0x46/0x70\n"
        " folio_wait_bit_common+0x13f/0x340\n __folio_lock+0x17/0x20\n"
        " multimap_fault+0x61/0x120 [multimap]\n __do_fault+0x3b/0x160\n </TASK>",
    ),
    (
        "kasan-oob-write",
        "KASAN: slab-out-of-bounds Write in multimap_fill",
        "==================================================================\nBUG: KASAN:"
        " slab-out-of-bounds in multimap_fill+0x6a/0x90 [multimap]\nWrite of size 4 at addr"
        " ffff888004e1a040 by task multimap-ctl/4242\n\n" + CPU + "\nCall Trace:\n <TASK>\n"
        " dump_stack_lvl+0x45/0x5f\n print_report+0x171/0x4a8\n kasan_report+0xb1/0x140\n"
        " multimap_fill+0x6a/0x90 [multimap]\n" + USER + "\n\nAllocated by task 4242:\n"
        " kasan_save_stack+0x22/0x50\n __kasan_kmalloc+0xa6/0xb0\n"
        " multimap_alloc_buffer+0x34/0x120 [multimap]\n"
        "==================================================================",
    ),
    (
        "kasan-memcpy",
        "KASAN: use-after-free Write in multimap_copy_in",
        "BUG: KASAN: use-after-free in memcpy+0x39/0x60\nWrite of size 64 at addr ffff888004e1a000 by"
        " task multimap-ctl/4242\n\n" + CPU + "\nCall Trace:\n <TASK>\n dump_stack_lvl+0x45/0x5f\n"
        " print_report+0x171/0x4a8\n kasan_report+0xb1/0x140\n kasan_check_range+0x115/0x1a0\n"
        " memcpy+0x39/0x60\n multimap_copy_in+0x44/0x80 [multimap]\n" + USER,
    ),
]

# No kernel crash: user-space faults and noise that name crash words.
CLEAN: list[tuple[str, str]] = [
    (
        "clean-user-traps",
        "traps: multimap-ctl[4242] general protection fault ip:55d2c4a1b2c3 sp:7ffd9a1c2e80 error:0"
        " in multimap-ctl[55d2c4a00000+2b000]\nmultimap-ctl[4243]: segfault at 8 ip 000055d2c4a1b2c3 sp"
        " 00007ffd9a1c2e80 error 4 in multimap-ctl[55d2c4a00000+2b000] likely on CPU 1 (core 1,"
        " socket 0)\nCode: 48 8b 45 c8 48 85 c0 74 0a <48> 8b 00 ff d0\ntraps: a.out[4244] trap"
        " invalid opcode ip:401136 sp:7ffc8d1e2a40 error:0 in a.out[401000+1000]\ntraps: a.out[4245]"
        " trap divide error ip:40113f sp:7ffc8d1e2a40 error:0 in a.out[401000+1000]",
    ),
    (
        "clean-boot",
        'PCI: Using host bridge windows from ACPI; if necessary, use "pci=nocrs" and report a bug\n'
        "AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.\n"
        "Decompressing Linux... Parsing ELF... done.\nmultimap: loading out-of-tree module taints"
        " kernel.\nmultimap: bug_mode=none\nsshd: WARNING: /etc/ssh/moduli does not exist, using"
        " fixed modulus\nINFO: lockdep is turned off.\nODEBUG: object 000000001c6a4b2e is on stack"
        " 00000000a3c8e8f1, but NOT annotated.",
    ),
]
