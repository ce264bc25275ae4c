#!/bin/sh
# ARMLAB TEST STAND-IN FOR k3s's install.sh: NOT the real script. It honours
# the air-gap contract in shared/reference/k3s-contract.md (order of steps,
# init-system check, role from INSTALL_K3S_EXEC/K3S_URL, files written, env
# file 0600 with K3S_*/CONTAINERD_*/*_PROXY, restart only on a changed
# binary/unit/env or INSTALL_K3S_FORCE_RESTART) and nothing more. Its unit is
# Type=notify with TimeoutStartSec=0, as k3s-io/k3s install.sh (0136cf25)
# create_systemd_service_file writes it: a start or restart returns only once
# k3s says it is ready, so an agent that cannot join blocks it, as on real Pis.
# (NotifyAccess=all: the stand-in is a script, which signals through systemd-notify.)
set -e

info() { echo '[INFO] ' "$@"; }
warn() { echo '[WARN] ' "$@" >&2; }
fatal() { echo '[ERROR] ' "$@" >&2; exit 1; }

BIN_DIR=/usr/local/bin
SYSTEMD_DIR=/etc/systemd/system

verify_system() {
  if [ -x /sbin/openrc-run ]; then
    fatal 'stand-in: openrc hosts are not covered by armlab tests'
  elif [ -x /bin/systemctl ] || type systemctl >/dev/null 2>&1; then
    HAS_SYSTEMD=true
  else
    fatal 'Can not find systemd or openrc to use as a process supervisor for k3s'
  fi
}

setup_env() {
  if [ -z "${K3S_URL}" ]; then CMD_K3S=server; else CMD_K3S=agent; fi
  case "${INSTALL_K3S_EXEC}" in
    ''|-*) CMD_K3S_EXEC="${CMD_K3S} ${INSTALL_K3S_EXEC}" ;;
    *) CMD_K3S=$(echo "${INSTALL_K3S_EXEC}" | cut -d' ' -f1); CMD_K3S_EXEC="${INSTALL_K3S_EXEC}" ;;
  esac
  if [ -n "${K3S_URL}" ] && [ "${CMD_K3S}" = agent ]; then
    case "${K3S_URL}" in https://*) ;; *) fatal "Only https:// URLs are supported for K3S_URL (have ${K3S_URL})" ;; esac
    if [ -z "${K3S_TOKEN}" ] && [ -z "${K3S_TOKEN_FILE}" ]; then
      fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
    fi
  fi
  if [ -n "${INSTALL_K3S_NAME}" ]; then SYSTEM_NAME=k3s-${INSTALL_K3S_NAME}
  elif [ "${CMD_K3S}" = server ]; then SYSTEM_NAME=k3s
  else SYSTEM_NAME=k3s-${CMD_K3S}; fi
  SUDO=sudo
  [ "$(id -u)" -eq 0 ] && SUDO=
  FILE_K3S_SERVICE=${SYSTEMD_DIR}/${SYSTEM_NAME}.service
  FILE_K3S_ENV=${SYSTEMD_DIR}/${SYSTEM_NAME}.service.env
  UNINSTALL_K3S_SH=${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh
  KILLALL_K3S_SH=${BIN_DIR}/k3s-killall.sh
  [ "${SYSTEM_NAME}" = k3s ] || [ "${SYSTEM_NAME}" = k3s-agent ] || UNINSTALL_K3S_SH=${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh
  [ "${SYSTEM_NAME}" = k3s ] && UNINSTALL_K3S_SH=${BIN_DIR}/k3s-uninstall.sh
  PRE_INSTALL_HASHES=$(get_installed_hashes)
}

get_installed_hashes() {
  $SUDO sha256sum ${BIN_DIR}/k3s "${FILE_K3S_SERVICE}" "${FILE_K3S_ENV}" 2>&1 || true
}

download_and_verify() {
  if [ "${INSTALL_K3S_SKIP_DOWNLOAD}" = true ]; then
    [ -x "${BIN_DIR}/k3s" ] || fatal "Executable k3s binary not found at ${BIN_DIR}/k3s"
    return
  fi
  fatal 'stand-in: downloads are not implemented (armlab runs install.sh with INSTALL_K3S_SKIP_DOWNLOAD=true)'
}

create_symlinks() {
  for cmd in kubectl crictl ctr; do
    if [ ! -e "${BIN_DIR}/${cmd}" ]; then
      info "Creating ${BIN_DIR}/${cmd} symlink to k3s"
      $SUDO ln -sf k3s "${BIN_DIR}/${cmd}"
    else
      info "Skipping ${BIN_DIR}/${cmd} symlink to k3s, already exists"
    fi
  done
}

create_killall() {
  info "Creating killall script ${KILLALL_K3S_SH}"
  $SUDO tee "${KILLALL_K3S_SH}" >/dev/null <<'KILLALL'
#!/bin/sh
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
for service in /etc/systemd/system/k3s*.service; do
  [ -s "$service" ] && systemctl stop "$(basename "$service")"
done
pkill -f '/usr/local/bin/k3s (server|agent)' 2>/dev/null || true
pkill -f 'busybox httpd -f -p 6443' 2>/dev/null || true
# Like k3s-killall.sh stopping containers: the stand-in kubelet's pods.
[ -x /usr/local/bin/k3s ] && /usr/local/bin/k3s stand-in-kill-pods
exit 0
KILLALL
  $SUDO chmod 755 "${KILLALL_K3S_SH}"
}

create_uninstall() {
  info "Creating uninstall script ${UNINSTALL_K3S_SH}"
  $SUDO tee "${UNINSTALL_K3S_SH}" >/dev/null <<UNINSTALL
#!/bin/sh
set -x
[ \$(id -u) -eq 0 ] || exec sudo \$0 \$@
${KILLALL_K3S_SH}
systemctl disable ${SYSTEM_NAME} || true
systemctl reset-failed ${SYSTEM_NAME} || true
systemctl daemon-reload
rm -f ${FILE_K3S_SERVICE} ${FILE_K3S_ENV}
remove_uninstall() { rm -f ${UNINSTALL_K3S_SH}; }
trap remove_uninstall EXIT
if (ls ${SYSTEMD_DIR}/k3s*.service || ls /etc/init.d/k3s*) >/dev/null 2>&1; then
  set +x; echo 'Additional k3s services installed, skipping uninstall of k3s'; exit
fi
for cmd in kubectl crictl ctr; do
  if [ -L ${BIN_DIR}/\$cmd ]; then rm -f ${BIN_DIR}/\$cmd; fi
done
rm -rf /etc/rancher/k3s /run/k3s /run/flannel /var/lib/rancher/k3s /var/lib/kubelet
rm -f ${BIN_DIR}/k3s ${KILLALL_K3S_SH}
UNINSTALL
  $SUDO chmod 755 "${UNINSTALL_K3S_SH}"
}

create_env_file() {
  info "env: Creating environment file ${FILE_K3S_ENV}"
  $SUDO touch "${FILE_K3S_ENV}"
  $SUDO chmod 0600 "${FILE_K3S_ENV}"
  {
    env | grep -Ei '^(NO|HTTP|HTTPS)_PROXY' || true
    env | grep -E '^(K3S|CONTAINERD)_' || true
  } | sed "s/'/\\\\'/g; s/=\(.*\)/='\1'/" | $SUDO tee "${FILE_K3S_ENV}" >/dev/null
}

create_service_file() {
  info "systemd: Creating service file ${FILE_K3S_SERVICE}"
  $SUDO tee "${FILE_K3S_SERVICE}" >/dev/null <<SERVICE
[Unit]
Description=Lightweight Kubernetes (armlab test stand-in)
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
NotifyAccess=all
TimeoutStartSec=0
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-${FILE_K3S_ENV}
KillMode=process
Delegate=yes
Restart=always
RestartSec=5s
ExecStart=${BIN_DIR}/k3s ${CMD_K3S_EXEC}
SERVICE
}

service_enable_and_start() {
  [ "${INSTALL_K3S_SKIP_ENABLE}" = true ] && return
  info "systemd: Enabling ${SYSTEM_NAME} unit"
  $SUDO systemctl enable "${FILE_K3S_SERVICE}" >/dev/null
  $SUDO systemctl daemon-reload >/dev/null
  [ "${INSTALL_K3S_SKIP_START}" = true ] && return
  POST_INSTALL_HASHES=$(get_installed_hashes)
  if [ "${PRE_INSTALL_HASHES}" = "${POST_INSTALL_HASHES}" ] && [ "${INSTALL_K3S_FORCE_RESTART}" != true ]; then
    info 'No change detected so skipping service start'
    return
  fi
  info "systemd: Starting ${SYSTEM_NAME}"
  $SUDO systemctl restart "${SYSTEM_NAME}"
}

{
  verify_system
  setup_env "$@"
  download_and_verify
  create_symlinks
  create_killall
  create_uninstall
  create_env_file
  create_service_file
  service_enable_and_start
}
