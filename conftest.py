"""Scenario collection and the --arch/--kernel/--kdir/--lab-kernel/--keep-vm options come from
the remaplab pytest plugin (lab/pytest_plugin.py, registered by the package's pytest11 entry
point), as in any project that installs remaplab.  Nothing repository-specific is needed here."""
