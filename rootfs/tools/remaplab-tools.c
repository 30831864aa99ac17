// SPDX-License-Identifier: GPL-2.0
/*
 * remaplab-tools: the guest tools in one static binary, run through a link named after a tool
 * (like busybox) or as "remaplab-tools TOOL ARGS...".  One static binary carries the C library
 * once instead of once per tool: the initramfs the kernel unpacks at every boot is 2 MB
 * smaller, and a module request during the boot waits for that unpacking.
 *
 * lab/build.py compiles each tool's source with its main() renamed and writes tools.def, one
 * TOOL(function, "name") line per tool, from its list of tools, into the build's folder (hence
 * <tools.def>: only the -I folders are searched).  Another name exits 127, as a shell's
 * "command not found" does.
 */
#include <stdio.h>
#include <string.h>

#define TOOL(fn, name) int fn(int argc, char **argv);
#include <tools.def>
#undef TOOL

static const struct {
	int (*fn)(int argc, char **argv);
	const char *name;
} tools[] = {
#define TOOL(fn, name) { fn, name },
#include <tools.def>
#undef TOOL
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

static int find(const char *name)
{
	size_t i;

	for (i = 0; i < NTOOLS; i++)
		if (!strcmp(name, tools[i].name))
			return (int)i;
	return -1;
}

int main(int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : "";
	const char *slash = strrchr(name, '/');
	size_t i;
	int t;

	t = find(slash ? slash + 1 : name);
	if (t >= 0)
		return tools[t].fn(argc, argv);
	if (argc > 1) {
		t = find(argv[1]);
		if (t >= 0)
			return tools[t].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "remaplab-tools: run me as one of");
	for (i = 0; i < NTOOLS; i++)
		fprintf(stderr, " %s", tools[i].name);
	fprintf(stderr, " (a link of that name, or remaplab-tools TOOL ARGS...)\n");
	return 127;
}
