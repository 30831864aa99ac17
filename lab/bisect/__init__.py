"""``remaplab bisect``: find the commit that introduced a failure, with ``git bisect`` driven in
a separate worktree (the user's checkout is never touched).  Each step builds what the test
depends on (the kernel from the tree, or a scenario's module from its source), runs the test
N times and compares what it saw with the bad commit's failure signature."""
