#!/usr/bin/python3
"""Checks a containerd config.toml for what the kubelet needs of Docker's containerd.

usage: containerd_config_check.py CONFIG.toml [--sandbox-image IMAGE] [--socket PATH]

Parses the file with tomllib (Python >= 3.11) and checks: config version 2 (containerd 1.x), the
CRI plugin not disabled (Docker's containerd.io package ships disabled_plugins = ["cri"]), runc
as io.containerd.runc.v2 with SystemdCgroup = true (the kubelet's cgroup driver under kubeadm),
and, when given, the sandbox image and the gRPC socket. Prints OK or each problem; exit 0 or 1.
"""

import argparse
import sys
import tomllib

CRI = "io.containerd.grpc.v1.cri"


def problems(config, sandbox_image=None, socket=None):
    """The list of what is wrong with a parsed config (empty when it suits the kubelet)."""
    found = []
    if config.get("version") != 2:
        found.append(f"version is {config.get('version')!r}, want 2 (containerd 1.x format)")
    disabled = config.get("disabled_plugins", [])
    if "cri" in disabled or CRI in disabled:
        found.append(f"the CRI plugin is disabled: disabled_plugins = {disabled!r}")
    cri = config.get("plugins", {}).get(CRI)
    if cri is None:
        return found + [f'no [plugins."{CRI}"] section']
    runc = cri.get("containerd", {}).get("runtimes", {}).get("runc", {})
    runtime_type = runc.get("runtime_type")
    if runtime_type != "io.containerd.runc.v2":
        found.append(f"runc runtime_type is {runtime_type!r}, want 'io.containerd.runc.v2'")
    if runc.get("options", {}).get("SystemdCgroup") is not True:
        found.append("runc options: SystemdCgroup is not true (the kubelet's driver is systemd)")
    if sandbox_image is not None and cri.get("sandbox_image") != sandbox_image:
        found.append(f"sandbox_image is {cri.get('sandbox_image')!r}, want {sandbox_image!r}")
    address = config.get("grpc", {}).get("address")
    if socket is not None and address != socket:
        found.append(f"grpc address is {address!r}, want {socket!r}")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--sandbox-image")
    parser.add_argument("--socket")
    args = parser.parse_args()
    try:
        with open(args.config, "rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"{args.config}: {e}")
        return 1
    found = problems(config, args.sandbox_image, args.socket)
    for p in found:
        print(f"{args.config}: {p}")
    if not found:
        print(f"{args.config}: OK (version 2, CRI on, runc v2 with SystemdCgroup = true)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
