#!/usr/bin/env bash
# Opens the host firewall for a kubeadm node with Flannel. Run on each node, as root.
#
# usage: open-firewall.sh --role control-plane|worker [--node-port 30500] [--dry-run]
#
# Ports (inbound, from the cluster's own subnet except the NodePort):
#   control plane: 6443/tcp API server, 2379-2380/tcp etcd, 10250/tcp kubelet,
#                  10257/tcp controller-manager, 10259/tcp scheduler
#   every node:    10250/tcp kubelet, 8472/udp Flannel VXLAN, the NodePort (30500/tcp)
# and forwarding of the pod network (10.244.0.0/16).
# With ufw active it adds ufw rules; otherwise iptables rules in front of the REJECT rules that
# Oracle's Ubuntu images ship in /etc/iptables/rules.v4 (INPUT and FORWARD), saved with
# netfilter-persistent. The cloud's security list is separate: see docs/DEPLOY.md.
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

role=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --role) role="$2"; shift 2 ;;
    --node-port) NODE_PORT="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ "$role" == control-plane || "$role" == worker ]] || die "--role control-plane|worker is required"
require_root

tcp_ports=(10250 "$NODE_PORT")
if [[ "$role" == control-plane ]]; then
  tcp_ports+=(6443 2379:2380 10257 10259)
fi
udp_ports=(8472)

ufw_active=0
if [[ "$DRY_RUN" != 1 ]] && command -v ufw >/dev/null && ufw status 2>/dev/null | grep -q '^Status: active'; then
  ufw_active=1
fi

if [[ $ufw_active == 1 ]]; then
  for p in "${tcp_ports[@]}"; do run ufw allow "${p}/tcp"; done
  for p in "${udp_ports[@]}"; do run ufw allow "${p}/udp"; done
  run ufw allow from "$POD_CIDR"
  run ufw route allow from "$POD_CIDR"
  run ufw route allow to "$POD_CIDR"
  run ufw reload
else
  # -C first: running the script twice adds nothing twice.
  add_rule() { run_sh "iptables -C $1 2>/dev/null || iptables -I $1"; }
  for p in "${tcp_ports[@]}"; do add_rule "INPUT -p tcp --dport $p -m conntrack --ctstate NEW -j ACCEPT"; done
  for p in "${udp_ports[@]}"; do add_rule "INPUT -p udp --dport $p -j ACCEPT"; done
  add_rule "FORWARD -s $POD_CIDR -j ACCEPT"
  add_rule "FORWARD -d $POD_CIDR -j ACCEPT"
  if [[ "$DRY_RUN" == 1 ]] || command -v netfilter-persistent >/dev/null; then
    run netfilter-persistent save
  else
    log "netfilter-persistent not installed: the rules last until reboot (apt-get install $FIREWALL_SAVE_PACKAGE)"
  fi
fi
log "firewall open for role $role: tcp ${tcp_ports[*]}, udp ${udp_ports[*]}, forward $POD_CIDR"
