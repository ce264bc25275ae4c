#!/bin/bash
# Start the daemons named in /etc/frr/daemons with the mounted frr.conf, then
# stay in the foreground as the container's main process.
set -euo pipefail
touch /etc/frr/frr.conf
/usr/lib/frr/frrinit.sh start
trap '/usr/lib/frr/frrinit.sh stop; exit 0' TERM INT
sleep infinity & wait $!
