#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what remaplab needs on a Debian/Ubuntu host, then create .venv.
# As root: apt-get installs what is missing.  Otherwise: print the exact sudo command and stop.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t packages < <(grep -Ev '^[[:space:]]*(#|$)' lab/data/host_packages.txt)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_arm64=0
dpkg --print-foreign-architectures | grep -qx arm64 || need_arm64=1
[ "$(dpkg --print-architecture)" = arm64 ] && need_arm64=0

if ((${#missing[@]} || need_arm64)); then
	cmd=""
	((need_arm64)) && cmd="dpkg --add-architecture arm64 && "
	cmd+="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "remaplab: missing host packages: ${missing[*]:-none}${need_arm64:+ (and the arm64 architecture)}" >&2
		echo "remaplab: run this, then retry:" >&2
		echo "  sudo sh -c '$cmd'" >&2
		exit 1
	fi
	echo "remaplab: installing host packages: ${missing[*]:-none}" >&2
	sh -c "$cmd"
elif [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name "*_Packages*" -print -quit 2>/dev/null)" ]; then
	# apt-get download needs package lists even when nothing is missing.
	if [ "$(id -u)" -eq 0 ]; then apt-get update; else echo "remaplab: run: sudo apt-get update" >&2; exit 1; fi
fi

py=python3
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt .venv/.installed ]; then
	"$py" -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch .venv/.installed
fi
